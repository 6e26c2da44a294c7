"""`python -m services.registry serve | migrate | onboard-tenant --code C --name N --district D |
seed-demo --tenant C | set-villages --tenant C --file villages.csv`."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from platform_runtime.consumer import system_principal
from platform_runtime.service import Command, command_line
from platform_runtime.tenancy import acting_as
from services.registry import bootstrap
from services.registry.adapters.orm import APPEND_ONLY_TABLES
from services.registry.entrypoints import demo
from services.registry.service_layer.views import Village
from services.registry.settings import RegistrySettings, load_settings


def seed_demo(args: argparse.Namespace, settings: RegistrySettings) -> int:
    added = demo.seed_demo_children(bootstrap.build_service(settings), args.tenant, args.count)
    print(f"{args.tenant}: {added} synthetic demo children registered")
    return 0


def onboard_tenant(args: argparse.Namespace, settings: RegistrySettings) -> int:
    with acting_as(system_principal(args.code, "onboarding")):
        tenant, created = bootstrap.build_service(settings).onboard_tenant(args.code, args.name, args.district)
    print(f"{tenant.code} {tenant.name}: {'onboarded' if created else 'already onboarded'}")
    return 0


def set_villages(args: argparse.Namespace, settings: RegistrySettings) -> int:
    with acting_as(system_principal(args.tenant, "onboarding")):
        result = bootstrap.build_service(settings).set_villages(read_villages(args.file))
    print(
        f"{args.tenant}: {len(result.villages)} villages ({result.added} added, {result.renamed} renamed, {result.retired} retired)"
    )
    return 0


def read_villages(path: Path) -> list[Village]:
    """Rows of code,name (a header row naming them is skipped); the service checks every code and name."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["code", "name"]:
        rows = rows[1:]
    return [Village(code=row[0].strip(), name=row[1].strip() if len(row) > 1 else "") for row in rows]


def _seed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--count", type=int, default=40)


def _onboard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--code", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--district", required=True)


def _villages_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--file", type=Path, required=True)


COMMANDS = (
    Command("seed-demo", "synthetic demo children for a town (skipped if it has any)", _seed_arguments, seed_demo),
    Command("onboard-tenant", "add a town or street (idempotent)", _onboard_arguments, onboard_tenant),
    Command(
        "set-villages",
        "record a town's villages and communities from a CSV file (code,name; UTF-8)",
        _villages_arguments,
        set_villages,
    ),
)


def main(argv: list[str] | None = None) -> int:
    return command_line(
        "services.registry",
        load_settings,
        bootstrap.definition,
        argv,
        append_only_tables=APPEND_ONLY_TABLES,
        commands=COMMANDS,
    )


if __name__ == "__main__":
    sys.exit(main())
