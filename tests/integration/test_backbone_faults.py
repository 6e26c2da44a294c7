"""The event backbone under faults injected deterministically, on real PostgreSQL and a real Kafka broker.

The races the broker restart showed (a commit landing while the group coordinator loads, a database failing
over under a consumer) are made to happen here on purpose, every time: commit failures by a Kafka consumer
whose `commit` raises the broker's real error codes, database failures by a handler that raises what
SQLAlchemy raises when the server goes away. The real restarts are the fault suite's (tests/faults).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from google.protobuf import wrappers_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from minorprot.common.v1 import common_pb2
from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy import exc as sql_errors

from platform_runtime import housekeeping, metrics
from platform_runtime.consumer import IdempotentConsumer
from platform_runtime.db import Database, UnitOfWork, make_engine
from platform_runtime.dead_letters import DeadLetters
from platform_runtime.errors import Conflict
from platform_runtime.events import PendingEvent
from platform_runtime.outbox import OutboxRelay, make_producer
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, KafkaSettings
from platform_runtime.supervisor import Supervisor, Worker
from platform_runtime.topics import REPORTING_REPORT
from services.reporting.adapters.orm import metadata
from tests.support.infra import PILOT_TENANT, ROOT, Secrets, isolated_kafka_env
from tests.support.services import migrated_database, service_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

EVENT_TYPE = wrappers_pb2.StringValue.DESCRIPTOR.full_name


@pytest.fixture
def prefix(kafka: KafkaSettings) -> str:
    return isolated_kafka_env(kafka)["KAFKA_TOPIC_PREFIX"]


@pytest.fixture(scope="module")
def reporting_db(postgres_url: str) -> Any:
    return migrated_database(postgres_url, "reporting")


@pytest.fixture
def database(reporting_db: Any) -> Iterator[Database]:
    database = Database.connect(reporting_db.app_url, metadata)
    yield database
    database.dispose()


def publish(database: Database, values: list[str], key: str = "k") -> None:
    """Events as a use case writes them: into the outbox, in one transaction."""
    with database.unit_of_work(PILOT_TENANT) as uow:
        for value in values:
            uow.publish(
                PendingEvent(REPORTING_REPORT, PILOT_TENANT, "test", key, wrappers_pb2.StringValue(value=value))
            )
        uow.commit()


def relay_once(reporting_db: Any, kafka: KafkaSettings, prefix: str) -> None:
    engine = make_engine(reporting_db.relay_url)
    relay = OutboxRelay(engine, metadata.tables["outbox"], make_producer(kafka, "test-relay"), topic_prefix=prefix)
    while relay.publish_pending():
        pass
    engine.dispose()


def applied(database: Database, group: str) -> dict[str, int]:
    """Event ids applied by `group`, with how many inbox rows each has (exactly once means 1)."""
    inbox = database.inbox
    with database.unit_of_work(PILOT_TENANT) as uow:
        rows = uow.session.execute(
            select(inbox.c.event_id, func.count()).where(inbox.c.consumer_group == group).group_by(inbox.c.event_id)
        ).all()
    return {event_id: count for event_id, count in rows}


@contextmanager
def supervised(*workers: Worker, down_after: float = 120) -> Iterator[Supervisor]:
    supervisor = Supervisor(list(workers), down_after=down_after, initial_backoff=0.1, max_backoff=0.5)
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.stop(15)


class FlakyCommits(Consumer):
    """A real Kafka consumer whose offset commits first fail with the broker's own error codes."""

    def __init__(self, config: dict[str, Any], failures: list[int]) -> None:
        super().__init__(config)
        self.failures = failures

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures:
            raise KafkaException(KafkaError(self.failures.pop(0)))
        return super().commit(*args, **kwargs)


def committed_to_the_end(kafka: KafkaSettings, group: str, topic: str) -> bool:
    probe = Consumer(kafka.client_config() | {"group.id": group})
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        for partition in partitions:
            _, high = probe.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            committed = probe.committed([TopicPartition(topic, partition)], timeout=10)[0].offset
            if high > 0 and committed < high:
                return False
        return True
    finally:
        probe.close()


