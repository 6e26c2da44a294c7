"""`python -m services.referral serve | migrate`."""

import sys

from platform_runtime.service import command_line
from services.referral import bootstrap
from services.referral.settings import load_settings

if __name__ == "__main__":
    sys.exit(command_line("services.referral", load_settings, bootstrap.definition))
