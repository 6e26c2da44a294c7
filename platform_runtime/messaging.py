"""Outbox and inbox tables, shared by every service's metadata.

Outbox: events written in the same transaction as the state change; the relay publishes them.
Inbox: ids of events a consumer group has applied, written in the same transaction as the effect.

A transaction that writes outbox rows wakes the relay when it commits (ADR 0019): on PostgreSQL a NOTIFY in
the same transaction (delivered at commit, to whichever replica listens), on SQLite an in-process signal
after the commit (the embedded default runs the relay in the service's own process).
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime

from opentelemetry import propagate
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    event,
    func,
    insert,
)
from sqlalchemy.orm import Session

from platform_runtime.events import PendingEvent, to_envelope

OUTBOX_CHANNEL = "outbox"  # NOTIFY channel; channels are per database and each service has its own
_WROTE_OUTBOX = "wrote_outbox"  # session.info flag: signal the in-process relay after this commit


class CommitSignal:
    """Commits that wrote outbox rows, counted, for relays in the same process (SQLite) to wait on.

    A relay notes `generation` before it reads the outbox and waits for a later one, so a commit that lands
    between its read and its wait still wakes it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        with self._condition:
            self.generation += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """True when a commit after `seen` happened; False after `timeout`."""
        with self._condition:
            return self._condition.wait_for(lambda: self.generation != seen, timeout)


OUTBOX_COMMITS = CommitSignal()


def _after_commit(session: Session) -> None:
    if session.info.pop(_WROTE_OUTBOX, False):
        OUTBOX_COMMITS.notify()


def _after_rollback(session: Session) -> None:
    session.info.pop(_WROTE_OUTBOX, None)


event.listen(Session, "after_commit", _after_commit)
event.listen(Session, "after_rollback", _after_rollback)


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(32), nullable=False, unique=True),
        Column("tenant_id", String(12), nullable=False),
        Column("topic", String(100), nullable=False),
        Column("message_key", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("envelope", LargeBinary, nullable=False),
        # W3C trace context of the request that caused the event, so the Kafka hop continues its trace.
        Column("trace_headers", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
        Index("ix_outbox_unpublished", "published_at", "id"),
    )


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer_group", String(100), primary_key=True),
        Column("event_id", String(32), primary_key=True),
        Column("tenant_id", String(12), nullable=False),
        Column("topic", String(100), nullable=False),
        Column("applied_at", DateTime(timezone=True), nullable=False),
    )


def write_outbox_rows(session: Session, outbox: Table, events: list[PendingEvent]) -> None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    headers = json.dumps(carrier)
    rows = []
    for pending in events:
        event_id = pending.event_id or uuid.uuid4().hex
        rows.append(
            {
                "event_id": event_id,
                "tenant_id": pending.tenant,
                "topic": pending.topic,
                "message_key": pending.key,
                "event_type": pending.event_type,
                "envelope": to_envelope(pending, event_id).SerializeToString(),
                "trace_headers": headers,
                "created_at": datetime.now(UTC),
                "attempts": 0,
            }
        )
    if session.get_bind().dialect.name == "postgresql":
        # The NOTIFY rides on the insert (no round trip of its own); sent at commit, dropped with a rollback.
        session.execute(insert(outbox).returning(func.pg_notify(OUTBOX_CHANNEL, "")), rows)
    else:
        session.execute(insert(outbox), rows)
        session.info[_WROTE_OUTBOX] = True
