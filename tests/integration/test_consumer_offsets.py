"""A consumer commits the offsets of event types it skips with its next commit, not one broker round trip
each (ADR 0019); what it applies is still committed at once, and every offset reaches the end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer
from google.protobuf import wrappers_pb2
from minorprot.common.v1 import common_pb2

from platform_runtime.consumer import IdempotentConsumer
from platform_runtime.db import Database, UnitOfWork
from platform_runtime.events import PendingEvent
from platform_runtime.outbox import make_producer
from platform_runtime.provision import ProvisionedDatabase
from platform_runtime.settings import KafkaSettings
from platform_runtime.supervisor import Worker
from platform_runtime.topics import REPORTING_REPORT
from services.reporting.adapters.orm import metadata
from tests.integration.test_backbone_faults import applied, committed_to_the_end, relay_once, supervised
from tests.support.infra import PILOT_TENANT, isolated_kafka_env
from tests.support.services import migrated_database
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

HANDLED = wrappers_pb2.StringValue.DESCRIPTOR.full_name


@pytest.fixture
def prefix(kafka: KafkaSettings) -> str:
    return isolated_kafka_env(kafka)["KAFKA_TOPIC_PREFIX"]


@pytest.fixture
def reporting_db(postgres_url: str) -> ProvisionedDatabase:
    return migrated_database(postgres_url, "reporting")


@pytest.fixture
def database(reporting_db: ProvisionedDatabase) -> Iterator[Database]:
    database = Database.connect(reporting_db.app_url, metadata)
    yield database
    database.dispose()


class CountedCommits(Consumer):
    def __init__(self, config: dict[str, Any], commits: list[int]) -> None:
        super().__init__(config)
        self.commits = commits

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        self.commits.append(len(kwargs.get("offsets") or []))
        return super().commit(*args, **kwargs)


def test_skipped_event_types_share_a_commit_and_applied_ones_are_committed_at_once(
    kafka: KafkaSettings, database: Database, reporting_db: Any, prefix: str
) -> None:
    group = f"offsets-{uuid.uuid4().hex[:8]}"
    topic = prefix + REPORTING_REPORT
    with database.unit_of_work(PILOT_TENANT) as uow:
        for n in range(40):  # an event type this group does not handle
            uow.publish(PendingEvent(REPORTING_REPORT, PILOT_TENANT, "t", "k", wrappers_pb2.Int64Value(value=n)))
        uow.publish(PendingEvent(REPORTING_REPORT, PILOT_TENANT, "t", "k", wrappers_pb2.StringValue(value="one")))
        uow.commit()
    relay_once(reporting_db, kafka, prefix)
    commits: list[int] = []
    seen: list[str] = []

    def handle(envelope: common_pb2.EventEnvelope, _uow: UnitOfWork) -> None:
        value = wrappers_pb2.StringValue()
        envelope.payload.Unpack(value)
        seen.append(value.value)

    consumer = IdempotentConsumer(
        group_id=group,
        database=database,
        new_consumer=lambda: CountedCommits(
            kafka.client_config() | {"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"},
            commits,
        ),
        dead_letters=make_producer(kafka, "offsets-dlt"),
        handlers={HANDLED: handle},
        topics=[topic],
    )
    with supervised(Worker("consumer", consumer.run)):
        eventually(lambda: len(applied(database, group)) == 1, what="the handled event applied")
        eventually(lambda: committed_to_the_end(kafka, group, topic), what="offsets committed to the end")
    assert seen == ["one"]
    assert 1 <= len(commits) < 10, f"{len(commits)} commits for 41 messages"
