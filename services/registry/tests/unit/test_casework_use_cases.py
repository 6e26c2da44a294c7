"""The registry's case-file use cases on in-memory fakes (ADR 0018): named staff, case status, assessments, the
assistance plan and follow-up visits; what each keeps, the change history and timeline it writes, the events
it commits, and what it refuses.

No database: `fakes.FakeRegistryStore` keeps the register as committed and the events each commit would have
written to the outbox. What needs SQL (RLS, row locks, the version column, the outbox rows) is tested against
PostgreSQL in services/registry/tests/integration (test_casework.py, test_concurrent_edits.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from minorprot.registry.v1 import events_pb2

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.consumer import system_principal
from platform_runtime.tenancy import acting_as
from platform_runtime.topics import REGISTRY_CASE
from services.registry.domain import events
from services.registry.domain.assessment import DomainFinding
from services.registry.domain.casefile import CaseStaff
from services.registry.domain.codes import ActionStatus, AssessmentDomain, CaseStatus, GoalStatus, RiskLevel
from services.registry.domain.plans import ReferralProgress
from services.registry.service_layer.commands import NewAssessment, NewPlanAction, NewVisit, PlanActionChange
from services.registry.tests.unit.fakes import FakeRegistryStore

TOWN, OTHER_TOWN = "110111008", "110111009"
TODAY = date(2026, 12, 4)
NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
CASEWORKER = Principal("u-case", "张社工", Role.CASEWORKER, TOWN, TOWN[:6])
DIRECTOR = Principal("u-dir", "李主任", Role.CHILD_DIRECTOR, TOWN, TOWN[:6])
REPORTER = Principal("u-rep", "王老师", Role.MANDATED_REPORTER, TOWN, TOWN[:6])
STAFF = CaseStaff("赵专人", "钱社工", "孙主任", "u-zhao", "u-qian", "u-sun")


@pytest.fixture(autouse=True)
def as_caseworker() -> Iterator[None]:
    with acting_as(CASEWORKER):
        yield


def child(store: FakeRegistryStore, child_id: str = "c1", status: CaseStatus = CaseStatus.IDENTIFIED) -> str:
    store.add_child(TOWN, child_id, opened_at=NOW - timedelta(days=30), status=status)
    return child_id


def findings(**scores: int) -> tuple[DomainFinding, ...]:
    return tuple(
        DomainFinding(domain, scores.get(domain.value, 0), "见记录" if scores.get(domain.value, 0) >= 2 else "")
        for domain in AssessmentDomain
    )


def history(store: FakeRegistryStore) -> list[tuple[str, str, dict[str, list[object]]]]:
    return [(e.entity_type, e.action, e.changes) for e in store.town(TOWN).history]


# -- named staff -------------------------------------------------------------------------------------------------


def test_assigning_staff_keeps_the_change_on_record_and_tells_the_newly_named(casework, store) -> None:
    child_id = child(store)

    case_id, staff, version = casework.assign_case(child_id, STAFF, expected_version=1)

    assert (case_id, staff, version) == ("case-c1", STAFF, 2)
    assert store.case_file(TOWN, child_id).staff == STAFF
    ((entity, action, changes),) = history(store)
    assert (entity, action) == ("case_file", "updated")
    assert changes["responsible_person"] == ["", "赵专人"] and changes["child_director_user_id"] == ["", "u-sun"]
    assert "status" not in changes
    (entry,) = store.town(TOWN).history
    assert (entry.actor, entry.role, entry.at) == ("u-case", "caseworker", NOW)
    assert store.events == [events.CaseAssigned("case-c1", child_id, staff=STAFF, previous=CaseStaff())]
    (pending,) = store.outbox
    assert (pending.topic, pending.aggregate_id) == (REGISTRY_CASE, child_id)
    assert isinstance(pending.payload, events_pb2.CaseAssigned)
    assert pending.payload.social_worker_user_id == "u-qian" and pending.payload.previous_responsible_person == ""


def test_naming_the_same_staff_again_changes_nothing_and_tells_nobody(casework, store) -> None:
    child_id = child(store)
    casework.assign_case(child_id, STAFF)

    _, _, version = casework.assign_case(child_id, STAFF)

    assert version == 2
    assert len(store.events) == 1 and len(history(store)) == 1


def test_staff_names_are_trimmed_and_checked(casework, store) -> None:
    child_id = child(store)
    _, staff, _ = casework.assign_case(child_id, CaseStaff(responsible_person="  赵专人 "))
    assert staff.responsible_person == "赵专人"
    with pytest.raises(errors.InvalidInput):
        casework.assign_case(child_id, CaseStaff(social_worker_user_id="u" * 65))


def test_an_edit_based_on_an_old_version_is_refused(casework, store) -> None:
    child_id = child(store)
    casework.assign_case(child_id, STAFF)

    with pytest.raises(errors.ConcurrentUpdate, match="version 1, now 2"):
        casework.assign_case(child_id, CaseStaff(), expected_version=1)
    assert store.case_file(TOWN, child_id).staff == STAFF


def test_a_lost_race_keeps_nothing_of_the_loser(casework, store) -> None:
    child_id = child(store)
    with store.unit_of_work(TOWN) as slow:
        slow.act_as(CASEWORKER, today=TODAY, now=NOW)
        case = slow.case_files.for_child(child_id)
        casework.assign_case(child_id, STAFF)  # commits meanwhile
        case.assign(CaseStaff(responsible_person="周专人"))
        slow.case_files.save(case)
        slow.add_timeline(child_id, "note", "lost", "r1")
        with pytest.raises(errors.ConcurrentUpdate, match="changed by someone else"):
            slow.commit()
    assert store.case_file(TOWN, child_id).staff == STAFF
    assert [e.entity_type for e in store.town(TOWN).history] == ["case_file"]  # the winner's only
    assert store.town(TOWN).timeline == []


def test_only_case_managers_name_staff_and_other_towns_children_are_not_found(casework, store) -> None:
    child_id = child(store)
    with acting_as(REPORTER), pytest.raises(errors.PermissionDenied):
        casework.assign_case(child_id, STAFF)
    store.add_child(OTHER_TOWN, "elsewhere", opened_at=NOW)
    with pytest.raises(errors.NotFound):
        casework.assign_case("elsewhere", STAFF)
    assert store.commits == 0


# -- case status -------------------------------------------------------------------------------------------------


def test_a_status_change_is_on_the_timeline_in_the_history_and_told_with_the_staff(casework, store) -> None:
    child_id = child(store)
    casework.assign_case(child_id, STAFF)

    view = casework.change_case_status(child_id, "assessing", "", expected_version=2)

    assert (view.status, view.version, view.next_visit_due) == (CaseStatus.ASSESSING, 3, None)
    case = store.case_file(TOWN, child_id)
    assert (case.status, case.status_changed_at) == (CaseStatus.ASSESSING, NOW)
    assert history(store)[-1] == ("case_file", "updated", {"status": ["identified", "assessing"]})
    (entry,) = store.town(TOWN).timeline
    assert entry.kind == "case_status" and "→" in entry.summary and entry.source == "registry"
    assert store.events[-1] == events.CaseStatusChanged(
        "case-c1", child_id, CaseStatus.IDENTIFIED, CaseStatus.ASSESSING, STAFF
    )
    assert store.outbox[-1].payload == events_pb2.CaseStatusChanged(
        case_id="case-c1",
        child_id=child_id,
        from_status="identified",
        to_status="assessing",
        responsible_person="赵专人",
        social_worker="钱社工",
        child_director="孙主任",
        responsible_user_id="u-zhao",
        social_worker_user_id="u-qian",
        child_director_user_id="u-sun",
    )


def test_a_status_change_the_case_is_not_ready_for_is_refused_and_keeps_nothing(casework, store) -> None:
    child_id = child(store, status=CaseStatus.ASSESSING)
    with pytest.raises(errors.Conflict, match="assessment"):
        casework.change_case_status(child_id, "plan_active", "")
    with pytest.raises(errors.Conflict):
        casework.change_case_status(child_id, "monitoring", "")
    with pytest.raises(errors.InvalidInput):
        casework.change_case_status(child_id, "closed", "")  # closing needs a reason
    assert store.case_file(TOWN, child_id).status is CaseStatus.ASSESSING
    assert store.commits == 0 and store.outbox == [] and history(store) == []


def test_the_plan_starts_once_the_child_is_assessed_and_an_action_is_open(casework, store) -> None:
    child_id = child(store, status=CaseStatus.ASSESSING)
    casework.record_assessment(NewAssessment(child_id, "initial", findings(health=2)))
    goal = casework.add_plan_goal(child_id, "按时就医")
    casework.add_plan_action(NewPlanAction(goal.goal_id, "陪同复诊", "person", "钱社工"))

    view = casework.change_case_status(child_id, "plan_active", "")

    assert view.status is CaseStatus.PLAN_ACTIVE
    assert view.next_visit_due == TODAY + timedelta(days=90)  # low risk


def test_a_merged_record_resolves_to_the_surviving_case(casework, store) -> None:
    survivor, duplicate = child(store, "c1"), child(store, "c2")
    store.merge(TOWN, duplicate, into=survivor)

    case_id, _, _ = casework.assign_case(duplicate, STAFF)

    assert case_id == "case-c1"
    assert store.case_file(TOWN, duplicate).staff == CaseStaff()


# -- assessments -------------------------------------------------------------------------------------------------


def test_an_assessment_sets_the_risk_level_and_the_next_visit(casework, store) -> None:
    child_id = child(store, status=CaseStatus.ASSESSING)

    view, next_due = casework.record_assessment(NewAssessment(child_id, "initial", findings(safety=3)))

    assert view.risk_level is RiskLevel.HIGH and view.assessor == "张社工" and view.recorded_by == "u-case"
    assert next_due == TODAY + timedelta(days=7)
    case = store.case_file(TOWN, child_id)
    assert (case.risk_level, case.next_visit_due) == (RiskLevel.HIGH, next_due)
    kinds = [(entity, action) for entity, action, _ in history(store)]
    assert kinds == [("assessment", "created"), ("case_file", "updated")]
    assert history(store)[1][2] == {"risk_level": ["", "high"]}
    created = history(store)[0][2]
    assert created["assessed_on"] == [None, TODAY.isoformat()] and created["risk_level"] == [None, "high"]
    assert [e.kind for e in store.town(TOWN).timeline] == ["assessment"]


def test_an_assessment_entered_late_for_an_earlier_day_leaves_the_risk_level(casework, store) -> None:
    child_id = child(store, status=CaseStatus.ASSESSING)
    casework.record_assessment(NewAssessment(child_id, "initial", findings(safety=3)))

    casework.record_assessment(
        NewAssessment(child_id, "re_assessment", findings(), assessed_on=TODAY - timedelta(days=3))
    )

    assert store.case_file(TOWN, child_id).risk_level is RiskLevel.HIGH
    assert [entity for entity, _, _ in history(store)] == ["assessment", "case_file", "assessment"]


def test_assessments_follow_the_case_status_and_their_order(casework, store) -> None:
    identified = child(store, "c1")
    assessing = child(store, "c2", status=CaseStatus.ASSESSING)
    with pytest.raises(errors.Conflict):
        casework.record_assessment(NewAssessment(identified, "initial", findings()))
    with pytest.raises(errors.Conflict, match="initial assessment first"):
        casework.record_assessment(NewAssessment(assessing, "re_assessment", findings()))
    with pytest.raises(errors.InvalidInput):
        casework.record_assessment(NewAssessment(assessing, "initial", findings()[:5]))
    with pytest.raises(errors.InvalidInput):
        casework.record_assessment(
            NewAssessment(assessing, "initial", findings(), assessed_on=TODAY + timedelta(days=1))
        )
    assert store.commits == 0


# -- follow-up visits ----------------------------------------------------------------------------------------------


def test_a_visit_moves_the_next_one_and_is_on_record(casework, store) -> None:
    child_id = child(store, status=CaseStatus.ASSESSING)
    casework.record_assessment(
        NewAssessment(child_id, "initial", findings(health=3), assessed_on=TODAY - timedelta(days=20))
    )

    with acting_as(DIRECTOR):
        view, next_due = casework.record_visit(NewVisit(child_id, "", "在家，状态良好"))

    assert (view.visitor, view.visited_on, view.recorded_by) == ("李主任", TODAY, "u-dir")
    assert next_due == TODAY + timedelta(days=30)  # medium risk, counted from the visit
    assert history(store)[-1][:2] == ("visit", "created")
    assert store.town(TOWN).history[-1].role == "child_director"
    assert store.town(TOWN).timeline[-1].kind == "visit"


def test_visits_are_recorded_on_open_case_files_only(casework, store) -> None:
    child_id = child(store, status=CaseStatus.CLOSED)
    with pytest.raises(errors.Conflict, match="reopen"):
        casework.record_visit(NewVisit(child_id, "", "上门"))
    with pytest.raises(errors.InvalidInput):
        casework.record_visit(NewVisit(child(store, "c2"), "", "  "))


def test_an_overdue_visit_is_raised_once_with_whom_to_remind(casework, store) -> None:
    child_id = child(store, status=CaseStatus.ASSESSING)
    casework.assign_case(child_id, STAFF)
    casework.record_assessment(
        NewAssessment(child_id, "initial", findings(safety=4), assessed_on=TODAY - timedelta(days=10))
    )
    due = TODAY - timedelta(days=3)

    with acting_as(system_principal(TOWN, "test")):
        assert casework.raise_overdue_visits(TOWN) == 1
        assert casework.raise_overdue_visits(TOWN) == 0

    raised = [e for e in store.events if isinstance(e, events.VisitOverdue)]
    assert raised == [events.VisitOverdue("case-c1", child_id, due, 3, RiskLevel.HIGH, STAFF)]
    message = store.outbox[-1].payload
    assert isinstance(message, events_pb2.VisitOverdue)
    assert (message.due_on.day, message.days_overdue, message.risk_level) == (due.day, 3, "high")
    assert store.case_file(TOWN, child_id).overdue_raised_for == due
    assert store.town(TOWN).timeline[-1].reference_id == due.isoformat()


# -- the assistance plan -------------------------------------------------------------------------------------------


def test_goals_and_actions_are_kept_with_their_history(casework, store) -> None:
    child_id = child(store, status=CaseStatus.ASSESSING)
    goal = casework.add_plan_goal(child_id, "  恢复上学 ")
    action = casework.add_plan_action(
        NewPlanAction(goal.goal_id, "联系学校", "agency", "education", due_on=TODAY - timedelta(days=1))
    )
    assert goal.description == "恢复上学" and goal.status is GoalStatus.OPEN
    assert action.status is ActionStatus.PLANNED and action.overdue

    updated = casework.update_plan_action(PlanActionChange(action.action_id, status="in_progress", note="已约谈"))
    revised = casework.update_plan_goal(goal.goal_id, "", "achieved")

    assert (updated.status, updated.note, updated.overdue) == (ActionStatus.IN_PROGRESS, "已约谈", True)
    assert revised.status is GoalStatus.ACHIEVED and revised.description == "恢复上学"
    assert [a.action_id for a in revised.actions] == [action.action_id]
    assert [(entity, action) for entity, action, _ in history(store)] == [
        ("plan_goal", "created"),
        ("plan_action", "created"),
        ("plan_action", "updated"),
        ("plan_goal", "updated"),
    ]
    assert history(store)[2][2] == {"status": ["planned", "in_progress"], "note": ["", "已约谈"]}
    with pytest.raises(errors.Conflict, match="open goal"):
        casework.add_plan_action(NewPlanAction(goal.goal_id, "再联系", "person", "钱社工"))


def test_plan_work_needs_an_open_case_and_this_towns_records(casework, store) -> None:
    closed = child(store, status=CaseStatus.CLOSED)
    with pytest.raises(errors.Conflict):
        casework.add_plan_goal(closed, "任何目标")
    with pytest.raises(errors.NotFound):
        casework.update_plan_goal("no-such-goal", "x", "")
    with pytest.raises(errors.NotFound):
        casework.update_plan_action(PlanActionChange("no-such-action", status="done"))
    with pytest.raises(errors.InvalidInput):
        casework.add_plan_action(NewPlanAction("g", "联系", "agency", "Not A Code"))


def test_referral_events_move_actions_forward_only_and_early_ones_are_remembered(casework, store) -> None:
    child_id = child(store, status=CaseStatus.ASSESSING)
    goal = casework.add_plan_goal(child_id, "就医")
    through = casework.add_plan_action(NewPlanAction(goal.goal_id, "转介医院", "agency", "health", referral_id="r1"))
    cancelled = casework.add_plan_action(NewPlanAction(goal.goal_id, "另一转介", "agency", "health", referral_id="r1"))
    casework.update_plan_action(PlanActionChange(cancelled.action_id, status="cancelled"))

    consumer = system_principal(TOWN, "registry-consumer")
    with acting_as(consumer), store.unit_of_work(TOWN) as uow:
        assert (
            casework.apply_referral_progress(
                uow, referral_id="r1", progress=ReferralProgress.COMPLETED, outcome="已治疗"
            )
            == 1
        )
        assert casework.apply_referral_progress(uow, referral_id="r1", progress=ReferralProgress.ACCEPTED) == 0
        # A referral told before any action names it: the action starts where its events would have led.
        casework.apply_referral_progress(uow, referral_id="r2", progress=ReferralProgress.ACCEPTED)
        uow.commit()

    actions = {a.action_id: a for a in store.town(TOWN).actions.values()}
    assert (actions[through.action_id].status, actions[through.action_id].note) == (ActionStatus.DONE, "已治疗")
    assert actions[cancelled.action_id].status is ActionStatus.CANCELLED
    assert store.town(TOWN).referrals["r1"].progress is ReferralProgress.COMPLETED  # a late 'accepted' changes nothing
    by_consumer = [e for e in store.town(TOWN).history if e.actor == consumer.user_id]
    assert [(e.entity_type, e.action, e.changes["status"]) for e in by_consumer] == [
        ("plan_action", "updated", ["planned", "done"])
    ]
    later = casework.add_plan_action(NewPlanAction(goal.goal_id, "随后转介", "agency", "health", referral_id="r2"))
    assert later.status is ActionStatus.IN_PROGRESS
