"""The outbox relay: publishes committed outbox rows to Kafka, then marks them.

At-least-once by construction: a row is marked only after Kafka acknowledged it (idempotent producer,
acks=all). A relay killed after the send but before the mark sends the row again on restart; consumers
drop the repeat by event id (their inbox), so each event takes effect exactly once.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from opentelemetry import propagate, trace
from sqlalchemy import Engine, Table, select, update

from platform_runtime.settings import KafkaSettings

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


def make_producer(kafka: KafkaSettings, client_id: str) -> Producer:
    config: dict[str, Any] = kafka.client_config() | {
        "client.id": client_id,
        "enable.idempotence": True,  # implies acks=all and ordered retries without duplicates per session
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
    }
    producer = Producer(config)
    try:
        from opentelemetry.instrumentation.confluent_kafka import ConfluentKafkaInstrumentor

        return ConfluentKafkaInstrumentor().instrument_producer(producer)
    except ImportError:  # pragma: no cover - the instrumentation is a pinned dependency
        return producer


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        outbox: Table,
        producer: Producer,
        *,
        batch_size: int = 200,
        poll_interval: float = 0.2,
        flush_timeout: float = 30.0,
        topic_prefix: str = "",
    ) -> None:
        self._topic_prefix = topic_prefix
        self._engine = engine
        self._outbox = outbox
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._flush_timeout = flush_timeout

    def publish_pending(self) -> int:
        """Publish one batch; returns how many rows were acknowledged by Kafka and marked."""
        outbox = self._outbox
        query = select(outbox).where(outbox.c.published_at.is_(None)).order_by(outbox.c.id).limit(self._batch_size)
        if self._engine.dialect.name == "postgresql":
            # Several relay replicas may run: each takes rows the others have not locked.
            query = query.with_for_update(skip_locked=True)
        with self._engine.begin() as connection:
            rows = connection.execute(query).all()
            if not rows:
                return 0
            results: dict[int, str | None] = {}
            for row in rows:
                self._send(row, results)
            self._producer.flush(self._flush_timeout)
            delivered = [row_id for row_id, error in results.items() if error is None]
            self._mark_published(connection, delivered)
            for row_id, error in results.items():
                if error is not None:
                    log.warning("outbox row %s not published: %s", row_id, error)
                    connection.execute(
                        update(outbox)
                        .where(outbox.c.id == row_id)
                        .values(attempts=outbox.c.attempts + 1, last_error=error[:2000])
                    )
            unanswered = [row.id for row in rows if row.id not in results]
            if unanswered:
                log.warning("kafka did not answer for %d outbox rows; they stay pending", len(unanswered))
            return len(delivered)

    def _send(self, row: Any, results: dict[int, str | None]) -> None:
        parent = propagate.extract(json.loads(row.trace_headers))
        with tracer.start_as_current_span(
            f"{row.topic} publish",
            context=parent,
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": row.topic,
                "messaging.message.id": row.event_id,
                "minorprot.tenant": row.tenant_id,
            },
        ):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            headers = [(name, value.encode()) for name, value in carrier.items()] + [
                ("tenant", row.tenant_id.encode()),
                ("event_type", row.event_type.encode()),
                ("event_id", row.event_id.encode()),
            ]

            def on_delivery(error: KafkaError | None, _message: Message, row_id: int = row.id) -> None:
                results[row_id] = None if error is None else str(error)

            self._producer.produce(
                self._topic_prefix + row.topic,
                key=row.message_key.encode(),
                value=row.envelope,
                headers=headers,
                on_delivery=on_delivery,
            )

    def _mark_published(self, connection: Any, row_ids: list[int]) -> None:
        if row_ids:
            connection.execute(
                update(self._outbox).where(self._outbox.c.id.in_(row_ids)).values(published_at=datetime.now(UTC))
            )

    def run(self, stop: threading.Event) -> None:
        """Poll until stopped; a failing round is logged and retried, never lost (rows stay pending)."""
        while not stop.is_set():
            try:
                published = self.publish_pending()
            except Exception:
                log.exception("outbox relay round failed; retrying")
                published = 0
            if published < self._batch_size:
                stop.wait(self._poll_interval)
        # Drain what is already committed before the process goes away.
        try:
            while self.publish_pending():
                pass
        finally:
            self._producer.flush(self._flush_timeout)
