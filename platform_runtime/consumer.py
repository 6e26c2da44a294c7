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

Messages already fetched are applied together: up to BATCH_MAX in one transaction per tenant, one inbox query
and one COMMIT for all of them (a COMMIT is a disk flush; one per message held notify to ~50 events/s). If
anything in a batch fails, its transaction is rolled back whole and its messages are applied again one by
one, each sorted as above: the batch is only ever a faster way to the same outcome.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
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

BATCH_MAX = 100  # fetched messages applied in one transaction, at most
COMMIT_EVERY = 100  # messages applied before their offsets are committed, at most
COMMIT_INTERVAL = 0.5  # seconds between offset commits while messages keep coming
DEAD_LETTERED = "dead_lettered"
PARKED_SUFFIX = ".parked"  # the inbox's consumer group for the positions a group parked on the dead-letter topic
SKIPPED = "skipped"
tracer = trace.get_tracer(__name__)

# A handler applies one event inside the given unit of work; it must not commit.
Handler = Callable[[common_pb2.EventEnvelope, UnitOfWork], None]

# How often an idle consumer checks that the broker answers and that it holds partitions.
PROBE_SECONDS = 10.0
# A consumer the broker answers but that is out of its group this long is stuck (seen after a broker restart
# under load: the session timed out, librdkafka's JoinGroup request sat in its queue for good, and the probe
# kept answering): it reports itself failing, and past OUT_OF_GROUP_LIMIT raises, so the supervisor makes a
# new client. Where librdkafka's statistics are not kept (a test's plain client), "in its group" is "holds
# partitions", which assumes no more replicas than partitions (3 per topic, 2 replicas).
OUT_OF_GROUP_GRACE = 20.0
STATS_SECONDS = 5.0
OUT_OF_GROUP_LIMIT = 60.0  # a rejoin after a broker restart takes seconds (session.timeout.ms below)

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
        out_of_group_limit: float = OUT_OF_GROUP_LIMIT,
    ) -> None:
        self.group_id = group_id
        self._out_of_group_limit = out_of_group_limit
        self._out_of_group_since: float | None = None
        self._commits_failing_since: float | None = None  # the first of the commits failing since the last success
        self._last_fetched = time.monotonic()  # when poll last gave a message
        self._unanswered_since: float | None = None  # the first of the probes kafka has not answered since
        self._committing: dict[tuple[str, int], Message] = {}  # sent to be committed, the result not back yet
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
        self._out_of_group_since = self._last_fetched = time.monotonic()  # until its first assignment
        backoff = Backoff(self._retry_delay, self._max_backoff)
        uncommitted: dict[tuple[str, int], Message] = {}  # the last message applied of each partition
        applied_since_commit = 0
        last_commit = last_probe = time.monotonic()
        try:
            while not context.stop.is_set():
                message = consumer.poll(0.5)
                for key, failed_commit in self._commit_results(consumer, context).items():
                    uncommitted.setdefault(key, failed_commit)  # unless a later message of it waits already
                if message is None:
                    if uncommitted:
                        uncommitted = self._commit(consumer, uncommitted, context)
                        last_commit, applied_since_commit = time.monotonic(), 0
                    # Also while commits fail: a client out of its group fails every commit, and only the probe
                    # tells that apart and replaces it.
                    if time.monotonic() - last_probe > PROBE_SECONDS:
                        self._probe(consumer, context, well=not uncommitted)
                        last_probe = time.monotonic()
                    continue
                if (client_error := message.error()) is not None:
                    self._client_error(client_error, context)
                    continue
                self._last_fetched = time.monotonic()
                batch, client_errors = _with_fetched(consumer, message)
                outcomes, failure = self.process_batch(batch)
                for applied in batch[: len(outcomes)]:
                    uncommitted[applied.topic() or "", applied.partition() or 0] = applied
                    applied_since_commit += 1
                if failure is not None:
                    failed = batch[len(outcomes)]
                    log.warning("%s: will try %s again: %s", self.group_id, _position(failed), failure.__cause__)
                    context.failed(failure.__cause__ or failure)
                    metrics.CONSUMER_RETRIES.labels(self.group_id).inc()
                    _rewind(consumer, batch[len(outcomes) :])
                    context.wait(backoff.next())
                else:
                    backoff.reset()
                # A message of a type this group does not handle changed nothing: its offset waits for the next
                # commit (a batch, or when idle) instead of costing a broker round trip of its own (ADR 0019).
                # The others' go at once: a redelivery of what was applied or parked would only be dropped again.
                due = applied_since_commit >= COMMIT_EVERY or time.monotonic() - last_commit >= COMMIT_INTERVAL
                if uncommitted and (due or any(outcome != SKIPPED for outcome in outcomes)):
                    uncommitted = self._commit(consumer, uncommitted, context)
                    last_commit, applied_since_commit = time.monotonic(), 0
                    if not uncommitted and failure is None:
                        context.healthy()
                for client_error in client_errors:
                    self._client_error(client_error, context)
        finally:
            if uncommitted and context.stop.is_set():
                self._commit(consumer, uncommitted, context, wait=True)  # a clean stop leaves nothing to redeliver
            consumer.close()

    def _commit(
        self,
        consumer: Consumer,
        uncommitted: dict[tuple[str, int], Message],
        context: WorkerContext,
        *,
        wait: bool = False,
    ) -> dict[tuple[str, int], Message]:
        """Commit past each partition's last applied message; on failure return them, to be committed again
        later (when the consumer is idle, or after the next batch).

        The commit is not waited for (but at a clean stop): librdkafka's synchronous commit has no timeout, and
        one was seen to hold a consumer for good after a broker restart. Its result comes back through the
        client's on_commit (GroupWatchedConsumer), read after each poll by `_commit_results`."""
        offsets = [
            TopicPartition(message.topic() or "", message.partition() or 0, (message.offset() or 0) + 1)
            for message in uncommitted.values()
        ]
        try:
            if wait:
                consumer.commit(offsets=offsets, asynchronous=False)
            else:
                consumer.commit(offsets=offsets, asynchronous=True)
            self._committing.update(uncommitted)
            return {}
        except KafkaException as error:
            kafka_error = error.args[0] if error.args else None
            if isinstance(kafka_error, KafkaError) and _is_fatal(kafka_error):
                raise  # the client is unusable: the supervisor starts a new one (resuming at the committed offset)
            self._commit_failed(list(uncommitted.values()), error, context)
            return uncommitted

    def _commit_failed(self, messages: list[Message], error: object, context: WorkerContext) -> None:
        # NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, a rebalance, a timeout: the effect is committed in the
        # database already; the offset follows later, and a redelivery meanwhile is a duplicate.
        positions = ", ".join(_position(message) for message in messages)
        log.warning("%s: commit of %s failed, will commit again: %s", self.group_id, positions, error)
        metrics.COMMIT_FAILURES.labels(self.group_id).inc()
        if self._commits_failing_since is None:
            self._commits_failing_since = time.monotonic()
        context.failed(str(error))

    def _commit_results(self, consumer: Consumer, context: WorkerContext) -> dict[tuple[str, int], Message]:
        """The results of the commits sent, as the client reported them during the last poll: the messages of
        those that failed, to be committed again."""
        results: list[tuple[KafkaError | None, list[TopicPartition]]] = getattr(consumer, "commit_results", [])
        retry: dict[tuple[str, int], Message] = {}
        while results:
            error, partitions = results.pop(0)
            error = error or next((p.error for p in partitions if p.error is not None), None)
            sent = {
                key: self._committing.pop(key)
                for p in partitions
                if (key := (p.topic, p.partition)) in self._committing
            }
            if error is None:
                self._commits_failing_since = None
                continue
            if _is_fatal(error):
                raise KafkaException(error)
            retry |= sent
            self._commit_failed(list(sent.values()), error, context)
        return retry

    def _probe(self, consumer: Consumer, context: WorkerContext, *, well: bool) -> None:
        """An idle consumer asks the broker for its topics' metadata: the answer tells whether it could
        consume, which a quiet poll does not (it is as quiet with the broker away). Then whether it is in its
        group: a client the broker answers but that stays out of its group is replaced (OUT_OF_GROUP_LIMIT).
        `well`: nothing else is failing, so a good answer makes the worker healthy again."""
        now = time.monotonic()
        # Seen after a broker restart: every commit "waiting for coordinator" for minutes while the statistics
        # still said up/steady. A client whose commits fail that long is stuck.
        if self._commits_failing_since is not None and now - self._commits_failing_since >= self._out_of_group_limit:
            raise RuntimeError(
                f"{self.group_id}: every commit failed for {now - self._commits_failing_since:.0f} s "
                f"(group {getattr(consumer, 'group_state', '') or 'state unknown'})"
            )
        try:
            consumer.list_topics(self._topics[0], timeout=5)
            in_group = _in_group(consumer)
        except KafkaException as error:
            # The broker away, or this client's requests stuck in its queue to a restarted broker (seen: its
            # metadata requests timed out for minutes while other clients were served). A new client costs
            # nothing when the broker is really away, and is the cure when it is not.
            if self._unanswered_since is None:
                self._unanswered_since = now
            if now - self._unanswered_since >= self._out_of_group_limit:
                raise RuntimeError(
                    f"{self.group_id}: kafka has not answered this client for {now - self._unanswered_since:.0f} s"
                ) from error
            context.failed(f"kafka unreachable: {error}")
            return
        self._unanswered_since = None
        if in_group and self._out_of_group_since is not None:
            self._last_fetched = now  # just (re)joined: its fetching starts now
        # Also seen: a client in its group by every sign, idle, while messages wait on its partitions (librdkafka's
        # requests to the restarted broker sat in its queue). Asked only after a quiet spell: it costs a round trip.
        idle_for = now - self._last_fetched
        try:
            waiting = _waiting(consumer) if idle_for >= min(OUT_OF_GROUP_GRACE, self._out_of_group_limit / 2) else 0
        except KafkaException as error:
            context.failed(f"kafka unreachable: {error}")
            return
        if waiting:
            if idle_for >= self._out_of_group_limit:
                raise RuntimeError(f"{self.group_id}: {waiting} messages wait but none fetched for {idle_for:.0f} s")
            log.warning("%s: %d messages wait but none fetched for %.0f s", self.group_id, waiting, idle_for)
            context.failed(f"{waiting} messages wait on its partitions but none fetched for {idle_for:.0f} s")
            return
        if in_group:
            self._out_of_group_since = None
        elif self._out_of_group_since is None:
            self._out_of_group_since = now
        out_for = now - self._out_of_group_since if self._out_of_group_since is not None else 0.0
        if out_for >= self._out_of_group_limit:
            raise RuntimeError(f"{self.group_id}: out of its group for {out_for:.0f} s while kafka answers")
        if out_for >= min(OUT_OF_GROUP_GRACE, self._out_of_group_limit / 2):
            state = getattr(consumer, "group_state", "") or "no partitions"
            log.warning(
                "%s: kafka answers but the consumer is out of its group (%s, %.0f s)", self.group_id, state, out_for
            )
            context.failed(f"out of its consumer group for {out_for:.0f} s ({state}) while kafka answers")
            return
        if well:
            context.healthy()

    def _client_error(self, error: KafkaError, context: WorkerContext) -> None:
        if _is_fatal(error):
            raise KafkaException(error)
        if error.code() == KafkaError._PARTITION_EOF:
            return
        log.warning("%s: kafka client error: %s", self.group_id, error)
        context.failed(str(error))

    def process_batch(self, messages: list[Message]) -> tuple[list[str], TransientFailure | None]:
        """Apply fetched messages in order: together when they can be, else one by one. Returns the outcomes of
        those done, in order, and the transient failure that stopped at the next one (None when all are done)."""
        if len(messages) > 1:
            try:
                return self._apply_together(messages), None
            except Exception as error:
                log.info("%s: %d messages failed together (%s); one by one", self.group_id, len(messages), error)
        outcomes: list[str] = []
        for message in messages:
            try:
                outcomes.append(self.process(message))
            except TransientFailure as failure:
                return outcomes, failure
        return outcomes, None

    def process(self, message: Message) -> str:
        """Apply one message, or park it on the dead-letter topic; raise TransientFailure to try it later.
        Returns what became of it: applied, skipped, duplicate or DEAD_LETTERED."""
        with self._span(message) as span:
            error: Exception | None = None
            for attempt in range(1, self._max_attempts + 1):
                try:
                    return self._apply_together([message], [span])[0]
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
            self._park(message, error)
            metrics.CONSUMED.labels(self.group_id, message.topic() or "", DEAD_LETTERED).inc()
            return DEAD_LETTERED

    @contextlib.contextmanager
    def _span(self, message: Message) -> Iterator[trace.Span]:
        """The message's span, a child of the span that published it (its trace context rides in the headers)."""
        headers = decode_headers(message)
        with tracer.start_as_current_span(
            f"{message.topic()} process",
            context=propagate.extract(headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": message.topic() or "",
                "messaging.consumer.group.name": self.group_id,
                "messaging.message.id": headers.get("event_id", ""),
            },
        ) as span:
            yield span

    def _apply_together(self, messages: list[Message], spans: list[trace.Span] | None = None) -> list[str]:
        """Apply `messages` in order, one transaction per run of one tenant's messages; raise if any fails (what
        the failing transaction applied is rolled back with it). Returns each message's outcome."""
        envelopes = [_envelope(message) for message in messages]
        outcomes = ["" if envelope.event_type in self._handlers else SKIPPED for envelope in envelopes]
        with contextlib.ExitStack() as opened:
            if spans is None:
                spans = [opened.enter_context(self._span(message)) for message in messages]
            for tenant, run in _runs_of_one_tenant(envelopes, outcomes):
                done = self._apply_run(tenant, [(messages[i], envelopes[i], spans[i]) for i in run])
                for i, outcome in zip(run, done, strict=True):
                    outcomes[i] = outcome
        for message, outcome in zip(messages, outcomes, strict=True):
            metrics.CONSUMED.labels(self.group_id, message.topic() or "", outcome).inc()
        return outcomes

    def _apply_run(self, tenant: str, run: list[tuple[Message, common_pb2.EventEnvelope, trace.Span]]) -> list[str]:
        """Apply one tenant's events in one transaction: what the inbox has seen is a duplicate, each of the
        others goes to its handler and into the inbox. Returns each one's outcome, in order."""
        outcomes: list[str] = []
        with acting_as(system_principal(tenant, self.group_id)), self._database.unit_of_work(tenant) as uow:
            seen = self._seen(uow, {envelope.event_id for _, envelope, _ in run})
            for message, envelope, span in run:
                if envelope.event_id in seen:
                    log.info("event %s already applied by %s", envelope.event_id, self.group_id)
                    outcomes.append("duplicate")
                    continue
                span.set_attribute("minorprot.tenant", tenant)
                with trace.use_span(span, end_on_exit=False):
                    self._handlers[envelope.event_type](envelope, uow)
                self._remember(uow, envelope.event_id, message)
                seen.add(envelope.event_id)  # the same event twice in one batch: the second is a duplicate
                outcomes.append("applied")
            uow.commit()
        return outcomes

    def _seen(self, uow: UnitOfWork, event_ids: set[str], *, parked: bool = False) -> set[str]:
        """Which of `event_ids` this group's inbox holds (of what it parked, with `parked`)."""
        inbox = self._database.inbox
        group = self.group_id + PARKED_SUFFIX if parked else self.group_id
        query = select(inbox.c.event_id).where(inbox.c.consumer_group == group, inbox.c.event_id.in_(event_ids))
        return set(uow.session.scalars(query))

    def _remember(self, uow: UnitOfWork, event_id: str, message: Message, *, parked: bool = False) -> None:
        group = self.group_id + PARKED_SUFFIX if parked else self.group_id
        row = {"consumer_group": group, "event_id": event_id, "tenant_id": uow.tenant}
        uow.session.execute(
            insert(self._database.inbox).values(row | {"topic": message.topic(), "applied_at": datetime.now(UTC)})
        )

    def _park(self, message: Message, error: Exception | None) -> None:
        """Send `message` to the dead-letter topic once per position: if its offset commit then fails and the
        client dies, the redelivery is recognised by an inbox row keyed by the position (never by the event id,
        so a replayed copy, at a new offset, is tried and parked again if it still fails). A message without a
        readable tenant cannot be marked (the inbox is per tenant) and may be parked twice."""
        tenant = _tenant_of(message)
        marker = _position_key(message)
        if tenant:
            with self._database.unit_of_work(tenant) as uow:
                if self._seen(uow, {marker}, parked=True):
                    log.info("%s: %s was parked already", self.group_id, _position(message))
                    return
        self._send_to_dead_letters(message, error)
        if tenant:
            try:
                with self._database.unit_of_work(tenant) as uow:
                    self._remember(uow, marker, message, parked=True)
                    uow.commit()
            except Exception as failure:
                log.warning("%s: could not note %s as parked: %s", self.group_id, _position(message), failure)

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


