from platform_runtime.migrations import run_env
from services.referral.adapters.orm import metadata

run_env(metadata)
