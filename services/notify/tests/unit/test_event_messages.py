"""Notify's domain events as the outbox publishes them (adapters/messages.py): the contract's message, its topic
and its key, for every event notify raises: the same messages the service layer built itself before."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.message import Message
from minorprot.notify.v1 import events_pb2, notify_pb2

from platform_runtime.topics import NOTIFY_DELIVERY
from platform_runtime.unit_of_work import FakeUnitOfWork
from services.notify.adapters import messages
from services.notify.domain import events
from services.notify.domain.channels import Channel, DeliveryStatus
from services.notify.domain.templates import Priority
from services.notify.service_layer.views import NotificationView
from tests.support.events import as_published

TOWN = "110111008"
AT = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 4, 2, 30, tzinfo=UTC)

CASES: list[tuple[events.NotifyEvent, str, str, Message]] = [
    (
        events.NotificationDelivered(
            delivery_id="d1",
            recipient="role:caseworker",
            channel=Channel.IN_APP,
            status=DeliveryStatus.SENT,
            attempts=1,
            notification_id="n1",
            title="紧急报告",
            body="请立即处理",
            priority=Priority.CRISIS,
            subject_type="report",
            subject_id="r1",
            created_at=AT,
        ),
        "notification",
        "n1",
        events_pb2.NotificationDelivered(
            notification=notify_pb2.Notification(
                notification_id="n1",
                tenant=TOWN,
                recipient_role="caseworker",
                title="紧急报告",
                body="请立即处理",
                priority=notify_pb2.PRIORITY_CRISIS,
                subject_type="report",
                subject_id="r1",
                created_at=messages.timestamp(AT),
            ),
            channel="in_app",
            delivery_id="d1",
            status="sent",
            recipient="role:caseworker",
            attempts=1,
        ),
    ),
    (
        events.NotificationDelivered(
            delivery_id="d2",
            recipient="user:u-zhao",
            channel=Channel.SMS,
            status=DeliveryStatus.FAILED,
            attempts=5,
            notification_id="",
            title="转介已发出",
            body="",
            priority=Priority.URGENT,
            subject_type="referral",
            subject_id="f1",
            created_at=AT,
        ),
        "delivery",
        "d2",
        events_pb2.NotificationDelivered(
            notification=notify_pb2.Notification(
                tenant=TOWN,
                recipient_user="u-zhao",
                title="转介已发出",
                priority=notify_pb2.PRIORITY_URGENT,
                subject_type="referral",
                subject_id="f1",
                created_at=messages.timestamp(AT),
            ),
            channel="sms",
            delivery_id="d2",
            status="failed",
            recipient="user:u-zhao",
            attempts=5,
        ),
    ),
    (
        events.CrisisEscalated(
            crisis_id="k1",
            report_id="r1",
            step=2,
            level="town_admin",
            recipients=("role:town_admin", "user:u-sun"),
            recipient_names=("", "孙主任"),
            at=LATER,
        ),
        "crisis",
        "k1",
        events_pb2.CrisisEscalated(
            crisis_id="k1",
            report_id="r1",
            step=2,
            level="town_admin",
            recipients=["role:town_admin", "user:u-sun"],
            at=messages.timestamp(LATER),
            recipient_names=["", "孙主任"],
        ),
    ),
    (
        events.CrisisAcknowledged(
            crisis_id="k1", report_id="r1", acknowledged_by="u-sun", acknowledged_by_name="孙主任", via="sms", at=LATER
        ),
        "crisis",
        "k1",
        events_pb2.CrisisAcknowledged(
            crisis_id="k1",
            report_id="r1",
            acknowledged_by="u-sun",
            via="sms",
            at=messages.timestamp(LATER),
            acknowledged_by_name="孙主任",
        ),
    ),
]


@pytest.mark.parametrize(("event", "aggregate_type", "key", "message"), CASES)
def test_each_event_goes_out_as_its_message_on_notify_delivery_keyed_by_its_aggregate(
    event: events.NotifyEvent, aggregate_type: str, key: str, message: Message
) -> None:
    pending = messages.pending(TOWN, event)
    assert as_published(pending) == (NOTIFY_DELIVERY, TOWN, aggregate_type, key, message)
    assert pending.payload.SerializeToString(deterministic=True) == message.SerializeToString(deterministic=True)


def test_every_kind_of_event_is_mapped() -> None:
    assert {type(case[0]) for case in CASES} == set(events.NotifyEvent.__args__)


def test_an_emitted_event_is_kept_with_the_unit_of_work_and_only_at_commit() -> None:
    event, _, _, message = CASES[2]
    with FakeUnitOfWork(TOWN) as uow:
        messages.emit(uow, event)
        assert uow.committed == []
        uow.commit()
    assert [(kept.topic, kept.aggregate_id, kept.payload) for kept in uow.committed] == [
        (NOTIFY_DELIVERY, "k1", message)
    ]


def test_an_in_app_delivery_carries_the_notification_as_the_inbox_gives_it() -> None:
    event = CASES[0][0]
    assert isinstance(event, events.NotificationDelivered)
    view = NotificationView(
        notification_id="n1",
        tenant=TOWN,
        recipient_role="caseworker",
        recipient_user="",
        title=event.title,
        body=event.body,
        priority=event.priority,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        created_at=event.created_at,
        read_at=None,
    )
    message = messages.event_message(event, tenant=TOWN)
    assert isinstance(message, events_pb2.NotificationDelivered)
    assert message.notification == messages.notification(view)
