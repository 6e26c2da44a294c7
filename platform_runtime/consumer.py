"""The idempotent consumer every service's Kafka entrypoints run on.

For each message: unpack the envelope, and in ONE transaction check the inbox, apply the handler's effect
and record the event id; only then commit the Kafka offset. A redelivered event changes nothing. A message
that cannot be applied after a few tries (a poison message) goes to `<topic>.dlt` with the error in its
headers, and the consumer moves on: one bad event never blocks a town's stream, and none is lost silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer
from minorprot.common.v1 import common_pb2
from opentelemetry import propagate, trace
from sqlalchemy import insert, select

from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork
from platform_runtime.tenancy import acting_as
from platform_runtime.topics import dead_letter_topic

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# A handler applies one event inside the given unit of work; it must not commit.
Handler = Callable[[common_pb2.EventEnvelope, UnitOfWork], None]


class PoisonMessage(Exception):
    """A message that can never be applied (bad bytes, wrong type): straight to the dead-letter topic."""


def system_principal(tenant: str, service: str) -> Principal:
    return Principal(
        user_id=f"service:{service}", display_name=service, role=Role.SYSTEM, tenant=tenant, district=tenant[:6]
    )


class IdempotentConsumer:
    def __init__(
        self,
        *,
        group_id: str,
        database: Database,
        consumer: Consumer,
        dead_letters: Producer,
        handlers: dict[str, Handler],
        topics: list[str],
        max_attempts: int = 3,
        retry_delay: float = 0.5,
    ) -> None:
        self.group_id = group_id
        self._database = database
        self._consumer = consumer
        self._dead_letters = dead_letters
        self._handlers = handlers
        self._topics = topics
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay

    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe(self._topics)
        try:
            while not stop.is_set():
                message = self._consumer.poll(0.5)
                if message is None:
                    continue
                if message.error():
                    log.warning("kafka consumer error: %s", message.error())
                    continue
                self.process(message)
                self._consumer.commit(message=message, asynchronous=False)
        finally:
            self._consumer.close()

    def process(self, message: Message) -> None:
        headers = decode_headers(message)
        parent = propagate.extract(headers)
        with tracer.start_as_current_span(
            f"{message.topic()} process",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": message.topic() or "",
                "messaging.consumer.group.name": self.group_id,
                "messaging.message.id": headers.get("event_id", ""),
            },
        ) as span:
            last_error: Exception | None = None
            for attempt in range(1, self._max_attempts + 1):
                try:
                    self._apply(message)
                    return
                except PoisonMessage as exc:
                    last_error = exc
                    break
                except Exception as exc:
                    last_error = exc
                    log.warning("applying %s failed (attempt %d): %s", message.topic(), attempt, exc)
                    time.sleep(self._retry_delay * attempt)
            if last_error is not None:
                span.record_exception(last_error)
            self._send_to_dead_letters(message, last_error)

    def _apply(self, message: Message) -> None:
        envelope = common_pb2.EventEnvelope()
        try:
            envelope.ParseFromString(message.value() or b"")
        except Exception as exc:
            raise PoisonMessage(f"not an event envelope: {exc}") from exc
        if not envelope.event_id or not envelope.tenant:
            raise PoisonMessage("envelope without event id or tenant")
        handler = self._handlers.get(envelope.event_type)
        if handler is None:
            return  # a topic carries several event types; this group acts on some of them
        trace.get_current_span().set_attribute("minorprot.tenant", envelope.tenant)
        inbox = self._database.inbox
        with (
            acting_as(system_principal(envelope.tenant, self.group_id)),
            self._database.unit_of_work(envelope.tenant) as uow,
        ):
            seen = uow.session.execute(
                select(inbox.c.event_id).where(
                    inbox.c.consumer_group == self.group_id, inbox.c.event_id == envelope.event_id
                )
            ).first()
            if seen:
                log.info("event %s already applied by %s", envelope.event_id, self.group_id)
                return
            handler(envelope, uow)
            uow.session.execute(
                insert(inbox).values(
                    consumer_group=self.group_id,
                    event_id=envelope.event_id,
                    tenant_id=envelope.tenant,
                    topic=message.topic(),
                    applied_at=datetime.now(UTC),
                )
            )
            uow.commit()

    def _send_to_dead_letters(self, message: Message, error: Exception | None) -> None:
        topic = message.topic() or "unknown"
        log.error("sending a message of %s to %s: %s", topic, dead_letter_topic(topic), error)
        headers: list[tuple[str, Any]] = [
            *_raw_headers(message),
            ("dlt.error", str(error)[:4000].encode()),
            ("dlt.consumer_group", self.group_id.encode()),
            ("dlt.original_partition", str(message.partition()).encode()),
            ("dlt.original_offset", str(message.offset()).encode()),
        ]
        self._dead_letters.produce(dead_letter_topic(topic), key=message.key(), value=message.value(), headers=headers)
        if self._dead_letters.flush(30) > 0:
            # Never commit past a message we could not park: stop and let the next start retry it.
            raise KafkaException(f"could not write to {dead_letter_topic(topic)}")


def _raw_headers(message: Message) -> list[tuple[str, Any]]:
    raw: Any = message.headers() or []
    return [(str(name), value) for name, value in raw]


def decode_headers(message: Message) -> dict[str, str]:
    decoded: dict[str, str] = {}
    for name, value in _raw_headers(message):
        decoded[str(name)] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    return decoded


def make_consumer(config: dict[str, Any], group_id: str) -> Consumer:
    consumer = Consumer(
        config
        | {
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    return consumer
