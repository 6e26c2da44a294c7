"""The outbox relay: publishes committed outbox rows to Kafka, then marks them.

At-least-once by construction: a row is marked only after Kafka acknowledged it (idempotent producer,
acks=all). A relay killed after the send but before the mark sends the row again on restart; consumers
drop the repeat by event id (their inbox), so each event takes effect exactly once.

The relay is woken by the commit that wrote the rows (ADR 0019): it LISTENs on PostgreSQL while it is the
publisher, and waits on the in-process signal on SQLite; the poll interval is only the fallback (a lost
notification, rows written by some other path).

A producer Kafka has acknowledged nothing from for PRODUCER_REPLACE_AFTER is given up (seen after a broker
restart: librdkafka's idempotent producer sat on its queue for good while the broker was back): its queue is
purged and the relay raises, so the supervisor starts it again with a new producer; the rows are still
unpublished in the outbox, so the new producer sends them again (a repeat is dropped by the consumers' inbox).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from opentelemetry import propagate, trace
from sqlalchemy import Connection, Engine, Table, func, select, text, update

from platform_runtime import metrics
from platform_runtime.messaging import OUTBOX_CHANNEL, OUTBOX_COMMITS
from platform_runtime.settings import KafkaSettings
from platform_runtime.supervisor import WorkerContext

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


def make_producer(kafka: KafkaSettings, client_id: str, *, retry_until_acknowledged: bool = False) -> Producer:
    """`retry_until_acknowledged`: never give a message up on time (the relay, which keeps its rows pending
    and its batch order until Kafka answers); otherwise librdkafka's default delivery timeout applies."""
    config: dict[str, Any] = kafka.client_config() | {
        "client.id": client_id,
        "enable.idempotence": True,  # implies acks=all and ordered retries without duplicates per session
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # Back within a second of a broker restart (librdkafka's default waits up to 10 s between tries).
        "reconnect.backoff.max.ms": 1000,
    }
    if retry_until_acknowledged:
        config["message.timeout.ms"] = 0  # infinite
    producer = Producer(config)
    try:
        from opentelemetry.instrumentation.confluent_kafka import ConfluentKafkaInstrumentor

        return ConfluentKafkaInstrumentor().instrument_producer(producer)
    except ImportError:  # pragma: no cover - the instrumentation is a pinned dependency
        return producer


# Kafka acknowledging nothing this long means the producer, not the broker, is stuck (a broker restart takes
# seconds); a real outage only costs a new client each time, the rows wait in the outbox either way.
PRODUCER_REPLACE_AFTER = 60.0


class ProducerStuck(Exception):
    """Kafka acknowledged nothing from the relay's producer for too long: the relay starts again with a new one."""


# Any fixed number: advisory locks are per database, and each service has its own database.
RELAY_LOCK_KEY = 0x6F7574626F78  # "outbox"


