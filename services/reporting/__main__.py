"""`python -m services.reporting serve | migrate`."""

import sys

from platform_runtime.service import command_line
from services.reporting import bootstrap
from services.reporting.adapters.orm import APPEND_ONLY_TABLES
from services.reporting.settings import load_settings

if __name__ == "__main__":
    sys.exit(
        command_line("services.reporting", load_settings, bootstrap.definition, append_only_tables=APPEND_ONLY_TABLES)
    )
