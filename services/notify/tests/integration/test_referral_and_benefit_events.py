"""Referral and benefits events: an agency is told of its referrals on its contact points, an escalation
reaches the supervising agency too, and a benefit change reaches the child's caseworker by name."""

from __future__ import annotations

import pytest
from minorprot.benefits.v1 import events_pb2 as benefits_events
from minorprot.common.v1 import common_pb2
from minorprot.referral.v1 import events_pb2 as referral_events
from sqlalchemy import select

from platform_runtime.auth import Role
from platform_runtime.db import Database
from platform_runtime.events import PendingEvent
from platform_runtime.tenancy import acting_as
from platform_runtime.topics import BENEFITS_ENTITLEMENT, REFERRAL_REFERRAL
from services.notify.adapters.orm import DeliveryRecord, detached
from services.notify.service_layer.directory import DirectoryService
from services.notify.tests.integration.builders import (
    OTHER_TENANT,
    PILOT_TENANT,
    caller,
    case_assigned,
    referral_opened,
    referral_sent,
)
from tests.support.events import message

pytestmark = pytest.mark.integration


def told(database: Database) -> set[tuple[str, str, str]]:
    with database.unit_of_work(PILOT_TENANT) as uow:
        rows = detached(uow, uow.session.scalars(select(DeliveryRecord)))
    return {(row.event_type, row.recipient, row.channel) for row in rows}


@pytest.fixture
def agencies(database: Database) -> None:
    directory = DirectoryService(database)
    with acting_as(caller(Role.TOWN_ADMIN, user="admin1")):
        directory.set_agency_contact("education", "email", "duty@edu.example")
        directory.set_agency_contact("education", "webhook", "https://edu.example/hooks")
        directory.set_agency_contact("education_bureau", "sms", "13700000001")


def test_a_referral_reaches_each_contact_point_of_the_agency_exactly_once(consumer, database, agencies):
    """Opened, then sent (each delivered twice): one message per contact point, when the agency can act."""
    for event, event_id in ((referral_opened("referral1"), "event1"), (referral_sent("referral1"), "event2")):
        consumer.process(message(event, event_id))
        consumer.process(message(event, event_id))
    with database.unit_of_work(PILOT_TENANT) as uow:
        rows = detached(uow, uow.session.scalars(select(DeliveryRecord)))
    to_agency = sorted(
        (row.recipient, row.channel, row.event_type) for row in rows if row.recipient.startswith("agency:")
    )
    assert to_agency == [
        ("agency:education", "email", "referral_sent"),
        ("agency:education", "webhook", "referral_sent"),
    ]
    # The town still hears of the opened referral in its own inbox.
    assert ("referral_opened", "role:caseworker", "in_app") in told(database)


def directory_saved(district: str, agency_code: str, **points: str) -> PendingEvent:
    return PendingEvent(
        REFERRAL_REFERRAL,
        district,
        "directory_agency",
        agency_code,
        referral_events.DirectoryAgencySaved(agency_code=agency_code, **points),
    )


def test_agencies_are_told_on_the_contact_points_of_the_districts_directory(consumer, database, agencies):
    """The district's directory (issue 11) is shared by its towns: each town's referral reaches the same contact
    points; a town's own ones for that agency are no longer used; another district's towns get none of them."""
    saved = directory_saved("110111", "education", email="office@edu.district.example", webhook="https://edu.example/d")
    consumer.process(message(saved, "event1"))
    consumer.process(message(directory_saved("110111", "police", duty_phone="13700000110"), "event2"))
    for number, town in enumerate((PILOT_TENANT, OTHER_TENANT, "110112001")):
        consumer.process(message(referral_sent(f"referral{number}", tenant=town), f"sent{number}"))

    def agency_points(town: str) -> set[tuple[str, str, str]]:
        with database.unit_of_work(town) as uow:
            rows = detached(uow, uow.session.scalars(select(DeliveryRecord)))
        return {(row.recipient, row.channel, row.address) for row in rows if row.recipient.startswith("agency:")}

    district = {
        ("agency:education", "email", "office@edu.district.example"),
        ("agency:education", "webhook", "https://edu.example/d"),
    }
    assert agency_points(PILOT_TENANT) == district  # not the town's own duty@edu.example
    assert agency_points(OTHER_TENANT) == district
    assert agency_points("110112001") == set()

    # Saved again without a webhook: the directory's points are replaced, not added to.
    consumer.process(message(directory_saved("110111", "education", email="new@edu.district.example"), "event3"))
    consumer.process(message(referral_sent("referral9"), "sent9"))
    with database.unit_of_work(PILOT_TENANT) as uow:
        rows = detached(
            uow, uow.session.scalars(select(DeliveryRecord).where(DeliveryRecord.subject_id == "referral9"))
        )
    assert {(row.channel, row.address) for row in rows if row.recipient == "agency:education"} == {
        ("email", "new@edu.district.example")
    }


def test_an_escalated_referral_reaches_the_supervising_agency_and_the_office(consumer, database, agencies):
    opened = referral_opened("referral1")
    escalated = PendingEvent(
        REFERRAL_REFERRAL,
        PILOT_TENANT,
        "referral",
        "referral1",
        referral_events.ReferralEscalated(
            referral=opened.payload.referral,  # type: ignore[attr-defined]
            step=1,
            escalated_to="education_bureau",
            reason="超期 overdue",
        ),
    )
    consumer.process(message(escalated, "event1"))
    assert told(database) == {
        ("referral_escalated", "agency:education", "email"),
        ("referral_escalated", "agency:education", "webhook"),
        ("referral_escalated", "agency:education_bureau", "sms"),
        ("referral_escalated", "role:leading_group_office", "in_app"),
    }


def entitlement(child_id: str, change: str = "suspended") -> PendingEvent:
    return PendingEvent(
        BENEFITS_ENTITLEMENT,
        PILOT_TENANT,
        "entitlement",
        "ent1",
        benefits_events.EntitlementChanged(
            entitlement_id="ent1",
            child_id=child_id,
            benefit_code="orphan_basic",
            change=change,
            effective_on=common_pb2.Date(year=2026, month=12, day=1),
            monthly_amount_fen=0,
        ),
    )


def test_a_benefit_change_reaches_the_childs_caseworker_by_name(consumer, database, service):
    assigned = case_assigned("child1")
    assigned.payload.social_worker_user_id = "cw7"  # type: ignore[attr-defined]
    consumer.process(message(assigned, "event1"))
    consumer.process(message(entitlement("child1"), "event2"))
    assert ("entitlement_changed", "user:cw7", "in_app") in told(database)
    with acting_as(caller(Role.CASEWORKER, user="cw7")):
        mine = [n for n in service.list_inbox() if n.recipient_user == "cw7"]
    assert [n.title for n in mine] == ["待遇变更 Benefit 暂停发放 suspended: orphan_basic", "个案分配 Case assigned"]


def test_a_benefit_change_of_a_child_nobody_holds_goes_to_the_caseworkers(consumer, database):
    consumer.process(message(entitlement("child9"), "event1"))
    assert told(database) == {("entitlement_changed", "role:caseworker", "in_app")}


def test_a_review_coming_due_is_told_in_words(consumer, service):
    consumer.process(message(entitlement("child9", change="review_due"), "event1"))
    with acting_as(caller(Role.CASEWORKER)):
        titles = [n.title for n in service.list_inbox()]
    assert "待遇变更 Benefit 待复核 review due: orphan_basic" in titles
