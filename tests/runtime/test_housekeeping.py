"""Housekeeping on the embedded default (SQLite): the same statements as on PostgreSQL (tests/integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import MetaData, insert, select

from platform_runtime import housekeeping, metrics
from platform_runtime.db import add_messaging_tables, make_engine


def test_rows_published_longer_ago_than_the_retention_go_and_everything_else_stays(tmp_path: Path) -> None:
    metadata = MetaData()
    add_messaging_tables(metadata)
    engine = make_engine(f"sqlite:///{tmp_path / 'service.db'}")
    metadata.create_all(engine)
    outbox, inbox = metadata.tables["outbox"], metadata.tables["inbox"]
    now = datetime.now(UTC)
    two_hours_ago, ten_minutes_ago, long_ago = (
        now - timedelta(hours=2),
        now - timedelta(minutes=10),
        now - timedelta(days=40),
    )
    with engine.begin() as connection:
        for event_id, created, published in (
            ("published-two-hours-ago", two_hours_ago, two_hours_ago),
            ("pending-for-days", long_ago, None),  # Kafka has not got it: never deleted, however old
            ("published-ten-minutes-ago", ten_minutes_ago, ten_minutes_ago),
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

    purged = housekeeping.purge(engine, outbox, inbox, outbox_seconds=3600, inbox_days=30, service="sqlite-test")

    assert purged == {"outbox": 1, "inbox": 1}
    with engine.begin() as connection:
        assert set(connection.scalars(select(outbox.c.event_id))) == {"pending-for-days", "published-ten-minutes-ago"}
        assert set(connection.scalars(select(inbox.c.event_id))) == {"new-inbox"}
    # What an operator sees: the oldest published row kept is the ten-minute-old one, not the two-hour-old one.
    oldest = metrics.OUTBOX_OLDEST_PUBLISHED.labels("sqlite-test")._value.get()
    assert 600 <= oldest < 3600
    engine.dispose()
