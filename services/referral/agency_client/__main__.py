import sys

from services.referral.agency_client.cli import main

if __name__ == "__main__":
    sys.exit(main())
