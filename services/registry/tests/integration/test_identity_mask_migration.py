"""Migration 0009 re-masks identity numbers stored under the old mask, in every town, on PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from platform_runtime.migrations import alembic_config
from tests.support.infra import OTHER_TENANT, PILOT_TENANT, fresh_database

pytestmark = pytest.mark.integration

OLD = {PILOT_TENANT: "110111********123X", OTHER_TENANT: "110111********4567"}


def test_stored_masks_keep_only_their_last_character(postgres_url: str) -> None:
    db = fresh_database(postgres_url, "registry")
    config = alembic_config("services.registry", db.owner_url)
    command.upgrade(config, "0008")
    engine = create_engine(db.owner_url)
    with engine.begin() as connection:
        for tenant, masked in OLD.items():
            connection.execute(
                text("INSERT INTO tenants (code, name, district_code, onboarded_at) VALUES (:t, :t, '110111', now())"),
                {"t": tenant},
            )
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
            for child, value in ((f"{tenant}-a", masked), (f"{tenant}-b", "")):
                connection.execute(
                    text(
                        "INSERT INTO children (id, tenant_id, legal_name, other_names, sex, identity_number_masked,"
                        " ethnicity_code, household_division_code, household_address, residence_division_code,"
                        " residence_address, school, grade, description, provisional, created_at, created_by)"
                        " VALUES (:id, :t, 'x', '[]', 'M', :m, '', :t, '', :t, '', '', '', '', false, now(), 't')"
                    ),
                    {"id": child, "t": tenant, "m": value},
                )
    command.upgrade(config, "head")
    with engine.begin() as connection:
        for tenant, masked in OLD.items():
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
            rows = dict(connection.execute(text("SELECT id, identity_number_masked FROM children")).tuples().all())
            assert rows == {f"{tenant}-a": "*" * 17 + masked[-1], f"{tenant}-b": ""}
    engine.dispose()
