"""Kafka messages as the relay would publish them, and a service's outbox: for consumer tests."""

from __future__ import annotations

from typing import Any, TypeVar

from confluent_kafka import Message
from google.protobuf import message as protobuf
from minorprot.common.v1 import common_pb2
from sqlalchemy import select

from platform_runtime.db import Database
from platform_runtime.events import PendingEvent, to_envelope, unpack

M = TypeVar("M", bound=protobuf.Message)


def message(event: PendingEvent, event_id: str) -> Message:
    """The Kafka message the relay would publish for `event`."""
    return Message(
        topic=event.topic,
        partition=0,
        offset=0,
        key=event.key.encode(),
        value=to_envelope(event, event_id).SerializeToString(),
        headers=[("event_id", event_id.encode()), ("tenant", event.tenant.encode())],
    )


def as_published(event: PendingEvent) -> tuple[str, str, str, str, protobuf.Message]:
    """What the outbox keeps of an event and the relay sends: (topic, town, aggregate type, key, message)."""
    return (event.topic, event.tenant, event.aggregate_type, event.aggregate_id, event.payload)


def outbox_rows(database: Database, tenant: str) -> list[Any]:
    with database.unit_of_work(tenant) as uow:
        outbox = database.outbox
        return list(uow.session.execute(select(outbox).order_by(outbox.c.id)))


def events_of(database: Database, tenant: str, kind: type[M]) -> list[M]:
    """The tenant's outbox events of one type, in order, unpacked."""
    found: list[M] = []
    for row in outbox_rows(database, tenant):
        envelope = common_pb2.EventEnvelope.FromString(row.envelope)
        if envelope.event_type == kind.DESCRIPTOR.full_name:
            found.append(unpack(envelope, kind))
    return found
