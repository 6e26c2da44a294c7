"""The event envelope every Kafka message carries, and how events are packed and read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message
from minorprot.common.v1 import common_pb2

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class PendingEvent:
    """An event decided by the service layer, not yet in the outbox."""

    topic: str
    tenant: str
    aggregate_type: str
    aggregate_id: str
    payload: Message
    event_id: str = ""
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def key(self) -> str:
        # tenant:aggregate keeps one child's (or report's) events in order on one partition.
        return f"{self.tenant}:{self.aggregate_id}"

    @property
    def event_type(self) -> str:
        return self.payload.DESCRIPTOR.full_name


def to_envelope(pending: PendingEvent, event_id: str) -> common_pb2.EventEnvelope:
    payload = any_pb2.Any()
    payload.Pack(pending.payload)
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(pending.occurred_at)
    return common_pb2.EventEnvelope(
        event_id=event_id,
        event_type=pending.event_type,
        tenant=pending.tenant,
        aggregate_type=pending.aggregate_type,
        aggregate_id=pending.aggregate_id,
        occurred_at=occurred,
        payload=payload,
    )


def unpack(envelope: common_pb2.EventEnvelope, message_type: type[M]) -> M:
    """The envelope's payload as `message_type`; raises ValueError if it holds another message."""
    message = message_type()
    if not envelope.payload.Unpack(message):
        raise ValueError(f"payload is {envelope.payload.TypeName()}, not {message_type.DESCRIPTOR.full_name}")
    return message
