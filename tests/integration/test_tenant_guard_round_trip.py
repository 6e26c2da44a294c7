"""The tenant guard's set_config, pipelined with BEGIN (one round trip), fails as any statement does: a lost
connection is SQLAlchemy's OperationalError (what consumers retry) and is thrown away, not pooled again."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, exc, text
from sqlalchemy.pool import QueuePool

from platform_runtime.consumer import is_transient
from platform_runtime.db import Database
from services.reporting.adapters.orm import metadata
from tests.support.infra import PILOT_TENANT
from tests.support.services import migrated_database

pytestmark = pytest.mark.integration


def test_a_connection_lost_before_the_tenant_guard_is_a_transient_error_and_is_not_reused(postgres_url: str) -> None:
    db = migrated_database(postgres_url, "reporting")
    # No pre-ping: the pooled connection's loss is found by the guard itself, the first thing sent.
    engine = create_engine(db.app_url, poolclass=QueuePool, pool_size=1, max_overflow=0, pool_pre_ping=False)
    database = Database(engine, metadata)
    superuser = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with database.unit_of_work(PILOT_TENANT) as uow:
            tenant, backend = uow.session.execute(
                text("SELECT current_setting('app.tenant_id'), pg_backend_pid()")
            ).one()
        assert tenant == PILOT_TENANT  # the guard ran
        with superuser.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})

        with pytest.raises(exc.OperationalError) as lost, database.unit_of_work(PILOT_TENANT) as uow:
            uow.session.execute(text("SELECT 1"))
        assert lost.value.connection_invalidated and is_transient(lost.value)

        with database.unit_of_work(PILOT_TENANT) as uow:  # a new connection, guarded again
            assert uow.session.execute(text("SELECT current_setting('app.tenant_id')")).scalar() == PILOT_TENANT
    finally:
        database.dispose()
        superuser.dispose()
