"""Housekeeping on the embedded default (SQLite): the same statements as on PostgreSQL (tests/integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import MetaData, insert, select

from platform_runtime import housekeeping
from platform_runtime.db import add_messaging_tables, make_engine


def test_published_history_and_old_inbox_rows_go_and_everything_else_stays(tmp_path: Path) -> None:
    metadata = MetaData()
    add_messaging_tables(metadata)
    engine = make_engine(f"sqlite:///{tmp_path / 'service.db'}")
    metadata.create_all(engine)
    outbox, inbox = metadata.tables["outbox"], metadata.tables["inbox"]
    now, long_ago = datetime.now(UTC), datetime.now(UTC) - timedelta(days=40)
    with engine.begin() as connection:
        for event_id, created, published in (
            ("old-published", long_ago, long_ago),
            ("old-pending", long_ago, None),
            ("new-published", now, now),
        ):
            connection.execute(
                insert(outbox).values(
                    event_id=event_id,
                    tenant_id="110111008",
                    topic="reporting.report",
                    message_key="110111008:r",
                    event_type="t",
                    envelope=b"",
                    trace_headers="{}",
                    created_at=created,
                    published_at=published,
                    attempts=0,
                )
            )
        for event_id, applied in (("old-inbox", long_ago), ("new-inbox", now)):
            connection.execute(
                insert(inbox).values(
                    consumer_group="g", event_id=event_id, tenant_id="110111008", topic="t", applied_at=applied
                )
            )

    assert housekeeping.purge(engine, outbox, inbox, outbox_days=7, inbox_days=30) == {"outbox": 1, "inbox": 1}

    with engine.begin() as connection:
        assert set(connection.scalars(select(outbox.c.event_id))) == {"old-pending", "new-published"}
        assert set(connection.scalars(select(inbox.c.event_id))) == {"new-inbox"}
    engine.dispose()
