"""Reporting's consumer of notify's crisis steps, on a fresh PostgreSQL database: each step is kept once
(a redelivered event, or the same step announced under another event id), and staff of the town read them in
order; another town's staff see none of them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from google.protobuf import timestamp_pb2
from minorprot.notify.v1 import events_pb2 as notify_events

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.consumer import IdempotentConsumer
from platform_runtime.db import Database
from platform_runtime.events import PendingEvent
from platform_runtime.settings import KafkaSettings
from platform_runtime.tenancy import acting_as
from platform_runtime.topics import NOTIFY_DELIVERY
from services.reporting.adapters.orm import metadata
from services.reporting.entrypoints.consumers import consumers
from services.reporting.service_layer.crisis_steps import CrisisStepService
from tests.support.events import message
from tests.support.infra import OTHER_TENANT, PILOT_TENANT
from tests.support.services import consumer_under_test, service_database

pytestmark = pytest.mark.integration


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    with service_database(postgres_url, "reporting", metadata) as database:
        yield database


@pytest.fixture
def consumer(database: Database, kafka: KafkaSettings) -> Iterator[IdempotentConsumer]:
    (spec,) = consumers()
    with consumer_under_test(spec, database, kafka) as consumer:
        yield consumer


def at(minute: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime(2026, 12, 4, 2, minute, tzinfo=UTC))
    return stamp


def escalated(step: int, level: str, recipients: list[str], names: list[str]) -> PendingEvent:
    return PendingEvent(
        NOTIFY_DELIVERY,
        PILOT_TENANT,
        "crisis",
        "crisis1",
        notify_events.CrisisEscalated(
            crisis_id="crisis1",
            report_id="report1",
            step=step,
            level=level,
            recipients=recipients,
            recipient_names=names,
            at=at(15 * (step - 1)),
        ),
    )


def staff(role: Role = Role.CASEWORKER, tenant: str = PILOT_TENANT) -> Principal:
    return Principal(user_id="cw1", display_name="社工", role=role, tenant=tenant, district=tenant[:6])


def test_each_step_is_kept_once_and_read_in_order(consumer, database):
    alerted = escalated(1, "duty_officer", ["user:duty1"], ["王值班"])
    consumer.process(message(alerted, "event1"))
    consumer.process(message(alerted, "event1"))  # redelivered
    consumer.process(message(alerted, "event1-again"))  # the same step under another id
    consumer.process(message(escalated(2, "town_admin", ["role:town_admin", "user:admin1"], ["", "李镇管"]), "event2"))
    acknowledged = PendingEvent(
        NOTIFY_DELIVERY,
        PILOT_TENANT,
        "crisis",
        "crisis1",
        notify_events.CrisisAcknowledged(
            crisis_id="crisis1",
            report_id="report1",
            acknowledged_by="admin1",
            acknowledged_by_name="李镇管",
            via="sms",
            at=at(20),
        ),
    )
    consumer.process(message(acknowledged, "event3"))

    with acting_as(staff()):
        found = CrisisStepService(database).list_steps("report1")
    assert [(s.kind, s.step, s.level, s.people, s.via) for s in found] == [
        ("alerted", 1, "duty_officer", (("user:duty1", "王值班"),), ""),
        ("escalated", 2, "town_admin", (("role:town_admin", ""), ("user:admin1", "李镇管")), ""),
        ("acknowledged", 0, "", (("user:admin1", "李镇管"),), "sms"),
    ]
    assert found[2].at == datetime(2026, 12, 4, 2, 20, tzinfo=UTC)
    with acting_as(staff(tenant=OTHER_TENANT)):
        assert CrisisStepService(database).list_steps("report1") == []
    with acting_as(staff(Role.PUBLIC)), pytest.raises(errors.PermissionDenied):
        CrisisStepService(database).list_steps("report1")
