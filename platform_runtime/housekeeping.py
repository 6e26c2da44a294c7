"""Deleting what the outbox and inbox no longer need, on a schedule (a supervised worker in every service).

A published outbox row is a plaintext copy of an event that Kafka already holds, and nothing reads it again:
the relay sends only unpublished rows, and a consumer drops a repeat by the event id in its own inbox. It is
kept `outbox_seconds` (an hour by default, for an operator looking at what just went out), then deleted, so
the service's database and its backups do not keep every event ever sent. An inbox row is what makes a
redelivery harmless, so it is kept well past the longest time Kafka may deliver the event again (the topics'
retention, 7 days by default): `inbox_days`, 30 by default. Unpublished outbox rows are never deleted.
Deletes go in batches so no transaction holds many locks.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, Table, delete, func, select, tuple_

from platform_runtime import metrics

log = logging.getLogger(__name__)

BATCH = 5000


def purge(
    engine: Engine, outbox: Table, inbox: Table, *, outbox_seconds: int, inbox_days: int, service: str = ""
) -> dict[str, int]:
    """Delete outbox rows published more than `outbox_seconds` ago and inbox rows older than `inbox_days`."""
    now = datetime.now(UTC)
    old_outbox = (
        select(outbox.c.id)
        .where(outbox.c.published_at.is_not(None), outbox.c.published_at < now - timedelta(seconds=outbox_seconds))
        .limit(BATCH)
    )
    old_inbox = (
        select(inbox.c.consumer_group, inbox.c.event_id)
        .where(inbox.c.applied_at < now - timedelta(days=inbox_days))
        .limit(BATCH)
    )
    purged = {
        "outbox": _in_batches(engine, delete(outbox).where(outbox.c.id.in_(old_outbox.scalar_subquery()))),
        "inbox": _in_batches(
            engine,
            delete(inbox).where(tuple_(inbox.c.consumer_group, inbox.c.event_id).in_(old_inbox.subquery().select())),
        ),
    }
    for table, count in purged.items():
        metrics.HOUSEKEEPING_PURGED.labels(table).inc(count)
    if any(purged.values()):
        log.info("housekeeping deleted %d outbox and %d inbox rows", purged["outbox"], purged["inbox"])
    metrics.OUTBOX_OLDEST_PUBLISHED.labels(service or "unknown").set(_oldest_published_age(engine, outbox, now))
    return purged


def _oldest_published_age(engine: Engine, outbox: Table, now: datetime) -> float:
    with engine.begin() as connection:
        oldest = connection.scalar(select(func.min(outbox.c.published_at)).where(outbox.c.published_at.is_not(None)))
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)  # SQLite returns naive datetimes
    age: float = (now - oldest).total_seconds()
    return max(age, 0.0)


def _in_batches(engine: Engine, statement: object) -> int:
    total = 0
    while True:
        with engine.begin() as connection:
            deleted = int(connection.execute(statement).rowcount)  # type: ignore[call-overload]
        total += deleted
        if deleted < BATCH:
            return total
