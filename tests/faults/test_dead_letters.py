"""A poison message on every topic some service consumes reaches `<topic>.dlt` without stopping the consumer,
and is replayed with `python -m platform_runtime.dead_letters` once its cause is fixed.

The poison: an event whose id is longer than the consuming service's column holds (as when a producer starts
using longer ids than a consumer's schema was made for). The database refuses the effect on every try, so the
consumer parks the message; a later event on the same partition (same key) is still applied. The fix is what
a migration would do, widening the column; the replay then applies the parked event, once (replaying it a
second time changes nothing: consumers drop repeats by event id).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial

import pytest
from confluent_kafka import Message
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message as ProtoMessage
from minorprot.benefits.v1 import benefits_pb2
from minorprot.benefits.v1 import events_pb2 as benefits_events
from minorprot.common.v1 import common_pb2
from minorprot.referral.v1 import events_pb2 as referral_events
from minorprot.referral.v1 import referral_pb2
from minorprot.registry.v1 import events_pb2 as registry_events
from minorprot.reporting.v1 import events_pb2 as reporting_events
from minorprot.reporting.v1 import reporting_pb2

from platform_runtime.events import PendingEvent
from platform_runtime.topics import (
    BENEFITS_ENTITLEMENT,
    REFERRAL_REFERRAL,
    REGISTRY_CASE,
    REGISTRY_CHILD,
    REPORTING_REPORT,
    dead_letter_topic,
)
from tests.faults.conftest import FaultStack
from tests.faults.helpers import (
    dead_letters_tool,
    execute,
    header,
    publish,
    read_topic,
    report_body,
    rows,
)
from tests.support.infra import PILOT_TENANT
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults


def long_id(length: int) -> str:
    return (uuid.uuid4().hex * 3)[:length]


def stamp(at: datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(at)
    return value


@dataclass(frozen=True)
class Poison:
    topic: str
    consumer: str  # the service whose consumer cannot apply it
    aggregate: str  # poison and good event share the key, so the good one is behind the poison on its partition
    poison: ProtoMessage
    good: ProtoMessage
    poison_id: str  # the id the consumer cannot store
    good_id: str
    effect_sql: str  # how many rows the event made, given :id
    fix_sql: str  # what a migration would do (run as the consumer's database owner)


def report_submitted(report_id: str) -> ProtoMessage:
    return reporting_events.ReportSubmitted(
        report=reporting_pb2.Report(
            report_id=report_id,
            tenant=PILOT_TENANT,
            status="received",
            urgency=reporting_pb2.URGENCY_NORMAL,
            division_code=PILOT_TENANT + "201",
            received_at=stamp(datetime.now(UTC)),
            situation_types=["wandering"],
        )
    )


def referral_opened(referral_id: str) -> ProtoMessage:
    now = datetime.now(UTC)
    return referral_events.ReferralOpened(
        referral=referral_pb2.Referral(
            referral_id=referral_id,
            tenant=PILOT_TENANT,
            report_id=uuid.uuid4().hex,
            agency_code="civil_affairs",
            agency_name="区民政局",
            status="opened",
            reason="流浪经历 wandering history",
            rule_code="WANDERING_CIVIL_AFFAIRS",
            opened_at=stamp(now),
            due_at=stamp(now + timedelta(days=5)),
        )
    )


def application_requested(child_id: str) -> ProtoMessage:
    """Referral's family-poverty route asking benefits for an application draft for the child."""
    return referral_events.BenefitApplicationRequested(
        referral_id=uuid.uuid4().hex,
        report_id=uuid.uuid4().hex,
        child_id=child_id,
        benefit_code="basic_living",
        reason="家庭贫困 family poverty",
        agency_code="civil_affairs",
    )


def case_assigned(child_id: str) -> ProtoMessage:
    return registry_events.CaseAssigned(case_id=uuid.uuid4().hex, child_id=child_id, social_worker="李社工")


