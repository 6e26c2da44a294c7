"""Work on a child's case file: family and guardians, difficulty categories, status and named staff,
assessments, the assistance plan, follow-up visits and the change history. Each use case runs in a unit of
work scoped to the caller's tenant and keeps its change in the change history in the same transaction.

A child id that was merged into another record resolves to the surviving record, so old links keep working.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import events_pb2
from sqlalchemy import func, or_, select

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.consumer import system_principal
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.pii import BlindIndex
from platform_runtime.tenancy import current_principal, require_role
from platform_runtime.topics import REGISTRY_CASE
from services.registry.adapters.orm import (
    AssessmentRecord,
    CaseFileRecord,
    CategoryRecord,
    ChangeRecord,
    ChildRecord,
    FamilyMemberRecord,
    PlanActionRecord,
    PlanGoalRecord,
    ReferralProgressRecord,
    VisitRecord,
)
from services.registry.domain import plans, visits
from services.registry.domain.assessment import (
    DomainFinding,
    check_assessment_allowed,
    check_findings,
    risk_level,
)
from services.registry.domain.casefile import CaseProgress, check_transition, require_open
from services.registry.domain.codes import (
    ActionStatus,
    AssessmentDomain,
    AssessmentKind,
    CaseStatus,
    CategorySource,
    DifficultyCategory,
    GoalStatus,
    OwnerKind,
    RiskLevel,
    parse_code,
)
from services.registry.domain.family import FamilyMember, check_member
from services.registry.service_layer.categories import CATEGORY_FIELDS, categories_of, refresh_categories
from services.registry.service_layer.child_in_work import ChildInWork
from services.registry.service_layer.family_facts import FAMILY_FIELDS, member_facts, write_member_facts
from services.registry.service_layer.history import columns, field_changes
from services.registry.service_layer.match_keys import store_match_keys
from services.registry.service_layer.scope import (
    CASE_MANAGER_ROLES,
    CASEWORK_ROLES,
    READER_ROLES,
    Scope,
    check_version,
    clean_text,
    no_lost_updates,
    require_purpose,
)
from services.registry.service_layer.views import (
    AssessmentView,
    CaseStaff,
    CaseStatusView,
    CategoryView,
    ChangeView,
    FamilyMemberView,
    NewAssessment,
    NewCategory,
    NewPlanAction,
    NewVisit,
    PlanActionChange,
    PlanActionView,
    PlanGoalView,
    VisitView,
)
from services.registry.service_layer.visit_schedule import reschedule_visits

OVERDUE_BATCH = 200
REDERIVE_BATCH = 200
SHORT_TEXT, LONG_TEXT = 100, 4000
CASE_FIELDS = ("status", "status_reason", "responsible_person", "social_worker", "child_director", "risk_level")
GOAL_FIELDS = ("description", "status")
ACTION_FIELDS = ("description", "owner_kind", "owner", "due_on", "status", "referral_id", "note")
VISIT_FIELDS = ("visited_on", "visitor", "findings")
ASSESSMENT_FIELDS = ("kind", "assessed_on", "assessor", "domains", "risk_level", "risk_reasons", "summary")


class CaseworkService:
    def __init__(
        self,
        database: Database,
        blind_index: BlindIndex,
        *,
        today: Callable[[], date] = date.today,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._blind_index = blind_index
        self._today = today
        self._now = now

    @contextmanager
    def _scope(self, roles: frozenset[Role]) -> Iterator[Scope]:
        """The caller's unit of work, once their role allows the use case."""
        caller = require_role(*roles)
        with no_lost_updates(), self._database.unit_of_work(caller.tenant) as uow:
            yield Scope(uow, caller, today=self._today(), now=self._now())

    # -- family and guardians ------------------------------------------------------------------------------

    def add_family_member(self, child_id: str, facts: FamilyMember) -> tuple[FamilyMemberView, tuple[str, ...]]:
        check_member(facts)
        with self._scope(CASEWORK_ROLES) as scope:
            child = ChildInWork.load(scope, scope.child(child_id))
            record, categories = record_family_member(scope, child, facts)
            child.store_match_keys(self._blind_index)  # guardians' names are match keys
            scope.commit()
            return _family_view(record), categories

    def update_family_member(self, member_id: str, facts: FamilyMember) -> tuple[FamilyMemberView, tuple[str, ...]]:
        """Replaces the member's facts; the ones replaced stay in the change history."""
        check_member(facts)
        with self._scope(CASEWORK_ROLES) as scope:
            record = _member(scope, member_id)
            child = scope.child(record.child_id, follow_merges=False)
            before = categories_of(scope, child.id)
            old = columns(record, FAMILY_FIELDS)
            write_member_facts(record, facts)
            scope.record_change(
                child.id, "family_member", record.id, "updated", field_changes(old, columns(record, FAMILY_FIELDS))
            )
            categories = self._family_changed(scope, child, before)
            scope.commit()
            return _family_view(record), categories

    def remove_family_member(self, member_id: str, reason: str) -> tuple[str, ...]:
        reason = clean_text(reason, "reason", max_chars=LONG_TEXT, required=True)
        with self._scope(CASEWORK_ROLES) as scope:
            record = _member(scope, member_id)
            child = scope.child(record.child_id, follow_merges=False)
            before = categories_of(scope, child.id)
            changes = field_changes(columns(record, FAMILY_FIELDS), {})
            scope.session.delete(record)
            scope.record_change(child.id, "family_member", record.id, "removed", {**changes, "reason": [None, reason]})
            categories = self._family_changed(scope, child, before)
            scope.commit()
            return categories

    def _family_changed(self, scope: Scope, child: ChildRecord, before: tuple[str, ...]) -> tuple[str, ...]:
        """Guardians' names are match keys, and parents' situations decide derived categories."""
        store_match_keys(scope, self._blind_index, child)
        return refresh_categories(scope, child, before)

    # -- difficulty categories ------------------------------------------------------------------------------

    def add_category(self, command: NewCategory) -> tuple[CategoryView, tuple[str, ...]]:
        """A category typed in by staff, with where it came from and its evidence. Derived ones are refused:
        they follow from the facts (family situations, age, registration), so staff record those instead."""
        checked = check_category(command, self._today())
        with self._scope(CASEWORK_ROLES) as scope:
            child = ChildInWork.load(scope, scope.child(command.child_id))
            record, categories = record_category(scope, child, checked)
            scope.commit()
            return _category_view(record, scope.today), categories

    def end_category(self, entry_id: str, valid_to: date | None, reason: str) -> tuple[CategoryView, tuple[str, ...]]:
        if valid_to is None:
            raise errors.InvalidInput("the last day the category applied is required", "valid_to")
        reason = clean_text(reason, "reason", max_chars=LONG_TEXT, required=True)
        with self._scope(CASEWORK_ROLES) as scope:
            record = scope.session.get(CategoryRecord, entry_id) if entry_id else None
            if record is None or record.tenant_id != scope.tenant:
                raise errors.NotFound("no such category entry in this town")
            if record.source == CategorySource.RULE.value:
                raise errors.Conflict("a derived category ends when its rule no longer applies: correct the facts")
            if valid_to < record.valid_from:
                raise errors.InvalidInput("ends before it starts", "valid_to")
            child = scope.child(record.child_id, follow_merges=False)
            before = categories_of(scope, child.id)
            old = columns(record, CATEGORY_FIELDS)
            record.valid_to = valid_to
            changes = field_changes(old, columns(record, CATEGORY_FIELDS))
            scope.record_change(child.id, "category", record.id, "ended", {**changes, "reason": [None, reason]})
            categories = refresh_categories(scope, child, before)
            scope.commit()
            return _category_view(record, scope.today), categories

    # -- the case: named staff and status -----------------------------------------------------------------

    def assign_case(
        self, child_id: str, staff: CaseStaff, expected_version: int | None = None
    ) -> tuple[str, CaseStaff, int]:
        names = {
            name: clean_text(getattr(staff, name), name, max_chars=SHORT_TEXT)
            for name in ("responsible_person", "social_worker", "child_director")
        }
        with self._scope(CASE_MANAGER_ROLES) as scope:
            child = scope.child(child_id)
            case = scope.case_file(child.id)
            check_version(case, expected_version, "the case file")
            old = columns(case, CASE_FIELDS)
            before = CaseStaff(case.responsible_person, case.social_worker, case.child_director)
            for name, value in names.items():
                setattr(case, name, value)
            scope.record_change(
                child.id, "case_file", case.id, "updated", field_changes(old, columns(case, CASE_FIELDS))
            )
            after = CaseStaff(case.responsible_person, case.social_worker, case.child_director)
            if after != before:  # notify tells the newly named
                scope.publish(
                    REGISTRY_CASE,
                    child.id,
                    events_pb2.CaseAssigned(
                        case_id=case.id,
                        child_id=child.id,
                        responsible_person=after.responsible_person,
                        social_worker=after.social_worker,
                        child_director=after.child_director,
                        previous_responsible_person=before.responsible_person,
                        previous_social_worker=before.social_worker,
                        previous_child_director=before.child_director,
                    ),
                )
            scope.commit()
            return case.id, after, case.version

    def change_case_status(
        self, child_id: str, status: str, reason: str, expected_version: int | None = None
    ) -> CaseStatusView:
        target = parse_code(CaseStatus, status, "status")
        reason = clean_text(reason, "reason", max_chars=LONG_TEXT)
        with self._scope(CASE_MANAGER_ROLES) as scope:
            child = scope.child(child_id)
            case = scope.case_file(child.id)
            check_version(case, expected_version, "the case file")
            current = CaseStatus(case.status)
            check_transition(current, target, _progress(scope, child.id), reason)
            old = columns(case, CASE_FIELDS)
            case.status, case.status_changed_at = target.value, scope.now
            if reason:
                case.status_reason = reason
            reschedule_visits(scope, child, case)
            scope.record_change(
                child.id, "case_file", case.id, "updated", field_changes(old, columns(case, CASE_FIELDS))
            )
            summary = f"档案状态 case status: {current.label} → {target.label}" + (f" ({reason})" if reason else "")
            scope.add_timeline(child.id, "case_status", summary, "registry", new_id())
            scope.publish(
                REGISTRY_CASE,
                child.id,
                events_pb2.CaseStatusChanged(
                    case_id=case.id,
                    child_id=child.id,
                    from_status=current.value,
                    to_status=target.value,
                    reason=reason,
                    responsible_person=case.responsible_person,
                    social_worker=case.social_worker,
                    child_director=case.child_director,
                ),
            )
            scope.commit()
            return CaseStatusView(case.id, target, case.next_visit_due, case.version)

    # -- guardianship and needs assessment -----------------------------------------------------------------

    def record_assessment(self, command: NewAssessment) -> tuple[AssessmentView, date | None]:
        kind = parse_code(AssessmentKind, command.kind, "kind")
        findings = check_findings(
            DomainFinding(f.domain, f.score, clean_text(f.finding, f"domains.{f.domain.value}", max_chars=LONG_TEXT))
            for f in command.domains
        )
        summary = clean_text(command.summary, "summary", max_chars=LONG_TEXT)
        with self._scope(CASE_MANAGER_ROLES) as scope:
            assessed_on = _past_or_today(command.assessed_on, scope.today, "assessed_on")
            child = scope.child(command.child_id)
            case = scope.case_file(child.id)
            previous = _assessments(scope, child.id)
            check_assessment_allowed(kind, CaseStatus(case.status), len(previous))
            risk = risk_level(findings)
            record = AssessmentRecord(
                id=new_id(),
                tenant_id=scope.tenant,
                child_id=child.id,
                kind=kind.value,
                assessed_on=assessed_on,
                assessor=clean_text(command.assessor, "assessor", max_chars=SHORT_TEXT) or scope.caller.display_name,
                domains=[{"domain": f.domain.value, "score": f.score, "finding": f.finding} for f in findings],
                risk_level=risk.level.value,
                risk_reasons=list(risk.reasons),
                summary=summary,
                recorded_by=scope.caller.user_id,
                recorded_at=scope.now,
            )
            scope.session.add(record)
            scope.record_change(
                child.id, "assessment", record.id, "created", field_changes({}, columns(record, ASSESSMENT_FIELDS))
            )
            # The latest assessment sets the risk level; one entered late for an earlier day does not.
            if all(p.assessed_on <= assessed_on for p in previous):
                old = columns(case, CASE_FIELDS)
                case.risk_level = risk.level.value
                scope.record_change(
                    child.id, "case_file", case.id, "updated", field_changes(old, columns(case, CASE_FIELDS))
                )
            reschedule_visits(scope, child, case)
            scope.add_timeline(
                child.id,
                "assessment",
                f"{kind.label} assessment on {assessed_on}: {risk.level.label}",
                "registry",
                record.id,
            )
            scope.commit()
            return _assessment_view(record), case.next_visit_due

    # -- assistance plan ----------------------------------------------------------------------------------

    def add_plan_goal(self, child_id: str, description: str) -> PlanGoalView:
        description = clean_text(description, "description", max_chars=LONG_TEXT, required=True)
        with self._scope(CASE_MANAGER_ROLES) as scope:
            child = scope.child(child_id)
            require_open(CaseStatus(scope.case_file(child.id).status))
            record = PlanGoalRecord(
                id=new_id(),
                tenant_id=scope.tenant,
                child_id=child.id,
                description=description,
                status=GoalStatus.OPEN.value,
                created_at=scope.now,
            )
            scope.session.add(record)
            scope.record_change(
                child.id, "plan_goal", record.id, "created", field_changes({}, columns(record, GOAL_FIELDS))
            )
            scope.commit()
            return PlanGoalView(record.id, record.child_id, record.description, GoalStatus.OPEN)

    def update_plan_goal(self, goal_id: str, description: str, status: str) -> PlanGoalView:
        new_status = parse_code(GoalStatus, status, "status") if status else None
        description = clean_text(description, "description", max_chars=LONG_TEXT)
        with self._scope(CASE_MANAGER_ROLES) as scope:
            record = _goal(scope, goal_id)
            require_open(CaseStatus(scope.case_file(record.child_id).status))
            old = columns(record, GOAL_FIELDS)
            record.description = description or record.description
            record.status = new_status.value if new_status else record.status
            scope.record_change(
                record.child_id, "plan_goal", record.id, "updated", field_changes(old, columns(record, GOAL_FIELDS))
            )
            scope.commit()
            (view,) = [g for g in plan_views(scope, record.child_id) if g.goal_id == record.id]
            return view

    def add_plan_action(self, command: NewPlanAction) -> PlanActionView:
        description = clean_text(command.description, "description", max_chars=LONG_TEXT, required=True)
        owner_kind = parse_code(OwnerKind, command.owner_kind, "owner_kind")
        owner = plans.check_owner(owner_kind, command.owner)
        referral_id = clean_text(command.referral_id, "referral_id", max_chars=64)
        with self._scope(CASE_MANAGER_ROLES) as scope:
            goal = _goal(scope, command.goal_id)
            require_open(CaseStatus(scope.case_file(goal.child_id).status))
            if goal.status != GoalStatus.OPEN.value:
                raise errors.Conflict(f"the goal is {goal.status}: add actions to an open goal")
            record = PlanActionRecord(
                id=new_id(),
                tenant_id=scope.tenant,
                child_id=goal.child_id,
                goal_id=goal.id,
                description=description,
                owner_kind=owner_kind.value,
                owner=owner,
                due_on=command.due_on,
                status=ActionStatus.PLANNED.value,
                referral_id=referral_id,
                note="",
                updated_at=scope.now,
            )
            # The referral may have moved before anyone named it here: start where its events would have led.
            known = scope.session.get(ReferralProgressRecord, (scope.tenant, referral_id)) if referral_id else None
            if known is not None:
                progress = plans.ReferralProgress(known.progress)
                record.status = plans.status_after_referral(ActionStatus.PLANNED, progress).value
                record.note = known.outcome[:LONG_TEXT]
            scope.session.add(record)
            scope.record_change(
                goal.child_id, "plan_action", record.id, "created", field_changes({}, columns(record, ACTION_FIELDS))
            )
            scope.commit()
            return _action_view(record, scope.today)

    def update_plan_action(self, change: PlanActionChange) -> PlanActionView:
        new_status = parse_code(ActionStatus, change.status, "status") if change.status else None
        note = clean_text(change.note, "note", max_chars=LONG_TEXT)
        with self._scope(CASE_MANAGER_ROLES) as scope:
            record = scope.session.get(PlanActionRecord, change.action_id) if change.action_id else None
            if record is None or record.tenant_id != scope.tenant:
                raise errors.NotFound("no such plan action in this town")
            require_open(CaseStatus(scope.case_file(record.child_id).status))
            old = columns(record, ACTION_FIELDS)
            record.status = new_status.value if new_status else record.status
            record.due_on = change.due_on or record.due_on
            record.note = note or record.note
            record.updated_at = scope.now
            scope.record_change(
                record.child_id, "plan_action", record.id, "updated", field_changes(old, columns(record, ACTION_FIELDS))
            )
            scope.commit()
            return _action_view(record, scope.today)

    def apply_referral_progress(
        self, uow: UnitOfWork, *, referral_id: str, progress: plans.ReferralProgress, outcome: str = ""
    ) -> int:
        """Move the plan actions carried out through this referral forward (called by the consumer, inside
        its unit of work, as the consumer's system principal). Returns how many actions moved."""
        scope = Scope(uow, current_principal(), today=self._today(), now=self._now())
        # Kept for plan actions that name the referral later (add_plan_action starts them where they would be).
        known = uow.session.get(ReferralProgressRecord, (scope.tenant, referral_id))
        if known is None:
            uow.session.add(
                ReferralProgressRecord(
                    tenant_id=scope.tenant,
                    referral_id=referral_id,
                    progress=progress.value,
                    outcome=outcome,
                    updated_at=scope.now,
                )
            )
        elif plans.furthest(plans.ReferralProgress(known.progress), progress) != known.progress:
            known.progress, known.outcome, known.updated_at = progress.value, outcome, scope.now
        moved = 0
        actions = uow.session.scalars(
            select(PlanActionRecord).where(
                PlanActionRecord.tenant_id == scope.tenant, PlanActionRecord.referral_id == referral_id
            )
        )
        for record in actions:
            status = plans.status_after_referral(ActionStatus(record.status), progress)
            if status.value == record.status:
                continue
            old = columns(record, ACTION_FIELDS)
            record.status = status.value
            if outcome:
                record.note = outcome[:LONG_TEXT]
            record.updated_at = scope.now
            scope.record_change(
                record.child_id, "plan_action", record.id, "updated", field_changes(old, columns(record, ACTION_FIELDS))
            )
            moved += 1
        return moved

    # -- follow-up visits ---------------------------------------------------------------------------------

    def record_visit(self, command: NewVisit) -> tuple[VisitView, date | None]:
        findings = clean_text(command.findings, "findings", max_chars=LONG_TEXT, required=True)
        with self._scope(CASEWORK_ROLES) as scope:
            visited_on = _past_or_today(command.visited_on, scope.today, "visited_on")
            child = scope.child(command.child_id)
            case = scope.case_file(child.id)
            require_open(CaseStatus(case.status))
            record = VisitRecord(
                id=new_id(),
                tenant_id=scope.tenant,
                child_id=child.id,
                visited_on=visited_on,
                visitor=clean_text(command.visitor, "visitor", max_chars=SHORT_TEXT) or scope.caller.display_name,
                findings=findings,
                recorded_by=scope.caller.user_id,
                recorded_at=scope.now,
            )
            scope.session.add(record)
            reschedule_visits(scope, child, case)
            scope.record_change(
                child.id, "visit", record.id, "created", field_changes({}, columns(record, VISIT_FIELDS))
            )
            scope.add_timeline(
                child.id, "visit", f"随访 follow-up visit on {visited_on} by {record.visitor}", "registry", record.id
            )
            scope.commit()
            return _visit_view(record), case.next_visit_due

    def raise_overdue_visits(self, tenant: str) -> int:
        """Raise VisitOverdue once for each case whose next visit is past due (one batch; returns how many).

        Safe with several replicas: rows being raised by another are skipped, then no longer match."""
        with self._database.unit_of_work(tenant) as uow:
            scope = Scope(uow, system_principal(tenant, "registry-visits"), today=self._today(), now=self._now())
            cases = list(
                uow.session.scalars(
                    select(CaseFileRecord)
                    .where(
                        CaseFileRecord.tenant_id == tenant,
                        CaseFileRecord.next_visit_due < scope.today,
                        or_(
                            CaseFileRecord.overdue_raised_for.is_(None),
                            CaseFileRecord.overdue_raised_for != CaseFileRecord.next_visit_due,
                        ),
                    )
                    .order_by(CaseFileRecord.next_visit_due, CaseFileRecord.id)
                    .limit(OVERDUE_BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            for case in cases:
                due = case.next_visit_due
                assert due is not None
                late = visits.days_overdue(due, scope.today)
                scope.publish(
                    REGISTRY_CASE,
                    case.child_id,
                    events_pb2.VisitOverdue(
                        case_id=case.id,
                        child_id=case.child_id,
                        due_on=common_pb2.Date(year=due.year, month=due.month, day=due.day),
                        days_overdue=late,
                        risk_level=case.risk_level,
                        responsible_person=case.responsible_person,
                        social_worker=case.social_worker,
                        child_director=case.child_director,
                    ),
                )
                case.overdue_raised_for = due
                scope.add_timeline(
                    case.child_id,
                    "visit_overdue",
                    f"随访逾期 follow-up visit due {due} is {late} days overdue",
                    "registry",
                    due.isoformat(),
                )
            uow.commit()
            return len(cases)

    def rederive_categories(self, tenant: str, after_child_id: str = "") -> str:
        """Derive the categories of one batch of the town's children again: ages and periods move with the
        calendar (a child turns 3 or nears 18, a parent's absence reaches 6 months) without any record
        changing. Returns the batch's last child id to continue from, "" when the town is done."""
        with self._database.unit_of_work(tenant) as uow:
            scope = Scope(uow, system_principal(tenant, "registry-rules"), today=self._today(), now=self._now())
            children = list(
                uow.session.scalars(
                    select(ChildRecord)
                    .where(
                        ChildRecord.tenant_id == tenant,
                        ChildRecord.merged_into.is_(None),
                        ChildRecord.id > after_child_id,
                    )
                    .order_by(ChildRecord.id)
                    .limit(REDERIVE_BATCH)
                )
            )
            for child in children:
                refresh_categories(scope, child, categories_of(scope, child.id))
            uow.commit()
            return children[-1].id if len(children) == REDERIVE_BATCH else ""

    # -- change history -----------------------------------------------------------------------------------

    def list_changes(
        self, child_id: str, purpose: str, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[ChangeView], str]:
        """The child's change history, oldest first, with the records merged into it (audited)."""
        purpose = require_purpose(purpose, "this change history")
        size = min(max(page_size or 100, 1), 500)
        after = int(page_token) if page_token.isdigit() else 0
        with self._scope(READER_ROLES) as scope:
            child = scope.child(child_id)
            ids = [child.id, *scope.merged_ids(child.id)]
            rows = list(
                scope.session.scalars(
                    select(ChangeRecord)
                    .where(
                        ChangeRecord.tenant_id == scope.tenant, ChangeRecord.child_id.in_(ids), ChangeRecord.id > after
                    )
                    .order_by(ChangeRecord.id)
                    .limit(size + 1)
                )
            )
            more = len(rows) > size
            rows = rows[:size]
            scope.audit("read_change_history", "case_file", scope.case_file(child.id).id, purpose)
            scope.commit()
            views = [
                ChangeView(r.at, r.actor, r.role, r.entity_type, r.entity_id, r.action, dict(r.changes)) for r in rows
            ]
            return views, (str(rows[-1].id) if more else "")


# --- the in-transaction work of AddFamilyMember and AddCategory (also the survey's, see survey_import.py) -----------


def record_family_member(
    scope: Scope, child: ChildInWork, facts: FamilyMember
) -> tuple[FamilyMemberRecord, tuple[str, ...]]:
    """AddFamilyMember's work inside the caller's transaction: the member, its change history, and the
    categories derived again (parents' situations decide some) and announced. The caller has checked the
    facts (`check_member`) and stores the child's match keys once its family is all in."""
    before = child.categories()
    record = FamilyMemberRecord(id=new_id(), tenant_id=scope.tenant, child_id=child.child_id, created_at=scope.now)
    write_member_facts(record, facts)
    child.add_member(record)
    scope.record_change(
        child.child_id, "family_member", record.id, "created", field_changes({}, columns(record, FAMILY_FIELDS))
    )
    return record, child.refresh_categories(before)


@dataclass(frozen=True)
class CheckedCategory:
    """A typed-in category as AddCategory accepts it (`check_category`)."""

    category: DifficultyCategory
    source: CategorySource
    evidence: str
    evidence_document: str
    valid_from: date
    valid_to: date | None


def check_category(command: NewCategory, today: date) -> CheckedCategory:
    """AddCategory's checks of the command itself: a category typed in (not a derived one) from a typed-in
    source, with its evidence, over a period (from `today` unless given) that does not end before it starts."""
    category = parse_code(DifficultyCategory, command.category, "category")
    if category.is_derived:
        raise errors.InvalidInput(
            "is derived by rules from the child's and family's facts and cannot be typed in", "category"
        )
    source = parse_code(CategorySource, command.source, "source")
    if not source.typed_in:
        raise errors.InvalidInput("'rule' is the source of derived categories only", "source")
    evidence = clean_text(command.evidence, "evidence", max_chars=LONG_TEXT)
    document = clean_text(command.evidence_document, "evidence_document", max_chars=200)
    if not evidence and not document:
        raise errors.InvalidInput("a category is recorded with its evidence (text or document)", "evidence")
    valid_from = command.valid_from or today
    if command.valid_to is not None and command.valid_to < valid_from:
        raise errors.InvalidInput("ends before it starts", "valid_to")
    return CheckedCategory(category, source, evidence, document, valid_from, command.valid_to)


def record_category(
    scope: Scope, child: ChildInWork, checked: CheckedCategory
) -> tuple[CategoryRecord, tuple[str, ...]]:
    """AddCategory's work inside the caller's transaction: the category's row (refused when the child has it
    over an overlapping period), its change history, and the categories derived again and announced."""
    if child.overlapping(checked.category.value, checked.valid_from, checked.valid_to):
        raise errors.Conflict("this category is already recorded for the child over an overlapping period")
    before = child.categories()
    record = CategoryRecord(
        id=new_id(),
        tenant_id=scope.tenant,
        child_id=child.child_id,
        category=checked.category.value,
        source=checked.source.value,
        evidence=checked.evidence,
        evidence_document=checked.evidence_document,
        valid_from=checked.valid_from,
        valid_to=checked.valid_to,
        rule_code="",
        reason="",
        recorded_by=scope.caller.user_id,
        recorded_at=scope.now,
    )
    child.add_category(record)
    scope.record_change(
        child.child_id, "category", record.id, "created", field_changes({}, columns(record, CATEGORY_FIELDS))
    )
    return record, child.refresh_categories(before)


# --- reading the case file's parts (used by RegistryService.get_case_file, which audits the read) -----------


def family_views(scope: Scope, child_id: str) -> list[FamilyMemberView]:
    return [_family_view(record) for record in scope.family(child_id)]


def category_views(scope: Scope, child_id: str) -> list[CategoryView]:
    rows = scope.session.scalars(
        select(CategoryRecord)
        .where(CategoryRecord.tenant_id == scope.tenant, CategoryRecord.child_id == child_id)
        .order_by(CategoryRecord.valid_from, CategoryRecord.recorded_at, CategoryRecord.id)
    )
    return [_category_view(row, scope.today) for row in rows]


def assessment_views(scope: Scope, child_id: str) -> list[AssessmentView]:
    return [_assessment_view(row) for row in _assessments(scope, child_id)]


def plan_views(scope: Scope, child_id: str) -> list[PlanGoalView]:
    goals = scope.session.scalars(
        select(PlanGoalRecord)
        .where(PlanGoalRecord.tenant_id == scope.tenant, PlanGoalRecord.child_id == child_id)
        .order_by(PlanGoalRecord.created_at, PlanGoalRecord.id)
    ).all()
    actions: dict[str, list[PlanActionView]] = {}
    for row in scope.session.scalars(
        select(PlanActionRecord)
        .where(PlanActionRecord.tenant_id == scope.tenant, PlanActionRecord.child_id == child_id)
        .order_by(PlanActionRecord.due_on, PlanActionRecord.id)
    ):
        actions.setdefault(row.goal_id, []).append(_action_view(row, scope.today))
    return [
        PlanGoalView(g.id, g.child_id, g.description, GoalStatus(g.status), tuple(actions.get(g.id, ()))) for g in goals
    ]


def visit_views(scope: Scope, child_id: str) -> list[VisitView]:
    rows = scope.session.scalars(
        select(VisitRecord)
        .where(VisitRecord.tenant_id == scope.tenant, VisitRecord.child_id == child_id)
        .order_by(VisitRecord.visited_on.desc(), VisitRecord.id)
    )
    return [_visit_view(row) for row in rows]


# --- helpers ----------------------------------------------------------------------------------------------


def _member(scope: Scope, member_id: str) -> FamilyMemberRecord:
    record = scope.session.get(FamilyMemberRecord, member_id) if member_id else None
    if record is None or record.tenant_id != scope.tenant:
        raise errors.NotFound("no such family member in this town")
    return record


def _goal(scope: Scope, goal_id: str) -> PlanGoalRecord:
    record = scope.session.get(PlanGoalRecord, goal_id) if goal_id else None
    if record is None or record.tenant_id != scope.tenant:
        raise errors.NotFound("no such plan goal in this town")
    return record


def _assessments(scope: Scope, child_id: str) -> list[AssessmentRecord]:
    return list(
        scope.session.scalars(
            select(AssessmentRecord)
            .where(AssessmentRecord.tenant_id == scope.tenant, AssessmentRecord.child_id == child_id)
            .order_by(AssessmentRecord.assessed_on, AssessmentRecord.recorded_at)
        )
    )


def _progress(scope: Scope, child_id: str) -> CaseProgress:
    assessed = scope.session.scalar(
        select(func.count()).where(AssessmentRecord.tenant_id == scope.tenant, AssessmentRecord.child_id == child_id)
    )
    open_actions = scope.session.scalar(
        select(func.count()).where(
            PlanActionRecord.tenant_id == scope.tenant,
            PlanActionRecord.child_id == child_id,
            PlanActionRecord.status.not_in([s.value for s in ActionStatus if s.is_finished]),
        )
    )
    return CaseProgress(assessed=bool(assessed), open_plan_actions=int(open_actions or 0))


def _past_or_today(day: date | None, today: date, field: str) -> date:
    if day is None:
        return today
    if day > today:
        raise errors.InvalidInput("is in the future", field)
    if day < today - timedelta(days=366 * 5):
        raise errors.InvalidInput("is more than five years ago", field)
    return day


def _family_view(record: FamilyMemberRecord) -> FamilyMemberView:
    return FamilyMemberView(record.id, record.child_id, member_facts(record))


def _category_view(record: CategoryRecord, today: date) -> CategoryView:
    return CategoryView(
        entry_id=record.id,
        child_id=record.child_id,
        category=DifficultyCategory(record.category),
        source=CategorySource(record.source),
        evidence=record.evidence,
        evidence_document=record.evidence_document,
        valid_from=record.valid_from,
        valid_to=record.valid_to,
        rule_code=record.rule_code,
        reason=record.reason,
        recorded_by=record.recorded_by,
        recorded_at=record.recorded_at,
        current=record.valid_from <= today and (record.valid_to is None or record.valid_to >= today),
    )


def _assessment_view(record: AssessmentRecord) -> AssessmentView:
    return AssessmentView(
        assessment_id=record.id,
        child_id=record.child_id,
        kind=AssessmentKind(record.kind),
        assessed_on=record.assessed_on,
        assessor=record.assessor,
        domains=tuple(
            DomainFinding(AssessmentDomain(str(d["domain"])), int(str(d["score"])), str(d["finding"]))
            for d in record.domains
        ),
        risk_level=RiskLevel(record.risk_level),
        risk_reasons=tuple(record.risk_reasons),
        summary=record.summary,
        recorded_by=record.recorded_by,
        recorded_at=record.recorded_at,
    )


def _action_view(record: PlanActionRecord, today: date) -> PlanActionView:
    status = ActionStatus(record.status)
    return PlanActionView(
        action_id=record.id,
        goal_id=record.goal_id,
        description=record.description,
        owner_kind=OwnerKind(record.owner_kind),
        owner=record.owner,
        due_on=record.due_on,
        status=status,
        referral_id=record.referral_id,
        note=record.note,
        overdue=plans.is_overdue(record.due_on, status, today),
        updated_at=record.updated_at,
    )


def _visit_view(record: VisitRecord) -> VisitView:
    return VisitView(
        record.id,
        record.child_id,
        record.visited_on,
        record.visitor,
        record.findings,
        record.recorded_by,
        record.recorded_at,
    )
