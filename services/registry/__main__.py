"""`python -m services.registry serve | migrate | onboard-tenant --code C --name N --district D |
set-villages --tenant C --file villages.csv`."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from platform_runtime import service as runtime
from platform_runtime.consumer import system_principal
from platform_runtime.tenancy import acting_as
from services.registry import bootstrap
from services.registry.adapters.orm import APPEND_ONLY_TABLES
from services.registry.entrypoints import demo
from services.registry.service_layer.views import Village
from services.registry.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.registry")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC server, the outbox relay and the consumers")
    commands.add_parser("migrate", help="apply the database migrations (owner role)")
    seed = commands.add_parser("seed-demo", help="synthetic demo children for a town (skipped if it has any)")
    seed.add_argument("--tenant", required=True)
    seed.add_argument("--count", type=int, default=40)
    onboard = commands.add_parser("onboard-tenant", help="add a town or street (idempotent)")
    onboard.add_argument("--code", required=True)
    onboard.add_argument("--name", required=True)
    onboard.add_argument("--district", required=True)
    listing = commands.add_parser(
        "set-villages", help="record a town's villages and communities from a CSV file (code,name; UTF-8)"
    )
    listing.add_argument("--tenant", required=True)
    listing.add_argument("--file", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.command == "migrate":
        runtime.migrate("services.registry", append_only_tables=APPEND_ONLY_TABLES)
        return 0
    settings = load_settings()
    if args.command == "serve":
        runtime.start_observability(settings.common)
        bootstrap.server(settings).serve_until_signalled()
        return 0
    service = bootstrap.build_service(settings)
    if args.command == "seed-demo":
        added = demo.seed_demo_children(service, args.tenant, args.count)
        print(f"{args.tenant}: {added} synthetic demo children registered")
        return 0
    if args.command == "set-villages":
        with acting_as(system_principal(args.tenant, "onboarding")):
            result = service.set_villages(read_villages(args.file))
        print(
            f"{args.tenant}: {len(result.villages)} villages ({result.added} added, {result.renamed} renamed, {result.retired} retired)"
        )
        return 0
    with acting_as(system_principal(args.code, "onboarding")):
        tenant, created = service.onboard_tenant(args.code, args.name, args.district)
    print(f"{tenant.code} {tenant.name}: {'onboarded' if created else 'already onboarded'}")
    return 0


def read_villages(path: Path) -> list[Village]:
    """Rows of code,name (a header row naming them is skipped); the service checks every code and name."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["code", "name"]:
        rows = rows[1:]
    return [Village(code=row[0].strip(), name=row[1].strip() if len(row) > 1 else "") for row in rows]


if __name__ == "__main__":
    sys.exit(main())
