"""The registry's case events become notifications for the people who hold the case: through the idempotent
consumer, against PostgreSQL as the app role."""

from datetime import date

import pytest
from minorprot.notify.v1 import events_pb2 as notify_events
from sqlalchemy import select, text

from platform_runtime.auth import Principal, Role
from platform_runtime.tenancy import acting_as
from services.notify.adapters.orm import VisitReminderRecord
from services.notify.domain.templates import Priority
from services.notify.service_layer.services import NotifyService
from services.notify.service_layer.views import NotificationView
from services.notify.tests.integration.builders import (
    OTHER_TENANT,
    PILOT_TENANT,
    caller,
    case_assigned,
    case_status_changed,
    visit_overdue,
)
from tests.support.events import events_of, message

pytestmark = pytest.mark.integration

CASEWORKER = caller(Role.CASEWORKER)
CHILD_DIRECTOR = caller(Role.CHILD_DIRECTOR)
TOWN_ADMIN = caller(Role.TOWN_ADMIN)


def inbox(service: NotifyService, who: Principal) -> list[NotificationView]:
    with acting_as(who):
        return service.list_inbox()


# --- overdue follow-up visits -------------------------------------------------------------------------------


def test_an_overdue_visit_reminds_the_caseworkers_and_the_village_staff_of_the_town(consumer, service, database):
    consumer.process(message(visit_overdue("child1"), "event1"))

    for who in (CASEWORKER, CHILD_DIRECTOR):
        (notification,) = inbox(service, who)
        assert notification.title == "随访逾期 Follow-up visit overdue: 13 天 days"
        assert notification.priority is Priority.URGENT
        assert (notification.subject_type, notification.subject_id) == ("child", "child1")
        assert "2024-05-06" in notification.body and "专人 王专人" in notification.body
    assert inbox(service, TOWN_ADMIN) == []
    delivered = events_of(database, PILOT_TENANT, notify_events.NotificationDelivered)
    assert sorted(d.notification.recipient_role for d in delivered) == ["caseworker", "child_director"]
    assert {d.channel for d in delivered} == {"in_app"}


def test_a_visit_raised_again_for_the_same_due_date_reminds_once(consumer, service, database):
    consumer.process(message(visit_overdue("child1", days=13), "event1"))
    consumer.process(message(visit_overdue("child1", days=13), "event1"))  # redelivered
    consumer.process(message(visit_overdue("child1", days=20), "event2"))  # raised again, still overdue

    assert len(inbox(service, CASEWORKER)) == 1
    assert len(inbox(service, CHILD_DIRECTOR)) == 1
    with database.unit_of_work(PILOT_TENANT) as uow:  # applied (as nothing new), not dead-lettered
        applied = uow.session.scalars(select(database.inbox.c.event_id)).all()
    assert sorted(applied) == ["event1", "event2"]


def test_a_new_due_date_and_another_child_are_new_reminders(consumer, service):
    consumer.process(message(visit_overdue("child1", date(2024, 5, 6)), "event1"))
    consumer.process(message(visit_overdue("child1", date(2024, 6, 6)), "event2"))
    consumer.process(message(visit_overdue("child2", date(2024, 5, 6)), "event3"))

    found = sorted((n.subject_id, "2024-06-06" in n.body) for n in inbox(service, CASEWORKER))
    assert found == [("child1", False), ("child1", True), ("child2", False)]


def test_a_case_without_village_staff_reminds_the_caseworkers_only(consumer, service):
    consumer.process(message(visit_overdue("child1", responsible_person="", child_director=""), "event1"))
    assert len(inbox(service, CASEWORKER)) == 1
    assert inbox(service, CHILD_DIRECTOR) == []


def test_another_town_is_neither_reminded_nor_sees_the_reminder_record(consumer, service, database):
    consumer.process(message(visit_overdue("child1"), "event1"))
    # The same child id and due date in another town is that town's own reminder.
    consumer.process(message(visit_overdue("child1", tenant=OTHER_TENANT), "event2"))

    assert len(inbox(service, CASEWORKER)) == 1
    (theirs,) = inbox(service, caller(Role.CASEWORKER, tenant=OTHER_TENANT))
    assert theirs.tenant == OTHER_TENANT
    with database.unit_of_work(OTHER_TENANT) as uow:
        (record,) = uow.session.scalars(select(VisitReminderRecord)).all()
        assert record.tenant_id == OTHER_TENANT


def test_reminder_records_are_under_forced_row_level_security(database):
    with database.engine.connect() as connection:
        forced = connection.execute(
            text("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = 'visit_reminders'")
        ).one()
    assert tuple(forced) == (True, True)


# --- case status -----------------------------------------------------------------------------------------------


def test_routine_status_steps_notify_nobody(consumer, service, database):
    for number, (before, after) in enumerate(
        [("identified", "assessing"), ("assessing", "plan_active"), ("plan_active", "monitoring")]
    ):
        consumer.process(message(case_status_changed("child1", before, after), f"event{number}"))
    assert inbox(service, CASEWORKER) == []
    assert inbox(service, CHILD_DIRECTOR) == []
    assert events_of(database, PILOT_TENANT, notify_events.NotificationDelivered) == []


@pytest.mark.parametrize(
    ("before", "after", "title"),
    [
        ("monitoring", "closed", "个案已结案 Case closed"),
        ("plan_active", "transferred", "个案已转出 Case transferred out"),
        ("closed", "assessing", "个案重新开启 Case reopened"),
    ],
)
def test_a_closed_transferred_or_reopened_case_is_told_to_its_holders_once(consumer, service, before, after, title):
    event = case_status_changed("child1", before, after)
    consumer.process(message(event, "event1"))
    consumer.process(message(event, "event1"))

    for who in (CASEWORKER, CHILD_DIRECTOR):
        (notification,) = inbox(service, who)
        assert notification.title == title
        assert notification.priority is Priority.NORMAL
        assert (notification.subject_type, notification.subject_id) == ("child", "child1")
        assert "监护落实" not in notification.body  # the typed reason stays in the case file
    assert inbox(service, TOWN_ADMIN) == []


# --- named staff -----------------------------------------------------------------------------------------------


def test_the_newly_named_are_told_of_their_new_case(consumer, service):
    consumer.process(message(case_assigned("child1"), "event1"))
    consumer.process(message(case_assigned("child1"), "event1"))

    for who in (CASEWORKER, CHILD_DIRECTOR):
        (notification,) = inbox(service, who)
        assert notification.title == "个案分配 Case assigned"
        assert (notification.subject_type, notification.subject_id) == ("child", "child1")


def test_a_new_social_worker_is_told_and_the_unchanged_village_staff_are_not(consumer, service):
    consumer.process(
        message(case_assigned("child1", responsible_person="王专人", child_director="张儿童主任"), "event1")
    )
    (notification,) = inbox(service, CASEWORKER)
    assert notification.body.splitlines()[0] == "新指定 newly named: 社工 李社工"
    assert inbox(service, CHILD_DIRECTOR) == []
