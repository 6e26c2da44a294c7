"""Deleting what the outbox and inbox no longer need, on a schedule.

A published outbox row is only history once Kafka holds the event: it is kept `outbox_days` for operators,
then deleted. An inbox row is what makes a redelivery harmless, so it is kept well past the longest time
Kafka may deliver the event again (the topics' retention, 7 days by default): `inbox_days`, 30 by default.
Unpublished outbox rows are never deleted. Deletes go in batches so no transaction holds many locks.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, Table, delete, select, tuple_

from platform_runtime import metrics

log = logging.getLogger(__name__)

BATCH = 5000


def purge(engine: Engine, outbox: Table, inbox: Table, *, outbox_days: int, inbox_days: int) -> dict[str, int]:
    """Delete published outbox rows older than `outbox_days` and inbox rows older than `inbox_days`."""
    now = datetime.now(UTC)
    old_outbox = (
        select(outbox.c.id)
        .where(outbox.c.published_at.is_not(None), outbox.c.published_at < now - timedelta(days=outbox_days))
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
    return purged


def _in_batches(engine: Engine, statement: object) -> int:
    total = 0
    while True:
        with engine.begin() as connection:
            deleted = int(connection.execute(statement).rowcount)  # type: ignore[call-overload]
        total += deleted
        if deleted < BATCH:
            return total
