from gateway.models import metadata
from platform_runtime.migrations import run_env

run_env(metadata)
