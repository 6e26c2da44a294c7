"""`python -m services.notify serve | migrate`."""

import sys

from platform_runtime.service import command_line
from services.notify import bootstrap
from services.notify.settings import load_settings

if __name__ == "__main__":
    sys.exit(command_line("services.notify", load_settings, bootstrap.definition))
