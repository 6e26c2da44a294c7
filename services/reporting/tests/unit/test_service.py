"""The reporting use cases on in-memory fakes: what each stores, which events it commits, and what it refuses.

No database and no registry: `fakes.FakeReportStore` keeps reports as committed and the events each commit
would have written to the outbox; `fakes.FakeChildDirectory` plays the register. What needs SQL (RLS, row
locks, the version column, the outbox rows themselves) is tested against PostgreSQL in tests/integration.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from minorprot.reporting.v1 import events_pb2, reporting_pb2

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.pii import BlindIndex
from platform_runtime.tenancy import acting_as
from platform_runtime.topics import REPORTING_REPORT
from services.reporting.domain import events
from services.reporting.domain.deadlines import Milestone
from services.reporting.domain.model import (
    AgencyKind,
    Channel,
    ChildInfo,
    CrisisAction,
    PersonTriage,
    ReportStatus,
    SituationType,
    Submission,
    Urgency,
)
from services.reporting.domain.receipts import ReporterStatus, new_receipt
from services.reporting.service_layer.ports import ChildCandidate
from services.reporting.service_layer.services import ReportingService
from services.reporting.tests.unit import builders
from services.reporting.tests.unit.fakes import FakeChildDirectory, FakeReportStore

TOWN = builders.LIANGXIANG
OTHER_TOWN = "110111009"
CASEWORKER = Principal("u-case", "张督导", Role.CASEWORKER, TOWN, TOWN[:6])
PUBLIC = Principal("u-public", "public", Role.PUBLIC, TOWN, TOWN[:6])
POLICE_SYSTEM = Principal("u-police", "police", Role.AGENCY_SYSTEM, TOWN, TOWN[:6], agency="police")
OTHER_CASEWORKER = Principal("u-other", "李督导", Role.CASEWORKER, OTHER_TOWN, OTHER_TOWN[:6])


class Clock:
    def __init__(self) -> None:
        self.now = builders.NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def store() -> FakeReportStore:
    return FakeReportStore()


@pytest.fixture
def children() -> FakeChildDirectory:
    return FakeChildDirectory()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store: FakeReportStore, children: FakeChildDirectory, clock: Clock) -> ReportingService:
    return ReportingService(store, BlindIndex(b"k" * 32), children, now=clock)


@pytest.fixture(autouse=True)
def as_caseworker() -> Iterator[None]:
    with acting_as(CASEWORKER):
        yield


def crisis_submission(**overrides: object) -> Submission:
    return builders.submission(
        Channel.STAFF_HOTLINE, situations=frozenset({SituationType.OTHER_SERIOUS_HARM}), **overrides
    )


def named(name: str, channel: Channel = Channel.STAFF_HOTLINE) -> Submission:
    return builders.submission(channel, child=ChildInfo(name=name, description="约8岁男孩"))


def candidate(child_id: str, score: float) -> ChildCandidate:
    return ChildCandidate(child_id=child_id, score=score, reasons=("name",))


# -- intake ------------------------------------------------------------------------------------------------------


def test_a_report_is_stored_triaged_and_announced_before_the_register_is_asked(service, store, children):
    outcome = service.submit(builders.submission(Channel.STAFF_HOTLINE))

    first = store.units[0]  # the intake's own transaction
    assert first.commits == 1
    assert [type(e) for e in store.events[:1]] == [events.ReportSubmitted]
    submitted = store.events[0]
    assert isinstance(submitted, events.ReportSubmitted)
    assert submitted.report.status is ReportStatus.TRIAGED  # as it was when stored, before the link
    assert submitted.report.report_id == outcome.report.report_id
    assert not submitted.crisis
    assert [e.aggregate_id for e in first.committed] == [outcome.report.report_id]
    assert outcome.receipt.startswith("R-")
    assert store.rows[outcome.report.report_id].submitted_by == CASEWORKER.user_id
    assert [d.milestone for d in outcome.stored.deadlines] == list(Milestone)


def test_a_child_new_to_the_register_is_registered_provisionally_and_linked(service, store, children):
    outcome = service.submit(named("小明"))

    assert [c.name for c in children.registered] == ["小明"]
    assert outcome.report.status is ReportStatus.LINKED
    assert outcome.report.child_id == "provisional-1"
    assert outcome.report.group_id == outcome.report.report_id  # a group of its own
    assert outcome.stored.version == 2  # stored, then linked
    linked = store.events_of(events.ReportLinked)
    assert linked == [
        events.ReportLinked(
            report_id=outcome.report.report_id,
            child_id="provisional-1",
            group_id=outcome.report.report_id,
            situations=frozenset({SituationType.WANDERING}),
            urgency=outcome.report.urgency,
        )
    ]
    assert store.commits == 2


def test_a_crisis_is_declared_in_the_same_transaction_as_the_report(service, store):
    outcome = service.submit(crisis_submission())

    first = store.units[0]
    assert [p.event_type for p in first.committed] == [
        "minorprot.reporting.v1.ReportSubmitted",
        "minorprot.reporting.v1.CrisisDeclared",
    ]
    (crisis,) = store.events_of(events.CrisisDeclared)
    assert isinstance(crisis, events.CrisisDeclared)
    assert crisis.report_id == outcome.report.report_id
    assert crisis.division_code == TOWN
    assert crisis.situations == frozenset({SituationType.OTHER_SERIOUS_HARM})
    assert crisis.actions[0] is CrisisAction.NOTIFY_TOWNSHIP_DUTY_OFFICER
    assert CrisisAction.NOTIFY_POLICE in crisis.actions
    assert crisis.reasons
    assert outcome.report.urgency is Urgency.CRISIS and outcome.stored.crisis
    submitted = store.events[0]
    assert isinstance(submitted, events.ReportSubmitted) and submitted.crisis


def test_events_reach_the_outbox_as_the_contract_says_and_never_carry_the_reporter(service, store):
    outcome = service.submit(crisis_submission())
    report_id = outcome.report.report_id

    submitted_pending, crisis_pending = store.units[0].committed
    assert submitted_pending.topic == REPORTING_REPORT
    assert submitted_pending.key == f"{TOWN}:{report_id}"
    assert submitted_pending.aggregate_type == "report"
    submitted = submitted_pending.payload
    assert isinstance(submitted, events_pb2.ReportSubmitted)
    assert not submitted.HasField("report")  # deprecated: it carried the child's name and the narrative
    summary = submitted.summary
    assert summary.report_id == report_id
    assert summary.crisis and summary.urgency == reporting_pb2.URGENCY_CRISIS
    assert list(summary.situation_types) == ["other_serious_harm"]
    assert summary.division_code == TOWN and summary.place_text == "良乡火车站南广场"
    assert not submitted.awaiting_triage  # a caseworker took it: no one else need check it
    crisis = crisis_pending.payload
    assert isinstance(crisis, events_pb2.CrisisDeclared)
    assert list(crisis.situation_types) == ["other_serious_harm"]
    assert crisis.required_actions[0] == CrisisAction.NOTIFY_TOWNSHIP_DUTY_OFFICER.value
    assert store.outbox[:2] == [submitted_pending, crisis_pending]


def test_the_submitted_event_names_nobody_and_carries_the_age_not_the_birth_date(service, store):
    child = ChildInfo(
        name="王小明",
        birth_date=date(2016, 6, 1),
        description="穿红色上衣",
        school="良乡中心小学",
        guardian_names=("王大山",),
    )
    outcome = service.submit(builders.submission(Channel.RELATIVE, child=child))

    submitted = store.units[0].committed[0].payload
    assert isinstance(submitted, events_pb2.ReportSubmitted)
    assert submitted.summary.approximate_age == 7  # 2024-05-20: not yet eight
    payload = submitted.SerializeToString()
    for personal in ("王小明", "穿红色上衣", "良乡中心小学", "王大山", outcome.report.submission.narrative, "赵女士"):
        assert personal.encode() not in payload


def test_a_role_may_submit_only_through_its_channels_and_nothing_is_kept(service, store):
    with acting_as(PUBLIC), pytest.raises(errors.PermissionDenied):
        service.submit(builders.submission(Channel.MANDATED_REPORTER))
    assert store.rows == {} and store.events == [] and store.commits == 0


def test_a_report_from_outside_the_callers_town_is_refused_with_every_problem(service, store):
    other_place = replace(builders.submission().place, division_code=OTHER_TOWN + "201")
    with pytest.raises(errors.InvalidInput) as refused:
        service.submit(builders.submission(Channel.STAFF_HOTLINE, place=other_place, narrative=""))
    fields = {v.field for v in refused.value.violations}
    assert "division_code" in fields and len(fields) >= 2
    assert store.rows == {} and store.commits == 0


def test_an_agency_resending_a_report_gets_the_first_one_back(service, store, children):
    children.candidates["小红"] = [candidate("c-1", 0.95)]
    children.known.add("c-1")
    sub = builders.submission(Channel.AGENCY_SHARE, child=ChildInfo(name="小红"))
    with acting_as(POLICE_SYSTEM):
        first = service.submit(sub, external_reference="JQ-2024-001")
        events_before, commits_before = list(store.events), store.commits
        again = service.submit(sub, external_reference="JQ-2024-001")
    assert again.report.report_id == first.report.report_id
    assert again.receipt == ""  # only its hash is kept
    assert store.events == events_before and store.commits == commits_before
    assert first.report.submission.reporter is not None
    assert first.report.submission.reporter.agency is AgencyKind.POLICE  # the token's agency


# -- linking -------------------------------------------------------------------------------------------------------


def test_a_public_report_waits_for_a_person_to_link_it(service, store, children):
    with acting_as(PUBLIC):
        outcome = service.submit(builders.submission(Channel.PUBLIC_ANONYMOUS))
    assert outcome.report.status is ReportStatus.NEEDS_ATTENTION
    assert outcome.report.attention_reason == "public report: a person links it to a child"
    assert children.registered == []
    assert store.events_of(events.ReportLinked) == []


def test_a_public_report_awaits_a_persons_triage_before_agencies_act_but_its_crisis_does_not(service, store):
    with acting_as(PUBLIC):
        outcome = service.submit(
            builders.submission(Channel.PUBLIC_ANONYMOUS, situations=frozenset({SituationType.OTHER_SERIOUS_HARM}))
        )
    assert outcome.report.person_triage is PersonTriage.AWAITING
    submitted, crisis = (pending.payload for pending in store.units[0].committed)
    assert isinstance(submitted, events_pb2.ReportSubmitted) and submitted.awaiting_triage
    assert isinstance(crisis, events_pb2.CrisisDeclared)  # the duty officer is alerted at once

    confirmed = service.decide_triage(outcome.report.report_id, True, expected_version=outcome.stored.version)

    assert confirmed.report.person_triage is PersonTriage.CONFIRMED
    assert confirmed.version == outcome.stored.version + 1
    (event,) = store.events_of(events.ReportTriageConfirmed)
    assert isinstance(event, events.ReportTriageConfirmed) and event.crisis
    message = store.outbox[-1].payload
    assert isinstance(message, events_pb2.ReportTriageConfirmed)
    assert message.summary.report_id == outcome.report.report_id and message.summary.crisis
    with pytest.raises(errors.Conflict):
        service.decide_triage(outcome.report.report_id, False)  # decided once


def test_a_rejected_public_report_opens_no_referral_and_staff_reports_need_no_triage(service, store):
    with acting_as(PUBLIC):
        public = service.submit(builders.submission(Channel.PUBLIC_NAMED))
    rejected = service.decide_triage(public.report.report_id, False)
    assert rejected.report.person_triage is PersonTriage.REJECTED
    assert store.events_of(events.ReportTriageConfirmed) == []

    staff = service.submit(builders.submission(Channel.PUBLIC_NAMED))  # a caseworker typed it in
    assert staff.report.person_triage is None
    with pytest.raises(errors.Conflict):
        service.decide_triage(staff.report.report_id, True)
    with acting_as(PUBLIC), pytest.raises(errors.PermissionDenied):
        service.decide_triage(public.report.report_id, True)


def test_a_triage_decision_on_a_stale_read_is_refused(service, store):
    with acting_as(PUBLIC):
        outcome = service.submit(builders.submission(Channel.PUBLIC_NAMED))
    with pytest.raises(errors.ConcurrentUpdate):
        service.decide_triage(outcome.report.report_id, True, expected_version=outcome.stored.version - 1)
    assert service.get(outcome.report.report_id).report.person_triage is PersonTriage.AWAITING


def test_a_registry_outage_flags_the_report_but_keeps_it_and_its_crisis(service, store, children):
    children.down = True
    outcome = service.submit(crisis_submission())
    assert outcome.report.status is ReportStatus.NEEDS_ATTENTION
    assert "not linked to a child yet" in (outcome.report.attention_reason or "")
    assert [type(e) for e in store.events] == [events.ReportSubmitted, events.CrisisDeclared]


def test_several_likely_children_are_told_apart_by_a_person(service, store, children):
    children.candidates["小明"] = [candidate("c-1", 0.95), candidate("c-2", 0.93)]
    outcome = service.submit(named("小明"))
    assert outcome.report.status is ReportStatus.NEEDS_ATTENTION
    assert outcome.report.attention_reason == "2 possible children: confirm which one"
    assert store.events_of(events.ReportLinked) == []
    assert service.list_link_candidates(outcome.report.report_id) == children.candidates["小明"]


def test_one_strong_candidate_links_at_once_and_a_second_report_joins_its_group(service, store, children):
    children.candidates["小明"] = [candidate("c-1", 0.95), candidate("c-9", 0.4)]
    first = service.submit(named("小明"))
    second = service.submit(named("小明"))
    assert first.report.child_id == second.report.child_id == "c-1"
    assert second.report.group_id == first.report.report_id
    linked = store.events_of(events.ReportLinked)
    assert [(e.report_id, e.group_id) for e in linked if isinstance(e, events.ReportLinked)] == [
        (first.report.report_id, first.report.report_id),
        (second.report.report_id, first.report.report_id),
    ]
    assert children.registered == []


def test_a_person_confirms_the_child_and_a_stale_read_changes_nothing(service, store, children):
    children.candidates["小明"] = [candidate("c-1", 0.95), candidate("c-2", 0.93)]
    children.known |= {"c-1", "c-2"}
    flagged = service.submit(named("小明")).stored
    events_before = list(store.events)

    with pytest.raises(errors.ConcurrentUpdate):
        service.confirm_link(flagged.report.report_id, "c-2", expected_version=flagged.version - 1)
    with pytest.raises(errors.NotFound):
        service.confirm_link(flagged.report.report_id, "c-unknown")
    assert store.events == events_before

    linked = service.confirm_link(flagged.report.report_id, "c-2", expected_version=flagged.version)
    assert linked.report.status is ReportStatus.LINKED and linked.report.child_id == "c-2"
    assert linked.version == flagged.version + 1
    assert store.events[len(events_before) :] == [events.linked(linked.report)]
    with pytest.raises(errors.Conflict):  # linked already
        service.confirm_link(flagged.report.report_id, "c-1")


def test_a_merged_child_is_linked_under_the_record_that_survives(service, store, children):
    with acting_as(PUBLIC):
        report_id = service.submit(builders.submission(Channel.PUBLIC_ANONYMOUS)).report.report_id
    children.known.add("c-kept")
    children.merged_into["c-gone"] = "c-kept"
    assert service.confirm_link(report_id, "c-gone").report.child_id == "c-kept"


def test_linking_to_a_new_child_registers_one_only_when_the_link_can_be_made(service, store, children):
    with acting_as(PUBLIC):
        report_id = service.submit(builders.submission(Channel.PUBLIC_ANONYMOUS)).report.report_id
    with pytest.raises(errors.ConcurrentUpdate):
        service.link_to_new_child(report_id, expected_version=99)
    assert children.registered == []

    linked = service.link_to_new_child(report_id)
    assert linked.report.child_id == "provisional-1" and len(children.registered) == 1
    with pytest.raises(errors.Conflict):
        service.link_to_new_child(report_id)
    assert len(children.registered) == 1  # refused before registering: no orphan child


def test_a_change_that_lost_a_race_is_not_kept(service, store):
    """Two transactions read the same version: the second commit fails and keeps nothing."""
    with acting_as(PUBLIC):
        report_id = service.submit(builders.submission(Channel.PUBLIC_ANONYMOUS)).report.report_id
    with store.unit_of_work(TOWN) as first, store.unit_of_work(TOWN) as second:
        for uow in (first, second):
            entry = uow.reports.get(report_id)
            assert entry is not None
            entry.report.give_outcome_notice(f"notice from {id(uow)}")
            uow.reports.save(entry.report)
        first.commit()
        with pytest.raises(errors.ConcurrentUpdate):
            second.commit()
    assert store.rows[report_id].report.outcome_notice == f"notice from {id(first)}"


# -- time limits ----------------------------------------------------------------------------------------------------


def test_a_milestone_reached_in_time_starts_handling_and_announces_nothing(service, store, clock):
    report_id = service.submit(named("小明")).report.report_id
    clock.advance(minutes=5)
    stored = service.record_milestone(report_id, Milestone.ACKNOWLEDGE)
    assert stored.report.status is ReportStatus.IN_PROGRESS
    acknowledge = next(d for d in stored.deadlines if d.milestone is Milestone.ACKNOWLEDGE)
    assert acknowledge.completed_at == clock.now
    assert store.completed_by[(report_id, Milestone.ACKNOWLEDGE)] == CASEWORKER.user_id
    assert store.events_of(events.DeadlineBreached) == []


def test_a_milestone_reached_late_announces_its_breach_once(service, store, clock):
    report = service.submit(crisis_submission()).report  # acknowledge within 15 minutes
    clock.advance(minutes=40)
    service.record_milestone(report.report_id, Milestone.ACKNOWLEDGE)
    (breach,) = store.events_of(events.DeadlineBreached)
    assert breach == events.DeadlineBreached(
        report_id=report.report_id,
        child_id=report.child_id,
        milestone=Milestone.ACKNOWLEDGE,
        urgency=Urgency.CRISIS,
        due_at=builders.NOW + timedelta(minutes=15),
        completed_at=clock.now,
        division_code=TOWN,
    )
    service.record_milestone(report.report_id, Milestone.ACKNOWLEDGE)
    assert service.raise_breaches_of(TOWN) == 0  # announced already; the others are not due yet
    assert len(store.events_of(events.DeadlineBreached)) == 1


def test_reaching_a_later_milestone_reaches_the_earlier_ones(service, clock):
    report_id = service.submit(named("小明")).report.report_id
    clock.advance(minutes=1)
    stored = service.record_milestone(report_id, Milestone.FIRST_CONTACT)
    reached = {d.milestone for d in stored.deadlines if d.completed_at is not None}
    assert reached == {Milestone.ACKNOWLEDGE, Milestone.FIRST_CONTACT}


def test_the_periodic_check_announces_each_missed_limit_once_per_town(service, store, clock):
    crisis_id = service.submit(crisis_submission()).report.report_id
    with acting_as(OTHER_CASEWORKER):
        other_place = replace(builders.submission().place, division_code=OTHER_TOWN)
        service.submit(crisis_submission(place=other_place))
    assert service.tenants_with_reports() == [TOWN, OTHER_TOWN]

    assert service.raise_breaches_of(TOWN) == 0
    clock.advance(hours=2)  # acknowledge (15 min) and first contact (1 h) missed
    assert service.raise_breaches_of(TOWN) == 2
    assert service.raise_breaches_of(TOWN) == 0
    breaches = store.events_of(events.DeadlineBreached)
    assert {(b.report_id, b.milestone) for b in breaches if isinstance(b, events.DeadlineBreached)} == {
        (crisis_id, Milestone.ACKNOWLEDGE),
        (crisis_id, Milestone.FIRST_CONTACT),
    }
    assert all(p.tenant == TOWN for p in store.outbox if p.event_type.endswith("DeadlineBreached"))
    assert service.raise_breaches_of(OTHER_TOWN) == 2


def test_a_closed_report_raises_no_breach_and_takes_no_milestone(service, store, clock):
    report_id = service.submit(crisis_submission()).report.report_id
    service.give_outcome_notice(report_id, "已联系监护人并安排临时照料。")
    service.close(report_id)
    clock.advance(days=2)
    assert service.raise_breaches_of(TOWN) == 0
    with pytest.raises(errors.Conflict):
        service.record_milestone(report_id, Milestone.ACKNOWLEDGE)


# -- telling the reporter, closing, reading ----------------------------------------------------------------------------


def test_a_report_closes_only_after_its_outcome_notice_and_a_refusal_keeps_nothing(service, store):
    report_id = service.submit(named("小明")).report.report_id
    commits = store.commits
    with pytest.raises(errors.Conflict):
        service.close(report_id)
    assert store.commits == commits
    assert store.units[-1].rollbacks == 0  # refused before anything changed

    service.give_outcome_notice(report_id, "已核实并纳入关爱帮扶。")
    closed = service.close(report_id)
    assert closed.report.status is ReportStatus.CLOSED
    with pytest.raises(errors.Conflict):
        service.give_outcome_notice(report_id, "another")


def test_a_receipt_shows_the_reporter_the_status_and_the_notice_only(service):
    with acting_as(PUBLIC):
        outcome = service.submit(builders.submission(Channel.PUBLIC_ANONYMOUS))
    view = service.lookup_receipt(outcome.receipt.lower(), client="1.2.3.4")
    assert view.receipt == outcome.receipt
    assert view.status is ReporterStatus.IN_HANDLING and view.outcome_notice is None
    service.give_outcome_notice(outcome.report.report_id, "已处理。")
    assert service.lookup_receipt(outcome.receipt, client="1.2.3.4").outcome_notice == "已处理。"
    with pytest.raises(errors.NotFound):
        service.lookup_receipt(new_receipt(), client="1.2.3.4")  # well formed, but no report has it


def test_only_staff_read_reports_and_only_their_towns(service):
    report_id = service.submit(named("小明")).report.report_id
    with acting_as(PUBLIC), pytest.raises(errors.PermissionDenied):
        service.get(report_id)
    with acting_as(OTHER_CASEWORKER), pytest.raises(errors.NotFound):
        service.get(report_id)
    assert service.get(report_id).report.report_id == report_id


TOWN_ADMIN = Principal("u-admin", "王管理员", Role.TOWN_ADMIN, TOWN, TOWN[:6])


def test_reading_a_reports_details_needs_a_purpose_and_is_logged_with_it(service, store, clock):
    report_id = service.submit(named("小明")).report.report_id
    for purpose in ("", "看看", "x" * 501):
        with pytest.raises(errors.InvalidInput) as refused:
            service.read(report_id, purpose)
        assert refused.value.violations[0].field == "purpose"
    assert not store.reads.get(TOWN)  # a refused read leaves no trace and shows nothing
    clock.advance(minutes=5)
    assert service.read(report_id, "首次联系前核实情况").report.report_id == report_id
    with acting_as(TOWN_ADMIN):
        service.read(report_id, "复核本案处置")
        reads, _ = service.reads(report_id)
    assert [(r.actor, r.role, r.purpose, r.saw_reporter, r.at) for r in reads] == [
        (CASEWORKER.user_id, "caseworker", "首次联系前核实情况", True, clock.now),
        (TOWN_ADMIN.user_id, "town_admin", "复核本案处置", True, clock.now),
    ]


def test_only_administrators_see_who_read_a_report_and_only_in_their_town(service):
    report_id = service.submit(named("小明")).report.report_id
    with pytest.raises(errors.PermissionDenied):
        service.reads(report_id)  # a caseworker
    with acting_as(OTHER_CASEWORKER), pytest.raises(errors.NotFound):
        service.read(report_id, "查看别的镇的报告")
    with acting_as(PUBLIC), pytest.raises(errors.PermissionDenied):
        service.read(report_id, "查看报告内容")


def test_the_latest_reports_come_first_with_their_limits(service, clock):
    first = service.submit(named("小明")).report.report_id
    clock.advance(minutes=1)
    second = service.submit(crisis_submission()).report.report_id
    listed = service.list_recent(10)
    assert [s.report.report_id for s in listed] == [second, first]
    assert all(len(s.deadlines) == 3 for s in listed)
    assert listed[0].crisis and not listed[1].crisis
    assert [s.report.report_id for s in service.list_recent(1)] == [second]
