"""The referral service's domain events as the outbox publishes them (adapters/messages.py): the contract's
message, its topic and its key, for every event the service raises, the same as the use cases built before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import Message
from minorprot.referral.v1 import events_pb2, referral_pb2

from platform_runtime.topics import REFERRAL_REFERRAL
from services.referral.adapters import messages
from services.referral.domain import events
from services.referral.domain.lifecycle import Action, ReferralStatus
from services.referral.domain.referral import ReferralView
from tests.support.events import as_published

TOWN = "110111008"
AT = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
REFERRAL = ReferralView(
    referral_id="f1",
    tenant=TOWN,
    report_id="r1",
    child_id="c1",
    agency_code="civil_affairs",
    agency_name="区民政局",
    status=ReferralStatus.COMPLETED,
    reason="事实无人抚养",
    rule_code="CIVIL",
    urgent=True,
    opened_at=AT,
    due_at=AT + timedelta(days=3),
    version=4,
    escalated_step=1,
    last_note="电话 010-6935 1234",
    outcome="已纳入保障 住址 良乡镇",
    updated_at=AT + timedelta(hours=1),
    case_facts={"situation_types": ["unattended"], "approximate_age": 9, "place_text": "良乡镇某村"},
)
# The referral as its events carry it: no last note, outcome or case facts (docs/data-protection.md).
ON_KAFKA = referral_pb2.Referral(
    referral_id="f1",
    tenant=TOWN,
    report_id="r1",
    child_id="c1",
    agency_code="civil_affairs",
    agency_name="区民政局",
    status="completed",
    reason="事实无人抚养",
    rule_code="CIVIL",
    opened_at=messages.timestamp(AT),
    due_at=messages.timestamp(AT + timedelta(days=3)),
    urgent=True,
    version=4,
    escalated_step=1,
    updated_at=messages.timestamp(AT + timedelta(hours=1)),
)

CASES: list[tuple[events.ReferralEvent, str, str, Message]] = [
    (events.ReferralOpened(REFERRAL), "referral", "f1", events_pb2.ReferralOpened(referral=ON_KAFKA)),
    (events.ReferralSent(REFERRAL), "referral", "f1", events_pb2.ReferralSent(referral=ON_KAFKA)),
    (events.ReferralAccepted(REFERRAL), "referral", "f1", events_pb2.ReferralAccepted(referral=ON_KAFKA)),
    (events.ReferralRejected(REFERRAL), "referral", "f1", events_pb2.ReferralRejected(referral=ON_KAFKA)),
    (events.ReferralReturned(REFERRAL), "referral", "f1", events_pb2.ReferralReturned(referral=ON_KAFKA)),
    (events.ReferralProgressed(REFERRAL), "referral", "f1", events_pb2.ReferralProgressed(referral=ON_KAFKA)),
    (
        events.ReferralCompleted(REFERRAL, outcome="已纳入保障"),
        "referral",
        "f1",
        events_pb2.ReferralCompleted(referral=ON_KAFKA, outcome="已纳入保障"),
    ),
    (events.ReferralCancelled(REFERRAL), "referral", "f1", events_pb2.ReferralCancelled(referral=ON_KAFKA)),
    (events.ReferralLinkedToChild(REFERRAL), "referral", "f1", events_pb2.ReferralLinkedToChild(referral=ON_KAFKA)),
    (
        events.ReferralReassigned(REFERRAL, previous_agency_code="education"),
        "referral",
        "f1",
        events_pb2.ReferralReassigned(referral=ON_KAFKA, previous_agency_code="education"),
    ),
    (
        events.ReferralEscalated(REFERRAL, step=2, escalated_to="leading_group_office", reason="not accepted"),
        "referral",
        "f1",
        events_pb2.ReferralEscalated(
            referral=ON_KAFKA, step=2, escalated_to="leading_group_office", reason="not accepted"
        ),
    ),
    (
        events.BenefitApplicationRequested("f1", "r1", "c1", "orphan_allowance", "事实无人抚养", "civil_affairs"),
        "referral",
        "f1",
        events_pb2.BenefitApplicationRequested(
            referral_id="f1",
            report_id="r1",
            child_id="c1",
            benefit_code="orphan_allowance",
            reason="事实无人抚养",
            agency_code="civil_affairs",
        ),
    ),
    (
        events.DirectoryAgencySaved("civil_affairs", "010-1234", "mz@example.org", "https://mz.example.org", ("u1",)),
        "directory_agency",
        "civil_affairs",
        events_pb2.DirectoryAgencySaved(
            agency_code="civil_affairs",
            duty_phone="010-1234",
            email="mz@example.org",
            webhook="https://mz.example.org",
            contact_user_ids=["u1"],
        ),
    ),
]


@pytest.mark.parametrize(("event", "aggregate_type", "key", "message"), CASES)
def test_each_event_goes_out_as_its_message_keyed_by_its_aggregate(
    event: events.ReferralEvent, aggregate_type: str, key: str, message: Message
) -> None:
    pending = messages.pending(TOWN, event)
    assert as_published(pending) == (REFERRAL_REFERRAL, TOWN, aggregate_type, key, message)


def test_every_kind_of_event_is_mapped() -> None:
    assert {type(case[0]) for case in CASES} == set(events.ReferralEvent.__args__)


def test_a_referral_goes_out_without_its_free_text() -> None:
    sent = messages.event_message(events.ReferralOpened(REFERRAL)).SerializeToString().decode("utf-8", "replace")
    for free_text in ("6935", "良乡镇", "unattended"):
        assert free_text not in sent


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        (Action.SEND, events.ReferralSent),
        (Action.ANSWER, events.ReferralSent),
        (Action.ACCEPT, events.ReferralAccepted),
        (Action.REJECT, events.ReferralRejected),
        (Action.RETURN, events.ReferralReturned),
        (Action.PROGRESS, events.ReferralProgressed),
        (Action.COMPLETE, events.ReferralCompleted),
        (Action.CANCEL, events.ReferralCancelled),
    ],
)
def test_each_move_is_told_by_its_event(action: Action, kind: type) -> None:
    event = events.moved(action, REFERRAL, "the agency's words")
    assert type(event) is kind and event.referral == REFERRAL


def test_only_completion_carries_its_text() -> None:
    assert events.moved(Action.COMPLETE, REFERRAL, "已纳入保障") == events.ReferralCompleted(REFERRAL, "已纳入保障")


def test_a_reassignment_has_events_of_its_own() -> None:
    with pytest.raises(ValueError, match="event of its own"):
        events.moved(Action.REASSIGN, REFERRAL, "")
