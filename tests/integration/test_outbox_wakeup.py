"""The relay is woken by the commit that wrote outbox rows, not by its poll (ADR 0019).

Each relay here polls once an hour, so an event published within seconds can only have been woken: by a
NOTIFY sent at commit on PostgreSQL, by the in-process signal on SQLite. A rolled-back transaction sends
nothing, and a stop is seen at once however long the poll interval.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest
from google.protobuf import wrappers_pb2
from sqlalchemy import Engine, select

from platform_runtime.db import Database, make_engine
from platform_runtime.events import PendingEvent
from platform_runtime.outbox import OutboxRelay, make_producer
from platform_runtime.settings import KafkaSettings
from platform_runtime.supervisor import Supervisor, Worker
from platform_runtime.topics import REPORTING_REPORT
from services.reporting.adapters.orm import metadata
from tests.support.infra import PILOT_TENANT, isolated_kafka_env
from tests.support.services import migrated_database
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

AN_HOUR = 3600.0


def publish(database: Database, value: str, *, commit: bool = True) -> None:
    with database.unit_of_work(PILOT_TENANT) as uow:
        uow.publish(PendingEvent(REPORTING_REPORT, PILOT_TENANT, "test", "k", wrappers_pb2.StringValue(value=value)))
        if commit:
            uow.commit()


def published(relay_engine: Engine) -> int:
    outbox = metadata.tables["outbox"]
    with relay_engine.connect() as connection:
        return len(connection.execute(select(outbox.c.id).where(outbox.c.published_at.is_not(None))).all())


def has_published(relay_engine: Engine, count: int) -> bool:
    return published(relay_engine) == count


@contextmanager
def relay_polling_hourly(relay_engine: Engine, kafka: KafkaSettings) -> Iterator[Supervisor]:
    relay = OutboxRelay(
        relay_engine,
        metadata.tables["outbox"],
        make_producer(kafka, "wakeup-relay"),
        topic_prefix=isolated_kafka_env(kafka)["KAFKA_TOPIC_PREFIX"],
        poll_interval=AN_HOUR,
    )
    supervisor = Supervisor([Worker("relay", relay.run)], down_after=120)
    supervisor.start()
    try:
        yield supervisor
    finally:
        stopping = time.monotonic()
        supervisor.stop(15)
        assert time.monotonic() - stopping < 10, "the relay's wait did not see the stop"


def woken_by_each_commit(database: Database, relay_engine: Engine, kafka: KafkaSettings) -> None:
    with relay_polling_hourly(relay_engine, kafka):
        publish(database, "first")
        eventually(lambda: published(relay_engine) == 1, timeout=20, what="the first event published")
        time.sleep(0.5)  # the relay is waiting now (its hourly poll)
        publish(database, "rolled back", commit=False)
        for n in range(2, 5):
            publish(database, f"event {n}")
            eventually(partial(has_published, relay_engine, n), timeout=20, what=f"event {n} woke the relay")


def test_postgresql_relay_is_woken_by_notify_at_commit(postgres_url: str, kafka: KafkaSettings) -> None:
    db = migrated_database(postgres_url, "reporting")
    database = Database.connect(db.app_url, metadata)
    relay_engine = make_engine(db.relay_url)
    try:
        woken_by_each_commit(database, relay_engine, kafka)
    finally:
        database.dispose()
        relay_engine.dispose()


def test_sqlite_relay_is_woken_by_the_in_process_signal(tmp_path: Path, kafka: KafkaSettings) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'reporting.db'}")
    metadata.create_all(engine)
    database = Database(engine, metadata)
    try:
        woken_by_each_commit(database, engine, kafka)
    finally:
        database.dispose()
