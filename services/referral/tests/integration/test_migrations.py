"""The lifecycle migration on a PostgreSQL database that already holds referrals (under forced row-level
security): their towns are known to the escalation worker, and their clocks start when they were opened."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, pool, text

from platform_runtime.migrations import alembic_config, upgrade
from services.referral.tests.integration.builders import OTHER_TENANT, PILOT_TENANT
from tests.support.infra import fresh_database

pytestmark = pytest.mark.integration


@pytest.fixture
def db(postgres_url):
    provisioned = fresh_database(postgres_url, "referral")
    yield provisioned
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{provisioned.name}" WITH (FORCE)'))
    admin.dispose()


def test_referrals_opened_before_the_lifecycle_keep_working(db):
    command.upgrade(alembic_config("services.referral", db.owner_url), "0003")
    owner = create_engine(db.owner_url, poolclass=pool.NullPool)
    for tenant in (PILOT_TENANT, OTHER_TENANT):
        with owner.begin() as connection:
            connection.execute(text("SELECT set_config('app.tenant_id', :tenant, true)"), {"tenant": tenant})
            connection.execute(
                text(
                    "INSERT INTO referrals (id, tenant_id, report_id, agency_code, agency_name, status, reason, "
                    "rule_code, urgent, opened_at, due_at, accept_note, outcome) VALUES (:id, :tenant, 'r1', "
                    "'education', '区教委', 'opened', 'x', 'SCHOOLING_EDUCATION', false, now(), now(), '', '')"
                ),
                {"id": f"old-{tenant}", "tenant": tenant},
            )
    upgrade("services.referral", db.owner_url, app_url=db.app_url, relay_url=db.relay_url)
    with owner.begin() as connection:
        towns = set(connection.scalars(text("SELECT tenant_id FROM referral_towns")))
        # RLS is forced again on the owner: without a town set, no referral is visible.
        assert connection.scalar(text("SELECT count(*) FROM referrals")) == 0
        connection.execute(text("SELECT set_config('app.tenant_id', :tenant, true)"), {"tenant": PILOT_TENANT})
        started = connection.scalar(text("SELECT deadline_from = opened_at FROM referrals"))
    owner.dispose()
    assert towns == {PILOT_TENANT, OTHER_TENANT}
    assert started is True