def _envelope(message: Message) -> common_pb2.EventEnvelope:
    envelope = common_pb2.EventEnvelope()
    try:
        envelope.ParseFromString(message.value() or b"")
    except Exception as exc:
        raise PoisonMessage(f"not an event envelope: {exc}") from exc
    if not envelope.event_id or not envelope.tenant:
        raise PoisonMessage("envelope without event id or tenant")
    return envelope


def _tenant_of(message: Message) -> str:
    try:
        return _envelope(message).tenant
    except PoisonMessage:
        return ""


def _position_key(message: Message) -> str:
    """An inbox key for a message's place in its topic (32 hex characters, the width of an event id)."""
    return hashlib.md5(_position(message).encode(), usedforsecurity=False).hexdigest()


def _runs_of_one_tenant(envelopes: list[common_pb2.EventEnvelope], outcomes: list[str]) -> list[tuple[str, list[int]]]:
    """The indexes of the messages still to apply, in order, cut where the tenant changes (skipped ones never
    cut a run: they touch no database)."""
    runs: list[tuple[str, list[int]]] = []
    for index, envelope in enumerate(envelopes):
        if outcomes[index] == SKIPPED:
            continue
        if runs and runs[-1][0] == envelope.tenant:
            runs[-1][1].append(index)
        else:
            runs.append((envelope.tenant, [index]))
    return runs


