"""`python -m services.reporting serve | migrate`."""

from __future__ import annotations

import argparse
import sys

from platform_runtime import service as runtime
from services.reporting import bootstrap
from services.reporting.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.reporting")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC server, the outbox relay and the deadline checker")
    commands.add_parser("migrate", help="apply the database migrations (owner role)")
    args = parser.parse_args(argv)
    if args.command == "migrate":
        runtime.migrate("services.reporting")
        return 0
    settings = load_settings()
    runtime.start_observability(settings.common)
    bootstrap.server(settings).serve_until_signalled()
    return 0


if __name__ == "__main__":
    sys.exit(main())
