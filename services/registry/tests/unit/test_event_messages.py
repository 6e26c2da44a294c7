"""The registry's domain events as the outbox publishes them (adapters/messages.py): the contract's message,
its topic and its key, for every event the registry raises."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from google.protobuf.message import Message
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import events_pb2

from platform_runtime.topics import PLATFORM_TENANT, REGISTRY_CASE, REGISTRY_CHILD
from services.registry.adapters import messages
from services.registry.domain import events
from services.registry.domain.casefile import CaseStaff
from services.registry.domain.child import ChildView, ContactPerson
from services.registry.domain.codes import CaseStatus, RiskLevel, Sex
from tests.support.events import as_published

TOWN = "110111008"
AT = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
STAFF = CaseStaff("赵专人", "钱社工", "孙主任", "u-zhao", "u-qian", "u-sun")
CHILD = ChildView(
    child_id="c1",
    tenant=TOWN,
    legal_name="王小明",
    other_names=("小明",),
    sex=Sex.MALE,
    birth_date=date(2015, 3, 1),
    identity_number_masked="*****************X",
    ethnicity_code="01",
    household_division_code="110111008001",
    household_address="",
    residence_division_code="110111008001",
    residence_address="",
    school="良乡小学",
    grade="五年级",
    categories=("left_behind",),
    provisional=False,
    created_at=AT,
    contact_person=ContactPerson("周奶奶", "祖母", "010-6935 1234"),
    version=1,
)

CASES: list[tuple[events.RegistryEvent, str, str, str, Message]] = [
    (
        events.TenantOnboarded(TOWN, "良乡镇", "110111", AT),
        PLATFORM_TENANT,
        "tenant",
        TOWN,
        events_pb2.TenantOnboarded(tenant=messages.tenant_message(TOWN, "良乡镇", "110111", AT)),
    ),
    (
        events.ChildRegistered.of(CHILD),
        REGISTRY_CHILD,
        "child",
        "c1",
        events_pb2.ChildRegistered(
            child_id="c1",
            birth_date=common_pb2.Date(year=2015, month=3, day=1),
            household_division_code="110111008001",
            registered_at=messages.timestamp(AT),
        ),
    ),
    (
        events.ChildCategoriesChanged("c1", ("a", "b"), added=("b",), removed=("c",)),
        REGISTRY_CHILD,
        "child",
        "c1",
        events_pb2.ChildCategoriesChanged(child_id="c1", categories=["a", "b"], added=["b"], removed=["c"]),
    ),
    (
        events.ChildrenMerged("c1", "c2", merged_by="u-case"),
        REGISTRY_CHILD,
        "child",
        "c2",
        events_pb2.ChildrenMerged(surviving_child_id="c1", merged_child_id="c2", merged_by="u-case"),
    ),
    (
        events.ChildRegistered("c1", None, "", AT, person_key="ab" * 20),
        REGISTRY_CHILD,
        "child",
        "c1",
        events_pb2.ChildRegistered(
            child_id="c1", birth_date=common_pb2.Date(), registered_at=messages.timestamp(AT), person_key="ab" * 20
        ),
    ),
    (
        events.ChildMoved("c1", "110111008001", "130102001001", "110111008001", "110111008001", date(2026, 12, 4)),
        REGISTRY_CHILD,
        "child",
        "c1",
        events_pb2.ChildMoved(
            child_id="c1",
            from_residence_division_code="110111008001",
            to_residence_division_code="130102001001",
            from_household_division_code="110111008001",
            to_household_division_code="110111008001",
            effective_on=common_pb2.Date(year=2026, month=12, day=4),
        ),
    ),
    (
        events.ChildBirthDateCorrected("c1", date(2015, 4, 1)),
        REGISTRY_CHILD,
        "child",
        "c1",
        events_pb2.ChildBirthDateCorrected(child_id="c1", birth_date=common_pb2.Date(year=2015, month=4, day=1)),
    ),
    (
        events.ChildIdentityChanged("c1", "cd" * 20),
        REGISTRY_CHILD,
        "child",
        "c1",
        events_pb2.ChildIdentityChanged(child_id="c1", person_key="cd" * 20),
    ),
    (
        events.ChildrenUnmerged("c1", "c2", unmerged_by="u-case"),
        REGISTRY_CHILD,
        "child",
        "c2",
        events_pb2.ChildrenUnmerged(surviving_child_id="c1", merged_child_id="c2", unmerged_by="u-case"),
    ),
    (
        events.CaseFileOpened("k1", "c1", CaseStatus.IDENTIFIED),
        REGISTRY_CASE,
        "child",
        "c1",
        events_pb2.CaseFileOpened(case_id="k1", child_id="c1", status="identified"),
    ),
    (
        events.ReportLinkedToCase("k1", "c1", "r1"),
        REGISTRY_CASE,
        "child",
        "c1",
        events_pb2.ReportLinkedToCase(case_id="k1", child_id="c1", report_id="r1"),
    ),
    (
        events.CaseAssigned("k1", "c1", staff=STAFF, previous=CaseStaff(responsible_person="周专人")),
        REGISTRY_CASE,
        "child",
        "c1",
        events_pb2.CaseAssigned(
            case_id="k1",
            child_id="c1",
            responsible_person="赵专人",
            social_worker="钱社工",
            child_director="孙主任",
            previous_responsible_person="周专人",
            responsible_user_id="u-zhao",
            social_worker_user_id="u-qian",
            child_director_user_id="u-sun",
        ),
    ),
    (
        events.CaseStatusChanged("k1", "c1", CaseStatus.MONITORING, CaseStatus.CLOSED, CaseStaff()),
        REGISTRY_CASE,
        "child",
        "c1",
        events_pb2.CaseStatusChanged(case_id="k1", child_id="c1", from_status="monitoring", to_status="closed"),
    ),
    (
        events.VisitOverdue("k1", "c1", date(2026, 12, 1), 3, None, STAFF),
        REGISTRY_CASE,
        "child",
        "c1",
        events_pb2.VisitOverdue(
            case_id="k1",
            child_id="c1",
            due_on=common_pb2.Date(year=2026, month=12, day=1),
            days_overdue=3,
            risk_level="",
            **messages.staff_fields(STAFF),
        ),
    ),
]


@pytest.mark.parametrize(("event", "topic", "aggregate_type", "key", "message"), CASES)
def test_each_event_goes_out_as_its_message_on_its_topic_keyed_by_its_aggregate(
    event: events.RegistryEvent, topic: str, aggregate_type: str, key: str, message: Message
) -> None:
    pending = messages.pending(TOWN, event)
    assert as_published(pending) == (topic, TOWN, aggregate_type, key, message)


def test_every_kind_of_event_is_mapped() -> None:
    assert {type(case[0]) for case in CASES} == set(events.RegistryEvent.__args__)


def test_a_risk_level_goes_out_by_its_code() -> None:
    event = events.VisitOverdue("k1", "c1", date(2026, 12, 1), 3, RiskLevel.HIGH, CaseStaff())
    message = messages.event_message(event)
    assert isinstance(message, events_pb2.VisitOverdue) and message.risk_level == "high"


def test_a_registered_child_goes_out_without_name_address_school_contact_or_number() -> None:
    message = messages.event_message(events.ChildRegistered.of(CHILD, person_key="ab" * 20))
    assert isinstance(message, events_pb2.ChildRegistered) and not message.HasField("child")
    sent = message.SerializeToString().decode("utf-8", "replace")
    for personal in ("王小明", "小明", "良乡小学", "周奶奶", "6935", CHILD.identity_number_masked):
        assert personal not in sent
    assert (message.child_id, message.household_division_code, message.birth_date.year) == ("c1", "110111008001", 2015)