def _with_fetched(consumer: Consumer, first: Message) -> tuple[list[Message], list[KafkaError]]:
    """`first` and the messages already fetched after it (no waiting), up to BATCH_MAX; client errors among them
    are returned apart, to be handled after the batch."""
    batch, errors = [first], []
    for message in consumer.consume(BATCH_MAX - 1, timeout=0):
        if (error := message.error()) is not None:
            errors.append(error)
        else:
            batch.append(message)
    return batch, errors


def _is_fatal(error: KafkaError) -> bool:
    # A commit on a client already in a fatal state fails with the code _FATAL but without the fatal flag.
    return bool(error.fatal()) or error.code() == KafkaError._FATAL


def _position(message: Message) -> str:
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"


def _rewind(consumer: Consumer, messages: list[Message]) -> None:
    """Fetch `messages` again from the next poll: each partition goes back to its first one among them (and
    what was fetched after it in that partition is dropped)."""
    first: dict[tuple[str, int], Message] = {}
    for message in messages:
        first.setdefault((message.topic() or "", message.partition() or 0), message)
    for message in first.values():
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


class GroupWatchedConsumer(Consumer):
    """A Kafka consumer that keeps librdkafka's own view of its group, from the statistics it emits every
    STATS_SECONDS (served by poll): "up/steady" once joined and assigned."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.group_state = ""
        self.commit_results: list[tuple[KafkaError | None, list[TopicPartition]]] = []  # read by the consumer
        super().__init__(
            config
            | {
                "statistics.interval.ms": int(STATS_SECONDS * 1000),
                "stats_cb": self._read_stats,
                "on_commit": lambda error, partitions: self.commit_results.append((error, partitions)),
            }
        )

    def _read_stats(self, raw: str) -> None:
        group = json.loads(raw).get("cgrp") or {}
        self.group_state = f"{group.get('state', '')}/{group.get('join_state', '')}"


def _in_group(consumer: Consumer) -> bool:
    """Joined and assigned, by librdkafka's statistics where the client keeps them, else by its assignment."""
    state = getattr(consumer, "group_state", "")
    return state == "up/steady" if state else bool(consumer.assignment())


def _waiting(consumer: Consumer) -> int:
    """Messages on the broker past this client's position, over the partitions it holds. Where it has fetched
    nothing yet, the position is its committed offset, or the partition's start (auto.offset.reset=earliest)."""
    partitions = consumer.assignment()
    if not partitions:
        return 0
    positions = consumer.position(partitions)
    unfetched = [p for p in positions if p.offset < 0]
    committed = (
        {(p.topic, p.partition): p.offset for p in consumer.committed(unfetched, timeout=5)} if unfetched else {}
    )
    waiting = 0
    for p in positions:
        low, high = consumer.get_watermark_offsets(p, timeout=5)
        position = p.offset if p.offset >= 0 else committed.get((p.topic, p.partition), -1)
        waiting += max(0, high - (position if position >= 0 else low))
    return waiting


def make_consumer(config: dict[str, Any], group_id: str) -> Consumer:
    consumer = GroupWatchedConsumer(
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
