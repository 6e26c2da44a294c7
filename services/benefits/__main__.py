"""`python -m services.benefits serve | migrate`."""

import sys

from platform_runtime.service import command_line
from services.benefits import bootstrap
from services.benefits.adapters.orm import APPEND_ONLY_TABLES
from services.benefits.settings import load_settings

if __name__ == "__main__":
    sys.exit(
        command_line("services.benefits", load_settings, bootstrap.definition, append_only_tables=APPEND_ONLY_TABLES)
    )
