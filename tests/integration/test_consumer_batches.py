"""A consumer applies the messages it has already fetched together, one transaction for many, and when one of
them fails the batch falls back to one by one: the others are applied exactly once, the bad one is parked."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException
from google.protobuf import wrappers_pb2
from minorprot.common.v1 import common_pb2

from platform_runtime import consumer as consumer_module
from platform_runtime.consumer import GroupWatchedConsumer, IdempotentConsumer, make_consumer
from platform_runtime.db import Database, UnitOfWork
from platform_runtime.errors import DomainError
from platform_runtime.outbox import make_producer
from platform_runtime.settings import KafkaSettings
from platform_runtime.supervisor import Worker
from platform_runtime.topics import REPORTING_REPORT, dead_letter_topic
from tests.integration.test_backbone_faults import (
    EVENT_TYPE,
    applied,
    committed_to_the_end,
    database,
    prefix,
    publish,
    relay_once,
    reporting_db,
    supervised,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
__all__ = ["database", "prefix", "reporting_db"]  # fixtures, used by name

EVENTS = 300


def consumer_of(kafka: KafkaSettings, database: Database, group: str, topic: str, handle: Any) -> IdempotentConsumer:
    return IdempotentConsumer(
        group_id=group,
        database=database,
        new_consumer=lambda: Consumer(
            kafka.client_config() | {"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"}
        ),
        dead_letters=make_producer(kafka, f"{group}-dlt"),
        handlers={EVENT_TYPE: handle},
        topics=[topic],
        retry_delay=0.05,
    )


def value_of(envelope: common_pb2.EventEnvelope) -> str:
    value = wrappers_pb2.StringValue()
    envelope.payload.Unpack(value)
    return value.value


def test_fetched_messages_share_transactions_and_each_is_applied_once(
    kafka: KafkaSettings, database: Database, reporting_db: Any, prefix: str
) -> None:
    group = f"batches-{uuid.uuid4().hex[:8]}"
    topic = prefix + REPORTING_REPORT
    publish(database, [f"v{n}" for n in range(EVENTS)])
    relay_once(reporting_db, kafka, prefix)
    seen: list[str] = []
    transactions: set[int] = set()

    def handle(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        seen.append(value_of(envelope))
        transactions.add(id(uow.session))

    with supervised(Worker("consumer", consumer_of(kafka, database, group, topic, handle).run)):
        eventually(lambda: len(applied(database, group)) == EVENTS, timeout=60, what="every event applied")
        eventually(lambda: committed_to_the_end(kafka, group, topic), what="offsets committed to the end")
    assert set(applied(database, group).values()) == {1}
    assert sorted(seen) == sorted(f"v{n}" for n in range(EVENTS))
    # Already fetched when the first arrives, most share a transaction (how many depends on fetch timing).
    assert len(transactions) < EVENTS / 2, f"{len(transactions)} transactions for {EVENTS} events"


def test_one_bad_message_in_a_batch_is_parked_and_the_others_are_applied_once(
    kafka: KafkaSettings, database: Database, reporting_db: Any, prefix: str
) -> None:
    group = f"batches-{uuid.uuid4().hex[:8]}"
    topic = prefix + REPORTING_REPORT
    values = [f"v{n}" for n in range(EVENTS)]
    publish(database, values)
    relay_once(reporting_db, kafka, prefix)
    calls: list[str] = []

    def handle(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        value = value_of(envelope)
        calls.append(value)
        if value == "v150":
            raise DomainError("this one can never be applied")
        uow.session.flush()  # something of it reached the database before the failure rolled the batch back

    with supervised(Worker("consumer", consumer_of(kafka, database, group, topic, handle).run)):
        eventually(lambda: len(applied(database, group)) == EVENTS - 1, timeout=120, what="all but one applied")
        eventually(lambda: committed_to_the_end(kafka, group, topic), what="offsets committed to the end")
    done = applied(database, group)
    assert set(done.values()) == {1}
    assert len(done) == EVENTS - 1
    assert set(calls) == set(values)
    parked = dead_letters(kafka, topic, group)
    assert len(parked) == 1 and "can never be applied" in parked[0]


def dead_letters(kafka: KafkaSettings, topic: str, group: str, quiet: float = 3.0) -> list[str]:
    """The dlt.error headers of what `group` parked: read until nothing more came for `quiet` seconds."""
    probe = Consumer(kafka.client_config() | {"group.id": f"probe-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"})
    probe.subscribe([dead_letter_topic(topic)])
    found: list[str] = []
    deadline = time.monotonic() + 30
    last_found = time.monotonic()
    try:
        while time.monotonic() < deadline and not (found and time.monotonic() - last_found > quiet):
            message = probe.poll(0.5)
            if message is None or message.error():
                continue
            headers = dict(message.headers() or [])
            if headers.get("dlt.consumer_group") == group.encode():
                found.append(str(headers.get("dlt.error")))
                last_found = time.monotonic()
    finally:
        probe.close()
    return found


def test_a_parked_message_delivered_again_at_the_same_place_is_not_parked_twice(
    kafka: KafkaSettings, database: Database, reporting_db: Any, prefix: str
) -> None:
    """Its offset commit failed and the client died: the redelivery is recognised; a replayed copy is not."""
    group = f"batches-{uuid.uuid4().hex[:8]}"
    topic = prefix + REPORTING_REPORT
    publish(database, ["never"], key=f"k{uuid.uuid4().hex}")
    relay_once(reporting_db, kafka, prefix)

    def handle(_envelope: common_pb2.EventEnvelope, _uow: UnitOfWork) -> None:
        raise DomainError("this one can never be applied")

    reader = Consumer(kafka.client_config() | {"group.id": f"reader-{group}", "auto.offset.reset": "earliest"})
    reader.subscribe([topic])
    try:
        message = eventually(lambda: next((m for m in [reader.poll(0.5)] if m and not m.error()), None))
    finally:
        reader.close()
    consumer = consumer_of(kafka, database, group, topic, handle)
    assert consumer.process(message) == "dead_lettered"
    assert consumer.process(message) == "dead_lettered"  # the same position again
    assert len(dead_letters(kafka, topic, group)) == 1


def watched_consumer(
    kafka: KafkaSettings, database: Database, prefix: str, group: str, kinds: list[type[Consumer]], limit: float
) -> tuple[IdempotentConsumer, list[Consumer]]:
    """A consumer of the test topic whose clients are made of `kinds` in turn (the last one for all later), and
    the list of the clients made, to see the supervisor replace one; `limit` is its out-of-group limit."""
    clients: list[Consumer] = []

    def new_client() -> Consumer:
        config = {"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"}
        clients.append(kinds[min(len(clients), len(kinds) - 1)](kafka.client_config() | config))
        return clients[-1]

    consumer = IdempotentConsumer(
        group_id=group,
        database=database,
        new_consumer=new_client,
        dead_letters=make_producer(kafka, f"{group}-dlt"),
        handlers={EVENT_TYPE: lambda _envelope, _uow: None},
        topics=[prefix + REPORTING_REPORT],
        out_of_group_limit=limit,
    )
    return consumer, clients


class NeverAssigned(Consumer):
    """A client that subscribed but never holds a partition, as librdkafka did after a broker restart under load
    (its session timed out and it never rejoined) while the broker kept answering."""

    def assignment(self, *args: Any, **kwargs: Any) -> Any:
        return []


def test_a_consumer_left_out_of_its_group_says_so_and_gets_a_new_client(
    kafka: KafkaSettings, database: Database, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "PROBE_SECONDS", 0.2)
    group = f"stuck-{uuid.uuid4().hex[:8]}"
    stuck, clients = watched_consumer(kafka, database, prefix, group, [NeverAssigned], limit=4)
    with supervised(Worker("consumer", stuck.run)) as supervisor:
        eventually(lambda: supervisor.states["consumer"].down_since is not None, what="the stuck consumer failing")
        eventually(lambda: len(clients) >= 2, what="a new client made by the supervisor")
        assert supervisor.states["consumer"].restarts >= 1


def test_the_platforms_client_knows_when_it_has_joined_its_group(kafka: KafkaSettings, prefix: str) -> None:
    client = make_consumer(kafka.client_config(), f"joined-{uuid.uuid4().hex[:8]}")
    try:
        assert isinstance(client, GroupWatchedConsumer) and client.group_state == ""
        client.subscribe([prefix + REPORTING_REPORT])
        eventually(lambda: client.poll(0.5) is None and client.group_state == "up/steady", what="joined")
    finally:
        client.close()


class CommitsNeverReachTheCoordinator(Consumer):
    """A client in its group by every sign but whose every commit fails, as librdkafka's did for minutes after a
    broker restart ("waiting for coordinator") while its statistics still said up/steady."""

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        raise KafkaException(KafkaError(KafkaError._WAIT_COORD, "Commit failed: Local: Waiting for coordinator"))


def test_a_consumer_whose_commits_keep_failing_while_kafka_answers_gets_a_new_client(
    kafka: KafkaSettings,
    database: Database,
    reporting_db: Any,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(consumer_module, "PROBE_SECONDS", 0.2)
    group = f"uncommitted-{uuid.uuid4().hex[:8]}"
    publish(database, ["v1"])
    relay_once(reporting_db, kafka, prefix)
    stuck, clients = watched_consumer(kafka, database, prefix, group, [CommitsNeverReachTheCoordinator], limit=3)
    with supervised(Worker("consumer", stuck.run)):
        eventually(lambda: len(applied(database, group)) == 1, what="the event applied")
        eventually(lambda: len(clients) >= 2, timeout=30, what="a new client made by the supervisor")
        assert "every commit failed" in caplog.text  # the supervisor logs why it restarts the worker
    assert set(applied(database, group).values()) == {1}  # the new client's redelivery is a duplicate


class FetchesNothing(Consumer):
    """A client in its group that fetches nothing, as librdkafka's did after a broker restart (its requests sat
    in the queue of its connection to the restarted broker): its partitions are paused as soon as assigned."""

    def subscribe(self, topics: list[str], *args: Any, **kwargs: Any) -> None:
        def paused(consumer: Consumer, partitions: list[Any]) -> None:
            consumer.assign(partitions)
            consumer.pause(partitions)

        super().subscribe(topics, on_assign=paused)


def test_a_consumer_that_fetches_nothing_while_messages_wait_gets_a_new_client(
    kafka: KafkaSettings,
    database: Database,
    reporting_db: Any,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(consumer_module, "PROBE_SECONDS", 0.2)
    group = f"unfetched-{uuid.uuid4().hex[:8]}"
    publish(database, ["v1"])
    relay_once(reporting_db, kafka, prefix)
    stuck, clients = watched_consumer(kafka, database, prefix, group, [FetchesNothing, Consumer], limit=4)
    with supervised(Worker("consumer", stuck.run)):
        eventually(lambda: len(clients) >= 2, timeout=30, what="a new client made by the supervisor")
        assert "messages wait but none fetched" in caplog.text
        eventually(lambda: len(applied(database, group)) == 1, what="the event applied by the new client")


class MetadataNeverAnswered(Consumer):
    """A client whose metadata requests all time out while the broker serves others, as librdkafka's did after a
    broker restart (its requests sat in the queue of its connection to the restarted broker)."""

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "Failed to get metadata: Local: Timed out"))


def test_a_consumer_kafka_stops_answering_gets_a_new_client(
    kafka: KafkaSettings,
    database: Database,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(consumer_module, "PROBE_SECONDS", 0.2)
    group = f"unanswered-{uuid.uuid4().hex[:8]}"
    stuck, clients = watched_consumer(kafka, database, prefix, group, [MetadataNeverAnswered], limit=3)
    with supervised(Worker("consumer", stuck.run)) as supervisor:
        eventually(lambda: supervisor.states["consumer"].down_since is not None, what="the consumer failing")
        eventually(lambda: len(clients) >= 2, timeout=30, what="a new client made by the supervisor")
        assert "kafka has not answered this client" in caplog.text
