"""Events become in-app notifications: through the idempotent consumer, against PostgreSQL as the app role."""

import pytest
from minorprot.notify.v1 import events_pb2 as notify_events
from minorprot.notify.v1 import notify_pb2
from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.tenancy import acting_as
from services.notify.adapters.orm import NotificationRecord
from services.notify.domain.templates import Priority
from services.notify.service_layer.services import NotifyService
from services.notify.service_layer.views import NotificationView
from services.notify.tests.integration.builders import (
    OTHER_TENANT,
    PILOT_TENANT,
    caller,
    crisis_declared,
    deadline_breached,
    referral_opened,
)
from tests.support.events import events_of, message

pytestmark = pytest.mark.integration

CASEWORKER = caller(Role.CASEWORKER)
TOWN_ADMIN = caller(Role.TOWN_ADMIN)


def inbox(service: NotifyService, who: Principal, *, unread_only: bool = False) -> list[NotificationView]:
    with acting_as(who):
        return service.list_inbox(unread_only=unread_only)


def test_a_new_referral_tells_the_towns_caseworkers_once(consumer, service, database):
    event = referral_opened("referral1")
    consumer.process(message(event, "event1"))
    consumer.process(message(event, "event1"))

    (notification,) = inbox(service, CASEWORKER)
    assert notification.title == "新转介 New referral to 区教委"
    assert notification.priority is Priority.NORMAL
    assert (notification.recipient_role, notification.recipient_user) == ("caseworker", "")
    assert (notification.subject_type, notification.subject_id) == ("referral", "referral1")
    assert inbox(service, TOWN_ADMIN) == []

    (delivered,) = events_of(database, PILOT_TENANT, notify_events.NotificationDelivered)
    assert delivered.channel == "in_app"
    assert delivered.notification.notification_id == notification.notification_id
    assert delivered.notification.priority == notify_pb2.PRIORITY_NORMAL


def test_an_urgent_referral_is_an_urgent_notification(consumer, service):
    consumer.process(message(referral_opened("referral1", urgent=True), "event1"))
    (notification,) = inbox(service, CASEWORKER)
    assert notification.priority is Priority.URGENT


def test_a_crisis_tells_caseworkers_and_the_town_admin_at_crisis_priority(consumer, service, database):
    event = crisis_declared("report9")
    consumer.process(message(event, "event1"))
    consumer.process(message(event, "event1"))

    for who in (CASEWORKER, TOWN_ADMIN):
        (notification,) = inbox(service, who)
        assert notification.priority is Priority.CRISIS
        assert notification.title == "危机报告 Crisis report: 立即通知乡镇(街道)值班人员、向公安机关报告、安排紧急庇护"
        assert (notification.subject_type, notification.subject_id) == ("report", "report9")
    delivered = events_of(database, PILOT_TENANT, notify_events.NotificationDelivered)
    assert sorted(d.notification.recipient_role for d in delivered) == ["caseworker", "town_admin"]
    assert {d.notification.priority for d in delivered} == {notify_pb2.PRIORITY_CRISIS}


@pytest.mark.parametrize(("crisis", "roles"), [(False, ["caseworker"]), (True, ["caseworker", "town_admin"])])
def test_a_missed_deadline_tells_the_caseworkers_and_for_a_crisis_the_town_admin(
    consumer, service, database, crisis, roles
):
    event = deadline_breached("report9", crisis=crisis)
    consumer.process(message(event, "event1"))
    consumer.process(message(event, "event1"))

    delivered = events_of(database, PILOT_TENANT, notify_events.NotificationDelivered)
    assert sorted(d.notification.recipient_role for d in delivered) == roles
    (notification,) = inbox(service, CASEWORKER)
    assert notification.title == "办理超时 Deadline missed: 受理确认 acknowledge"
    assert notification.priority is (Priority.CRISIS if crisis else Priority.URGENT)
    assert (notification.subject_type, notification.subject_id) == ("report", "report9")


def test_the_inbox_is_newest_first_and_can_hide_what_was_read(consumer, service):
    consumer.process(message(referral_opened("referral1"), "event1"))
    consumer.process(message(crisis_declared("report9"), "event2"))

    newest, oldest = inbox(service, CASEWORKER)
    assert (newest.subject_id, oldest.subject_id) == ("report9", "referral1")
    with acting_as(CASEWORKER):
        read = service.mark_read(newest.notification_id)
        again = service.mark_read(newest.notification_id)
    assert read.read_at is not None
    assert again.read_at == read.read_at
    assert [n.subject_id for n in inbox(service, CASEWORKER, unread_only=True)] == ["referral1"]


def test_another_town_sees_none_of_it(consumer, service, database):
    consumer.process(message(crisis_declared("report9"), "event1"))
    (notification,) = inbox(service, CASEWORKER)

    other = caller(Role.CASEWORKER, tenant=OTHER_TENANT)
    assert inbox(service, other) == []
    with acting_as(other), pytest.raises(errors.NotFound):
        service.mark_read(notification.notification_id)
    # Row-level security, not only the query's filter: an unfiltered read in the other town finds nothing.
    with database.unit_of_work(OTHER_TENANT) as uow:
        assert uow.session.scalars(select(NotificationRecord)).all() == []
    assert events_of(database, OTHER_TENANT, notify_events.NotificationDelivered) == []