def test_commit_and_database_failures_are_retried_and_only_permanent_ones_are_dead_lettered(
    kafka: KafkaSettings, database: Database, reporting_db: Any, prefix: str
) -> None:
    group = f"faults-{uuid.uuid4().hex[:8]}"
    topic = prefix + REPORTING_REPORT
    attempts: dict[str, int] = {}
    fixed = {"rule": False, "bug": False}

    def handle(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        value = wrappers_pb2.StringValue()
        envelope.payload.Unpack(value)
        attempts[value.value] = attempts.get(value.value, 0) + 1
        if value.value == "failover" and attempts[value.value] <= 3:
            # What psycopg raises through SQLAlchemy while the server restarts or fails over.
            raise sql_errors.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        if value.value == "rule" and not fixed["rule"]:
            raise Conflict("the town of this event is not onboarded yet")
        if value.value == "bug" and not fixed["bug"]:
            raise KeyError("a bug")

    commit_failures = [
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError._TIMED_OUT,
        KafkaError._FATAL,  # the client is done for (e.g. fenced): a new one must take over
    ]

    def new_consumer() -> Consumer:
        settings = kafka.client_config() | {
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
        return FlakyCommits(settings, commit_failures)

    consumer = IdempotentConsumer(
        group_id=group,
        database=database,
        new_consumer=new_consumer,
        dead_letters=make_producer(kafka, "faults-dlt"),
        handlers={EVENT_TYPE: handle},
        topics=[topic],
        retry_delay=0.05,
        max_backoff=0.5,
    )
    commits_failed_before = metrics.COMMIT_FAILURES.labels(group)._value.get()
    good = [f"good-{n}" for n in range(20)]
    publish(database, [*good[:10], "failover", "rule", "bug", *good[10:]])
    relay_once(reporting_db, kafka, prefix)

    with supervised(Worker("consumer", consumer.run)) as supervisor:
        eventually(lambda: len(applied(database, group)) == 21, what="every applicable event applied")
        assert set(applied(database, group).values()) == {1}  # exactly once, whatever failed meanwhile
        assert attempts["failover"] == 4  # three database failures, then applied: never dead-lettered
        assert attempts["rule"] == 1  # a domain rule: parked at once
        assert attempts["bug"] == 3  # unknown: a few tries, then parked
        eventually(lambda: committed_to_the_end(kafka, group, topic), what="offsets committed to the end")
        assert metrics.COMMIT_FAILURES.labels(group)._value.get() == commits_failed_before + 4
        assert supervisor.states["consumer"].restarts == 1  # after the fatal one, with a new client
        eventually(lambda: supervisor.states["consumer"].down_since is None, what="the consumer well again")

        letters = DeadLetters(kafka, prefix).read([REPORTING_REPORT])
        parked = sorted(letter.header("dlt.error") for letter in letters)
        assert len(parked) == 2 and "not onboarded" in parked[1] and "a bug" in parked[0]

        # The causes are fixed (a town onboarded, a release); the operator replays the dead letters.
        fixed["rule"] = fixed["bug"] = True
        env = dict(os.environ) | {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "KAFKA_TOPIC_PREFIX": prefix}
        tool = [sys.executable, "-m", "platform_runtime.dead_letters"]
        listing = subprocess.run([*tool, "list"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        assert listing.stdout.count("\twaiting\t") == 2
        replay = subprocess.run(
            [*tool, "replay", "--topic", REPORTING_REPORT], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert replay.returncode == 0, replay.stderr
        assert "2 dead letters replayed" in replay.stdout
        eventually(lambda: len(applied(database, group)) == 23, what="the replayed events applied")
        # Replaying again sends nothing: the tool remembers what it replayed.
        again = subprocess.run([*tool, "replay", "--all"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert "0 dead letters replayed" in again.stdout, again.stderr
        assert set(applied(database, group).values()) == {1}


def test_with_two_relays_one_publishes_in_commit_order_and_the_other_takes_over(
    kafka: KafkaSettings, database: Database, reporting_db: Any, prefix: str
) -> None:
    def relay() -> OutboxRelay:
        return OutboxRelay(
            make_engine(reporting_db.relay_url),
            metadata.tables["outbox"],
            make_producer(kafka, "ordered-relay", retry_until_acknowledged=True),
            topic_prefix=prefix,
            batch_size=7,  # many small batches, so the two replicas would interleave if both published
            poll_interval=0.01,
        )

    values = [f"{key}:{n:04d}" for n in range(150) for key in ("a", "b", "c")]
    reader = Consumer(
        kafka.client_config() | {"group.id": f"order-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    reader.subscribe([prefix + REPORTING_REPORT])
    seen: list[str] = []

    def read_until(count: int) -> bool:
        while (message := reader.poll(0.2)) is not None:
            if not message.error():
                envelope = common_pb2.EventEnvelope.FromString(message.value() or b"")
                value = wrappers_pb2.StringValue()
                envelope.payload.Unpack(value)
                seen.append(value.value)
        return len(seen) >= count

    first = supervised(Worker("relay-1", relay().run))
    second = supervised(Worker("relay-2", relay().run))
    try:
        with first, second:
            for start in range(0, len(values), 30):  # committed while the relays run
                chunk = values[start : start + 30]
                for key in ("a", "b", "c"):
                    publish(database, [v for v in chunk if v.startswith(key)], key=key)
            eventually(lambda: read_until(len(values)), what="every event on Kafka")
        for key in ("a", "b", "c"):
            of_key = [value for value in seen if value.startswith(key)]
            assert of_key == sorted(of_key) and len(of_key) == 150, f"events of {key} out of order or doubled"

        # One replica stops; the one standing by takes the lock and publishes what comes next.
        with supervised(Worker("relay-3", relay().run)) as third, supervised(Worker("relay-4", relay().run)):
            eventually(lambda: all(s.down_since is None for s in third.states.values()), what="relays up")
            publish(database, ["d:0000"], key="d")
            eventually(lambda: read_until(len(values) + 1), what="the next event")
        with supervised(Worker("relay-5", relay().run)):
            publish(database, ["d:0001"], key="d")
            eventually(lambda: read_until(len(values) + 2), what="an event after a takeover")
        assert seen[-2:] == ["d:0000", "d:0001"]
    finally:
        reader.close()


def test_housekeeping_deletes_published_history_and_old_inbox_rows_only(database: Database, reporting_db: Any) -> None:
    publish(database, ["old-published", "old-pending", "new-published"], key=f"h{uuid.uuid4().hex[:6]}")
    outbox, inbox = database.outbox, database.inbox
    long_ago = datetime.now(UTC) - timedelta(days=40)
    owner = create_engine(reporting_db.owner_url)
    with owner.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
        rows = {
            wrappers_pb2.StringValue.FromString(
                common_pb2.EventEnvelope.FromString(row.envelope).payload.value
            ).value: row.id
            for row in connection.execute(select(outbox.c.id, outbox.c.envelope).where(outbox.c.published_at.is_(None)))
        }
        two_hours_ago = datetime.now(UTC) - timedelta(hours=2)  # longer ago than the hour published rows are kept
        connection.execute(
            update(outbox)
            .where(outbox.c.id == rows["old-published"])
            .values(created_at=two_hours_ago, published_at=two_hours_ago)
        )
        connection.execute(update(outbox).where(outbox.c.id == rows["old-pending"]).values(created_at=long_ago))
        connection.execute(
            update(outbox)
            .where(outbox.c.id == rows["new-published"])
            .values(published_at=datetime.now(UTC) - timedelta(minutes=10))
        )
        for event_id, applied_at in (("old-inbox", long_ago), ("new-inbox", datetime.now(UTC))):
            connection.execute(
                insert(inbox).values(
                    consumer_group="housekeeping",
                    event_id=event_id,
                    tenant_id=PILOT_TENANT,
                    topic=REPORTING_REPORT,
                    applied_at=applied_at,
                )
            )

    relay_engine = make_engine(reporting_db.relay_url)  # the role housekeeping runs as
    purged = housekeeping.purge(relay_engine, outbox, inbox, outbox_seconds=3600, inbox_days=30)
    relay_engine.dispose()

    assert purged["outbox"] >= 1 and purged["inbox"] >= 1
    with owner.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
        left = set(connection.scalars(select(outbox.c.id).where(outbox.c.id.in_(rows.values()))))
        inbox_left = set(connection.scalars(select(inbox.c.event_id).where(inbox.c.consumer_group == "housekeeping")))
    owner.dispose()
    assert left == {rows["old-pending"], rows["new-published"]}  # never an unpublished row
    assert inbox_left == {"new-inbox"}


def test_a_service_whose_worker_stays_down_reports_not_serving(
    postgres_url: str, secrets: Secrets, reporting_db: Any
) -> None:
    from services.notify import bootstrap
    from services.notify.settings import load_settings

    db = migrated_database(postgres_url, "notify")
    nowhere = KafkaSettings(bootstrap_servers="127.0.0.1:1")  # no broker will ever answer here
    env = service_env(db, nowhere, secrets, WORKER_DOWN_SECONDS="2", SHUTDOWN_DRAIN_SECONDS="0")
    server = build(bootstrap.definition(load_settings(EnvReader(env))))
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)

            def status() -> int:
                return int(health.Check(health_pb2.HealthCheckRequest(), timeout=2).status)

            eventually(lambda: status() == health_pb2.HealthCheckResponse.NOT_SERVING, timeout=60, what="NOT_SERVING")
        assert server.supervisor is not None
        down = [state.name for state in server.supervisor.down_workers()]
        assert any("consumer" in name for name in down), down
    finally:
        started = time.monotonic()
        server.stop(grace=1)
        assert time.monotonic() - started < 25  # inside Kubernetes' 30 s grace, even with Kafka away


def test_a_relay_whose_producer_kafka_never_acknowledges_starts_again_with_a_new_one(
    kafka: KafkaSettings, database: Database, reporting_db: Any, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens at the first producer's address, so Kafka acknowledges nothing from it, as from the producer
    # left stuck after a broker restart; the replacement reaches the real broker.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{probe.getsockname()[1]}")
    renewed: list[str] = []

    def new_producer() -> Any:
        renewed.append("new")
        return make_producer(kafka, "renewed-relay", retry_until_acknowledged=True)

    relay = OutboxRelay(
        make_engine(reporting_db.relay_url),
        metadata.tables["outbox"],
        make_producer(nowhere, "stuck-relay", retry_until_acknowledged=True),
        topic_prefix=prefix,
        poll_interval=0.05,
        stall_after=0.5,
        replace_after=2.0,
        renew_producer=new_producer,
    )
    key = f"stuck-{uuid.uuid4().hex[:8]}"
    values = [f"{key}:{n}" for n in range(5)]
    reader = Consumer(
        kafka.client_config() | {"group.id": f"stuck-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    reader.subscribe([prefix + REPORTING_REPORT])
    seen: list[str] = []

    def read_all() -> bool:
        while (message := reader.poll(0.2)) is not None:
            if not message.error():
                envelope = common_pb2.EventEnvelope.FromString(message.value() or b"")
                value = wrappers_pb2.StringValue()
                envelope.payload.Unpack(value)
                if value.value.startswith(key):
                    seen.append(value.value)
        return len(seen) >= len(values)

    try:
        publish(database, values, key=key)
        with caplog.at_level("WARNING"), supervised(Worker("relay", relay.run)) as supervisor:
            eventually(read_all, what="the rows the stuck producer held, sent by its replacement")
            state = supervisor.states["relay"]
            eventually(lambda: state.down_since is None, what="the relay well again")
        assert seen == values  # once each and in order: the stuck producer's queue was purged, never delivered
        assert renewed == ["new"] and state.restarts == 1 and state.failures >= 1
        assert "kafka has not acknowledged" in caplog.text  # reported failing before it is replaced
        assert "the relay starts again with a new producer" in caplog.text
        outbox = metadata.tables["outbox"]
        with database.unit_of_work(PILOT_TENANT) as uow:
            pending = uow.session.scalar(
                select(func.count()).where(outbox.c.message_key.like(f"%{key}"), outbox.c.published_at.is_(None))
            )
        assert pending == 0
    finally:
        reader.close()
