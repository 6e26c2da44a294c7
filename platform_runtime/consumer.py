"""The idempotent consumer every service's Kafka entrypoints run on.

For each message: unpack the envelope, and in ONE transaction check the inbox, apply the handler's effect
and record the event id; only then commit the Kafka offset. A redelivered event changes nothing.

Failures are sorted by what will fix them:
- transient (the database or broker away, a timeout, a serialization failure, a rebalance): the message is
  put back (the partition is rewound to it) and tried again after a back-off, without limit and without
  committing past it; the worker reports itself failing, so a long outage turns the service NOT_SERVING;
- permanent (an undecodable envelope, a domain rule that can never pass): straight to `<topic>.dlt` with
  the error in its headers, and the consumer moves on; `python -m platform_runtime.dead_letters` replays it
  once the cause is fixed;
- anything else (most likely a bug): a few quick tries, then the dead-letter topic.
A failed offset commit is not an error of the message: its effect and inbox row are committed already, so
the consumer goes on and commits again later (a redelivery in between is dropped by the inbox). For the same
reason the offsets of messages the group skips (event types it does not handle) wait for the next commit
(every COMMIT_EVERY messages or COMMIT_INTERVAL seconds, when idle, or with the next message it applies)
instead of a broker round trip each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from minorprot.common.v1 import common_pb2
from opentelemetry import propagate, trace
from sqlalchemy import exc as sql_errors
from sqlalchemy import insert, select
from sqlalchemy.orm.exc import StaleDataError

from platform_runtime import metrics
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork
from platform_runtime.errors import ConcurrentUpdate, DomainError
from platform_runtime.supervisor import Backoff, WorkerContext
from platform_runtime.tenancy import acting_as
from platform_runtime.topics import dead_letter_topic

log = logging.getLogger(__name__)

COMMIT_EVERY = 100  # messages applied before their offsets are committed, at most
COMMIT_INTERVAL = 0.5  # seconds between offset commits while messages keep coming
DEAD_LETTERED = "dead_lettered"
SKIPPED = "skipped"
tracer = trace.get_tracer(__name__)

# A handler applies one event inside the given unit of work; it must not commit.
Handler = Callable[[common_pb2.EventEnvelope, UnitOfWork], None]

# How often an idle consumer checks that the broker answers.
PROBE_SECONDS = 10.0

# Status codes of a service call that say "not now", not "never".
_TRANSIENT_GRPC = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}


class PoisonMessage(Exception):
    """A message that can never be applied (bad bytes, wrong type): straight to the dead-letter topic."""


class TransientFailure(Exception):
    """Raised by `process` when the message could not be applied now but may be later: retry, never park it."""


def is_transient(error: BaseException) -> bool:
    """Whether waiting and trying again can make this error go away."""
    if isinstance(error, TransientFailure | KafkaException | ConnectionError | TimeoutError):
        return True
    if isinstance(error, ConcurrentUpdate | StaleDataError):
        return True  # lost a race on a version check: the next try reads the winner's state
    if isinstance(error, sql_errors.OperationalError | sql_errors.InterfaceError | sql_errors.DisconnectionError):
        return True  # connection lost, server shutting down, serialization failure, deadlock, lock timeout
    if isinstance(error, sql_errors.TimeoutError):
        return True  # no connection free in the pool
    if isinstance(error, sql_errors.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call):
        return error.code() in _TRANSIENT_GRPC
    return False


def is_permanent(error: BaseException) -> bool:
    """Whether no retry can ever apply the message: park it at once."""
    return isinstance(error, PoisonMessage | DomainError)


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
        dead_letters: Producer,
        handlers: dict[str, Handler],
        topics: list[str],
        new_consumer: Callable[[], Consumer] | None = None,
        max_attempts: int = 3,
        retry_delay: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.group_id = group_id
        self._database = database
        self._new_consumer = new_consumer
        self._dead_letters = dead_letters
        self._handlers = handlers
        self._topics = topics
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._max_backoff = max_backoff

    def run(self, context: WorkerContext) -> None:
        """Consume until stopped. A Kafka client in a fatal state raises: the supervisor starts a new one,
        which resumes from the last committed offset."""
        if self._new_consumer is None:
            raise RuntimeError("this consumer was built to be driven by process() only")
        consumer = self._new_consumer()
        consumer.subscribe(self._topics)
        backoff = Backoff(self._retry_delay, self._max_backoff)
        uncommitted: dict[tuple[str, int], Message] = {}  # the last message applied of each partition
        applied_since_commit = 0
        last_commit = last_probe = time.monotonic()
        try:
            while not context.stop.is_set():
                message = consumer.poll(0.5)
                if message is None:
                    if uncommitted:
                        uncommitted = self._commit(consumer, uncommitted, context)
                        last_commit, applied_since_commit = time.monotonic(), 0
                    elif time.monotonic() - last_probe > PROBE_SECONDS:
                        self._probe(consumer, context)
                        last_probe = time.monotonic()
                    continue
                if (client_error := message.error()) is not None:
                    self._client_error(client_error, context)
                    continue
                try:
                    outcome = self.process(message)
                except TransientFailure as failure:
                    log.warning("%s: will try %s again: %s", self.group_id, _position(message), failure.__cause__)
                    context.failed(failure.__cause__ or failure)
                    metrics.CONSUMER_RETRIES.labels(self.group_id).inc()
                    _rewind(consumer, message)
                    context.wait(backoff.next())
                    continue
                backoff.reset()
                uncommitted[message.topic() or "", message.partition() or 0] = message
                applied_since_commit += 1
                # A message of a type this group does not handle changed nothing: its offset waits for the next
                # commit (a batch, or when idle) instead of costing a broker round trip of its own (ADR 0019).
                # The others' go at once, as before: a dead letter has no inbox row to drop its redelivery.
                due = applied_since_commit >= COMMIT_EVERY or time.monotonic() - last_commit >= COMMIT_INTERVAL
                if due or outcome != SKIPPED:
                    uncommitted = self._commit(consumer, uncommitted, context)
                    last_commit, applied_since_commit = time.monotonic(), 0
                    if not uncommitted:
                        context.healthy()
        finally:
            if uncommitted and context.stop.is_set():
                self._commit(consumer, uncommitted, context)  # a clean stop leaves nothing to redeliver
            consumer.close()

    def _commit(
        self, consumer: Consumer, uncommitted: dict[tuple[str, int], Message], context: WorkerContext
    ) -> dict[tuple[str, int], Message]:
        """Commit past each partition's last applied message; on failure return them, to be committed again
        later (when the consumer is idle, or after the next batch)."""
        offsets = [
            TopicPartition(message.topic() or "", message.partition() or 0, (message.offset() or 0) + 1)
            for message in uncommitted.values()
        ]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
            return {}
        except KafkaException as error:
            kafka_error = error.args[0] if error.args else None
            if isinstance(kafka_error, KafkaError) and _is_fatal(kafka_error):
                raise  # the client is unusable: the supervisor starts a new one (resuming at the committed offset)
            # NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, a rebalance, a timeout: the effect is committed
            # in the database already; the offset follows later, and a redelivery meanwhile is a duplicate.
            positions = ", ".join(_position(message) for message in uncommitted.values())
            log.warning("%s: commit of %s failed, will commit again: %s", self.group_id, positions, error)
            metrics.COMMIT_FAILURES.labels(self.group_id).inc()
            context.failed(error)
            return uncommitted

    def _probe(self, consumer: Consumer, context: WorkerContext) -> None:
        """An idle consumer asks the broker for its topics' metadata: the answer tells whether it could
        consume, which a quiet poll does not (it is as quiet with the broker away)."""
        try:
            consumer.list_topics(self._topics[0], timeout=5)
        except KafkaException as error:
            context.failed(f"kafka unreachable: {error}")
            return
        context.healthy()

    def _client_error(self, error: KafkaError, context: WorkerContext) -> None:
        if _is_fatal(error):
            raise KafkaException(error)
        if error.code() == KafkaError._PARTITION_EOF:
            return
        log.warning("%s: kafka client error: %s", self.group_id, error)
        context.failed(str(error))

    def process(self, message: Message) -> str:
        """Apply one message, or park it on the dead-letter topic; raise TransientFailure to try it later.
        Returns what became of it: applied, skipped, duplicate or DEAD_LETTERED."""
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
            error: Exception | None = None
            for attempt in range(1, self._max_attempts + 1):
                try:
                    outcome = self._apply(message)
                    metrics.CONSUMED.labels(self.group_id, message.topic() or "", outcome).inc()
                    return outcome
                except Exception as caught:
                    error = caught
                    span.record_exception(caught)
                    if is_transient(caught):
                        raise TransientFailure(str(caught)) from caught
                    if is_permanent(caught):
                        break
                    log.warning(
                        "%s: applying %s failed (attempt %d): %s", self.group_id, _position(message), attempt, caught
                    )
                    time.sleep(self._retry_delay * attempt)
            self._send_to_dead_letters(message, error)
            metrics.CONSUMED.labels(self.group_id, message.topic() or "", DEAD_LETTERED).inc()
            return DEAD_LETTERED

    def _apply(self, message: Message) -> str:
        envelope = common_pb2.EventEnvelope()
        try:
            envelope.ParseFromString(message.value() or b"")
        except Exception as exc:
            raise PoisonMessage(f"not an event envelope: {exc}") from exc
        if not envelope.event_id or not envelope.tenant:
            raise PoisonMessage("envelope without event id or tenant")
        handler = self._handlers.get(envelope.event_type)
        if handler is None:
            return SKIPPED  # a topic carries several event types; this group acts on some of them
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
                return "duplicate"
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
        return "applied"

    def _send_to_dead_letters(self, message: Message, error: Exception | None) -> None:
        topic = message.topic() or "unknown"
        log.error("%s: sending %s to %s: %s", self.group_id, _position(message), dead_letter_topic(topic), error)
        headers: list[tuple[str, Any]] = [
            *_raw_headers(message),
            ("dlt.error", str(error)[:4000].encode()),
            ("dlt.consumer_group", self.group_id.encode()),
            ("dlt.original_partition", str(message.partition()).encode()),
            ("dlt.original_offset", str(message.offset()).encode()),
            ("dlt.failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        self._dead_letters.produce(dead_letter_topic(topic), key=message.key(), value=message.value(), headers=headers)
        if self._dead_letters.flush(30) > 0:
            # Never commit past a message we could not park: try it again later.
            raise TransientFailure(f"could not write to {dead_letter_topic(topic)}")


def _is_fatal(error: KafkaError) -> bool:
    # A commit on a client already in a fatal state fails with the code _FATAL but without the fatal flag.
    return bool(error.fatal()) or error.code() == KafkaError._FATAL


def _position(message: Message) -> str:
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"


def _rewind(consumer: Consumer, message: Message) -> None:
    """Fetch `message` again at the next poll (and drop what was fetched after it in that partition)."""
    try:
        consumer.seek(TopicPartition(message.topic() or "", message.partition() or 0, message.offset() or 0))
    except KafkaException as error:
        # The partition was taken away by a rebalance: its new owner starts from the committed offset,
        # which is still before this message. Nothing to rewind here.
        log.info("could not rewind %s (%s); its partition moved", _position(message), error)


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
            # After a broker restart the coordinator reloads the group with this consumer's old member, and the
            # consumer rejoins under a new id: its partitions wait until the old member's session times out.
            # librdkafka's 45 s default held crisis alerts that long. (Static membership, group.instance.id,
            # would rejoin at once, but a commit still in flight under the old member id then fences the client
            # off for good: a fatal error on every broker restart.) Heartbeats come from librdkafka's own thread.
            "session.timeout.ms": 6000,  # the broker's minimum by default
            "heartbeat.interval.ms": 1500,
            "reconnect.backoff.max.ms": 1000,  # back within a second of a broker restart (default: up to 10 s)
        }
    )
    return consumer
