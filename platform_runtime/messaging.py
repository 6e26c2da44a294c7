"""Outbox and inbox tables, shared by every service's metadata.

Outbox: events written in the same transaction as the state change; the relay publishes them.
Inbox: ids of events a consumer group has applied, written in the same transaction as the effect.
"""

from __future__ import annotations

import json
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
    insert,
)
from sqlalchemy.orm import Session

from platform_runtime.events import PendingEvent, to_envelope


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
    session.execute(insert(outbox), rows)