class OutboxRelay:
    """Publishes a service's outbox in id order. On PostgreSQL one replica at a time is the publisher (it
    holds an advisory lock); the others stand by, so events of one aggregate reach Kafka in commit order
    however many replicas run. Kafka's idempotent producer keeps that order per partition while it retries."""

    def __init__(
        self,
        engine: Engine,
        outbox: Table,
        producer: Producer,
        *,
        service: str = "",
        batch_size: int = 200,
        poll_interval: float = 0.2,
        stall_after: float = 5.0,
        replace_after: float = PRODUCER_REPLACE_AFTER,
        topic_prefix: str = "",
        renew_producer: Callable[[], Producer] | None = None,
    ) -> None:
        self._topic_prefix = topic_prefix
        self._engine = engine
        self._outbox = outbox
        self._producer = producer
        self._renew_producer = renew_producer
        self._service = service or "unknown"
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._stall_after = stall_after
        self._replace_after = replace_after
        self._backlog_checked = 0.0
        self._runs = 0
        self._round_ok = True  # no row refused and no stall in the last round

    def publish_pending(self, connection: Connection | None = None, context: WorkerContext | None = None) -> int:
        """Publish one batch; returns how many rows Kafka acknowledged (and were marked published).

        Waits until Kafka has answered for every row of the batch (librdkafka retries in order meanwhile),
        unless the process is stopping; a row without an answer stays pending and is sent again later."""
        if connection is None:
            with self._engine.connect() as own:
                return self.publish_pending(own, context)
        outbox = self._outbox
        with connection.begin():
            rows = connection.execute(
                select(outbox).where(outbox.c.published_at.is_(None)).order_by(outbox.c.id).limit(self._batch_size)
            ).all()
        if not rows:
            return 0
        results: dict[int, str | None] = {}
        for row in rows:
            self._send(row, results)
        self._await_answers(len(rows), results, context)
        delivered = [row_id for row_id, error in results.items() if error is None]
        with connection.begin():
            self._mark_published(connection, delivered)
            for row_id, error in results.items():
                if error is not None:
                    log.error("outbox row %s refused by Kafka (attempt stays pending): %s", row_id, error)
                    connection.execute(
                        update(outbox)
                        .where(outbox.c.id == row_id)
                        .values(attempts=outbox.c.attempts + 1, last_error=error[:2000])
                    )
        metrics.OUTBOX_PUBLISHED.labels(self._service).inc(len(delivered))
        refused = len(results) - len(delivered)
        if refused:
            metrics.OUTBOX_FAILURES.labels(self._service).inc(refused)
            self._round_ok = False
            if context is not None:
                context.failed(f"{refused} outbox row(s) refused by Kafka")
        unanswered = len(rows) - len(results)
        if unanswered:
            log.warning("kafka did not answer for %d outbox rows before stopping; they stay pending", unanswered)
        return len(delivered)

    def _await_answers(self, sent: int, results: dict[int, str | None], context: WorkerContext | None) -> None:
        started = time.monotonic()
        stalled_reported = False
        answered, answered_at = 0, started
        while self._producer.flush(1.0) > 0 or len(results) < sent:
            now = time.monotonic()
            waited = now - started
            if len(results) != answered:
                answered, answered_at = len(results), now
            if context is None:
                if waited > 30:
                    return  # a one-off call (tests, tools) does not wait for an outage to end
                continue
            if context.stop.is_set() and waited > 5:
                return
            if waited > self._stall_after and not stalled_reported:
                log.warning("kafka has not acknowledged %d outbox rows for %.0fs", sent - len(results), waited)
                context.failed(f"kafka has not acknowledged {sent - len(results)} outbox rows for {waited:.0f}s")
                stalled_reported = True
                self._round_ok = False
            if self._renew_producer is not None and now - answered_at > self._replace_after:
                self._give_up_producer()
                raise ProducerStuck(
                    f"kafka acknowledged none of {sent - len(results)} outbox rows for {now - answered_at:.0f}s: "
                    "the relay starts again with a new producer (the rows stay pending)"
                )

    def _give_up_producer(self) -> None:
        """Drop what the stuck producer holds, so it can never deliver a row after its successor (order per key)."""
        self._producer.purge(in_queue=True, in_flight=True, blocking=False)
        self._producer.poll(0)  # serve the purged rows' reports: the batch they belong to is abandoned

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

            while True:
                try:
                    self._producer.produce(
                        self._topic_prefix + row.topic,
                        key=row.message_key.encode(),
                        value=row.envelope,
                        headers=headers,
                        on_delivery=on_delivery,
                    )
                    return
                except BufferError:
                    self._producer.poll(0.5)  # the local queue is full (a long outage): let it drain

    def _mark_published(self, connection: Any, row_ids: list[int]) -> None:
        if row_ids:
            connection.execute(
                update(self._outbox).where(self._outbox.c.id.in_(row_ids)).values(published_at=datetime.now(UTC))
            )

    def _export_backlog(self, connection: Connection) -> None:
        """The age of the oldest unpublished row and how many wait: a stuck relay shows here first."""
        if time.monotonic() - self._backlog_checked < 5:
            return
        self._backlog_checked = time.monotonic()
        outbox = self._outbox
        with connection.begin():
            oldest, pending = connection.execute(
                select(func.min(outbox.c.created_at), func.count()).where(outbox.c.published_at.is_(None))
            ).one()
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)  # SQLite returns naive datetimes
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0
        metrics.OUTBOX_OLDEST_PENDING.labels(self._service).set(age)
        metrics.OUTBOX_PENDING.labels(self._service).set(pending)

    def run(self, context: WorkerContext) -> None:
        """Publish until stopped. A lost database connection or a fatal producer error raises: the supervisor
        starts the relay again (and a standby replica may take over the lock meanwhile)."""
        if self._renew_producer is not None and self._runs > 0:
            self._producer = self._renew_producer()  # a restart: the old client may be in a fatal state
        self._runs += 1
        with self._engine.connect() as connection:
            try:
                self._publish_while_leading(connection, context)
            finally:
                self._step_down(connection)

    def _publish_while_leading(self, connection: Connection, context: WorkerContext) -> None:
        while not self._lead(connection):
            context.healthy()  # standing by is a healthy state
            if context.wait(2.0):
                return
        log.info("outbox relay of %s is the publisher", self._service)
        self._listen(connection)
        while not context.stop.is_set():
            self._export_backlog(connection)
            self._round_ok = True
            seen = OUTBOX_COMMITS.generation  # before the read: a commit after it still wakes the wait below
            published = self.publish_pending(connection, context)
            if self._round_ok:
                context.healthy()
            if published < self._batch_size:
                self._wait_for_commit(connection, seen, context.stop)
        # Drain what is already committed before the process goes away (publish_pending gives up soon).
        while self.publish_pending(connection, context):
            pass

    def _listen(self, connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            with connection.begin():
                connection.execute(text(f"LISTEN {OUTBOX_CHANNEL}"))

    def _wait_for_commit(self, connection: Connection, seen: int, stop: threading.Event) -> None:
        """Until a commit wrote outbox rows, the poll interval passed (the fallback), or the process stops."""
        deadline = time.monotonic() + self._poll_interval
        raw: Any = connection.connection.driver_connection
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            slice_ = min(remaining, 0.25)  # short slices: a stop is seen soon whatever the poll interval
            if connection.dialect.name != "postgresql":
                if OUTBOX_COMMITS.wait(seen, slice_):
                    return
            # Idle between transactions, so the server delivers at once; psycopg keeps the notifications that
            # arrived while the relay was busy and hands them out first (one wake for many commits).
            elif list(raw.notifies(timeout=slice_, stop_after=1)):
                return

    def _step_down(self, connection: Connection) -> None:
        """Release the lock (and stop listening) before the connection goes back to the pool, where it would
        keep holding it."""
        if connection.dialect.name != "postgresql":
            return
        try:
            with connection.begin():
                connection.execute(text("UNLISTEN *"))
                connection.execute(text("SELECT pg_advisory_unlock_all()"))
        except Exception:
            connection.invalidate()  # closed, not pooled: the server drops its locks with it

    def _lead(self, connection: Connection) -> bool:
        if connection.dialect.name != "postgresql":
            return True  # SQLite: the embedded default runs one process per service
        with connection.begin():
            held = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": RELAY_LOCK_KEY}).scalar()
        return bool(held)
