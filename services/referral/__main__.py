"""`python -m services.referral serve | migrate`."""

from __future__ import annotations

import argparse
import sys

from platform_runtime import service as runtime
from services.referral import bootstrap
from services.referral.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.referral")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC server, the outbox relay and the consumers")
    commands.add_parser("migrate", help="apply the database migrations (owner role)")
    args = parser.parse_args(argv)
    if args.command == "migrate":
        runtime.migrate("services.referral")
        return 0
    settings = load_settings()
    runtime.start_observability(settings.common)
    runtime.serve(bootstrap.definition(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