def child_registered(child_id: str) -> ProtoMessage:
    born = date.today() - timedelta(days=400)
    return registry_events.ChildRegistered(
        child_id=child_id,
        birth_date=common_pb2.Date(year=born.year, month=born.month, day=born.day),
        household_division_code=PILOT_TENANT + "201",
        registered_at=stamp(datetime.now(UTC)),
    )


def insurance_enrolled(child_id: str, enrolment_id: str) -> ProtoMessage:
    until = date.today() + timedelta(days=365)
    return benefits_events.InsuranceEnrolled(
        enrolment=benefits_pb2.InsuranceEnrolment(
            enrolment_id=enrolment_id,
            tenant=PILOT_TENANT,
            child_id=child_id,
            covered_until=common_pb2.Date(year=until.year, month=until.month, day=until.day),
            enrolled_at=stamp(datetime.now(UTC)),
        )
    )


def poisons(child_id: str) -> list[Poison]:
    """One per consumed topic; `child_id` is a child of the register (the registry ignores unknown children)."""
    notifications = "SELECT count(*) FROM notifications WHERE subject_id = :id AND recipient_role = 'caseworker'"
    # notify keeps the subject on the in-app item, on each channel's delivery row and (a child) on the case
    # holders it remembers: widen all three.
    widen_subject = (
        "ALTER TABLE notifications ALTER COLUMN subject_id TYPE varchar(128); "
        "ALTER TABLE deliveries ALTER COLUMN subject_id TYPE varchar(128); "
        "ALTER TABLE case_holders ALTER COLUMN child_id TYPE varchar(128)"
    )
    # benefits keeps the child on its enrolment and on what it knows of each beneficiary (and what follows).
    widen_child = "; ".join(
        f"ALTER TABLE {table} ALTER COLUMN child_id TYPE varchar(64)"
        for table in ("insurance_enrolments", "beneficiaries", "entitlements", "entitlement_changes", "applications")
    )
    table: list[tuple[str, str, int, Callable[[str], ProtoMessage], str, str]] = [
        (
            REPORTING_REPORT,
            "referral",
            40,
            report_submitted,
            "SELECT count(*) FROM referrals WHERE report_id = :id",
            "ALTER TABLE referrals ALTER COLUMN report_id TYPE varchar(64)",
        ),
        (REFERRAL_REFERRAL, "notify", 70, referral_opened, notifications, widen_subject),
        (REGISTRY_CASE, "notify", 70, case_assigned, notifications, widen_subject),
        (
            REGISTRY_CHILD,
            "benefits",
            40,
            child_registered,
            "SELECT count(*) FROM insurance_enrolments WHERE child_id = :id",
            widen_child,
        ),
        (
            REFERRAL_REFERRAL,
            "benefits",
            40,
            application_requested,
            "SELECT count(*) FROM applications WHERE child_id = :id",
            widen_child,
        ),
        (
            BENEFITS_ENTITLEMENT,
            "registry",
            70,
            partial(insurance_enrolled, child_id),
            "SELECT count(*) FROM timeline_entries WHERE reference_id = :id",
            "ALTER TABLE timeline_entries ALTER COLUMN reference_id TYPE varchar(128)",
        ),
    ]
    made = []
    for topic, consumer, length, build, effect_sql, fix_sql in table:
        bad, good = long_id(length), uuid.uuid4().hex
        # The registry's events are keyed by child: the insurance events go where the child's would.
        aggregate = child_id if topic == BENEFITS_ENTITLEMENT else uuid.uuid4().hex
        made.append(Poison(topic, consumer, aggregate, build(bad), build(good), bad, good, effect_sql, fix_sql))
    return made


def effect(fault_stack: FaultStack, poison: Poison, which: str) -> int:
    found = rows(fault_stack.databases[poison.consumer].owner_url, poison.effect_sql, id=which)
    return int(found[0][0])


def applied_once(fault_stack: FaultStack, poison: Poison, which: str) -> bool:
    return effect(fault_stack, poison, which) == 1


