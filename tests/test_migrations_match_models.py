"""Every component's migrations produce exactly its models' schema (no forgotten migration)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine

from platform_runtime.migrations import upgrade
from tests.support.infra import ROOT

# Every folder with Alembic migrations: services/<name> and the gateway.
PACKAGES = sorted(
    str(env.parent.parent.relative_to(ROOT)).replace("/", ".")
    for env in ROOT.glob("**/migrations/env.py")
    if ".venv" not in env.parts
)


def _metadata_of(package: str) -> MetaData:
    """The metadata the package's migrations/env.py targets (its `from X import metadata` line)."""
    env = (ROOT / package.replace(".", "/") / "migrations/env.py").read_text()
    found = re.search(r"^from (\S+) import metadata", env, re.MULTILINE)
    assert found, f"{package}/migrations/env.py must import its models' metadata"
    metadata: MetaData = importlib.import_module(found.group(1)).metadata
    return metadata


def test_every_service_has_migrations() -> None:
    services = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__main__.py").exists())
    assert sorted(p.removeprefix("services.") for p in PACKAGES if p.startswith("services.")) == services


@pytest.mark.parametrize("package", PACKAGES)
def test_migrations_and_models_agree(package: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    upgrade(package, url)
    engine = create_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), _metadata_of(package))
    engine.dispose()
    assert differences == [], f"{package}: models and migrations differ: {differences}"