def holds_event(event_id: str, messages: list[Message]) -> bool:
    return any(header(m, "event_id") == event_id for m in messages)


def test_a_poison_message_on_every_consumed_topic_is_parked_and_replayed_after_the_fix(
    fault_stack: FaultStack,
) -> None:
    token = fault_stack.login()
    status, submitted = fault_stack.call(
        "POST", "/api/v1/reports", token, report_body("dead letters", "ordinary", "孙一诺")
    )
    assert status == 201, submitted
    status, report = fault_stack.call("GET", f"/api/v1/reports/{submitted['report_id']}", token)
    assert status == 200 and report["child_id"], report
    cases = poisons(report["child_id"])
    assert {p.topic for p in cases} == {
        REPORTING_REPORT,
        REFERRAL_REFERRAL,
        REGISTRY_CASE,
        REGISTRY_CHILD,
        BENEFITS_ENTITLEMENT,
    }

    # 1. The poison, then a good event behind it on the same partition.
    event_ids: dict[str, tuple[str, str]] = {}
    for case in cases:
        poison_event, good_event = uuid.uuid4().hex, uuid.uuid4().hex
        event_ids[case.poison_id] = (poison_event, good_event)
        for payload, event_id in ((case.poison, poison_event), (case.good, good_event)):
            publish(
                fault_stack.kafka,
                fault_stack.topic_prefix,
                PendingEvent(case.topic, PILOT_TENANT, "fault-suite", case.aggregate, payload),
                event_id,
            )

    # 2. Each poison reaches its dead-letter topic, and each good event behind it takes effect.
    parked = {}
    for case in cases:
        poison_event = event_ids[case.poison_id][0]
        dlt = fault_stack.topic_prefix + dead_letter_topic(case.topic)
        messages = read_topic(fault_stack.kafka, dlt, partial(holds_event, poison_event), 90)
        mine = [m for m in messages if header(m, "event_id") == poison_event]
        assert len(mine) == 1, f"the poison on {case.topic} did not reach {dlt} (found {len(messages)} others)"
        parked[case.poison_id] = mine[0]
        eventually(
            partial(applied_once, fault_stack, case, case.good_id),
            timeout=60,
            what=f"the good event behind the poison on {case.topic} to be applied by {case.consumer}",
        )
        assert effect(fault_stack, case, case.poison_id) == 0
    # The consumers kept going for real traffic too: the report's referral reached the caseworker's inbox.
    eventually(
        lambda: any(
            n["subject_type"] == "referral" for n in fault_stack.call("GET", "/api/v1/inbox", token)[1]["notifications"]
        ),
        what="the report's referral in the inbox",
    )

    listed = dead_letters_tool(fault_stack.env(), "list")
    assert listed.returncode == 0, listed.stderr
    for case in cases:
        assert event_ids[case.poison_id][0] in listed.stdout, (
            f"`dead_letters list` does not show the {case.topic} poison"
        )

    # 3. Fix the causes (a migration widening the columns), replay each parked message by its coordinates, twice.
    for fix in {(case.consumer, case.fix_sql) for case in cases}:
        execute(fault_stack.databases[fix[0]].owner_url, fix[1])
    for _ in range(2):
        for case in cases:
            message = parked[case.poison_id]
            replayed = dead_letters_tool(
                fault_stack.env(),
                "replay",
                "--topic",
                case.topic,
                "--partition",
                str(message.partition()),
                "--offset",
                str(message.offset()),
            )
            assert replayed.returncode == 0, f"replaying the {case.topic} poison: {replayed.stdout}{replayed.stderr}"

    # 4. Each replayed event takes effect exactly once.
    for case in cases:
        eventually(
            partial(applied_once, fault_stack, case, case.poison_id),
            timeout=60,
            what=f"the replayed {case.topic} event to be applied by {case.consumer}",
        )
    for case in cases:
        assert effect(fault_stack, case, case.poison_id) == 1, f"the {case.topic} replay took effect twice"
        assert effect(fault_stack, case, case.good_id) == 1
