"""The registry's repositories on SQLAlchemy: ORM rows in, domain objects out (service_layer/ports.py).

A repository holds the rows it read for its unit of work (the session's identity map holds them only weakly,
and a row read again would carry another transaction's version, so a lost update would pass the version
check; ADR 0012). Every object it hands out is `seen` by the unit of work's change tracker, and every save
or add goes through it, so the change history is kept in one place.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from platform_runtime import errors
from platform_runtime.auth import Principal
from services.registry.adapters.orm import (
    AssessmentRecord,
    CaseFileRecord,
    ChildRecord,
    PlanActionRecord,
    PlanGoalRecord,
    ReferralProgressRecord,
    VillageRecord,
    VisitRecord,
)
from services.registry.domain.assessment import Assessment, DomainFinding, RiskResult
from services.registry.domain.casefile import STAFF_FIELDS, CaseFile, CaseProgress, CaseStaff
from services.registry.domain.codes import (
    ActionStatus,
    AssessmentDomain,
    AssessmentKind,
    CaseStatus,
    GoalStatus,
    OwnerKind,
    RiskLevel,
)
from services.registry.domain.plans import KnownReferral, PlanAction, PlanGoal, ReferralProgress
from services.registry.domain.visits import Visit
from services.registry.service_layer.ports import ChangeEntry, ChangeTracker

MAX_MERGE_CHAIN = 50  # merges of merges; far beyond any real chain, it only stops a corrupt loop


def child_record(session: Session, tenant: str, child_id: str, *, follow_merges: bool = True) -> ChildRecord:
    """The child, or the record it was merged into (events and links keep old ids working)."""
    record = session.get(ChildRecord, child_id) if child_id else None
    # Another tenant's child is reported as absent, not forbidden: its existence is not disclosed.
    if record is None or record.tenant_id != tenant:
        raise errors.NotFound("no such child in this town")
    for _ in range(MAX_MERGE_CHAIN):
        if not follow_merges or record.merged_into is None:
            return record
        survivor = session.get(ChildRecord, record.merged_into)
        if survivor is None:
            raise errors.NotFound("no such child in this town")
        record = survivor
    raise errors.Conflict("the merge chain of this record is too long; ask an administrator")


def change_row(tenant: str, entry: ChangeEntry) -> dict[str, object]:
    """One entry of the change history as its table holds it (every writer of the history goes through here)."""
    return {
        "tenant_id": tenant,
        "child_id": entry.child_id,
        "at": entry.at,
        "actor": entry.actor,
        "role": entry.role,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "action": entry.action,
        "changes": entry.changes,
    }


def audit_row(
    tenant: str, caller: Principal, at: datetime, action: str, subject_type: str, subject_id: str, purpose: str
) -> dict[str, object]:
    """One entry of the audit trail as its table holds it (every writer goes through here)."""
    return {
        "tenant_id": tenant,
        "at": at,
        "actor": caller.user_id,
        "role": caller.role.value,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "purpose": purpose,
    }


def timeline_row(
    tenant: str, child_id: str, kind: str, summary: str, source: str, reference_id: str, at: datetime
) -> dict[str, object]:
    """One entry of a child's case-file timeline as its table holds it (every writer goes through here)."""
    return {
        "tenant_id": tenant,
        "child_id": child_id,
        "at": at,
        "kind": kind,
        "summary": summary,
        "source_service": source,
        "reference_id": reference_id,
    }


class SqlVillageDirectory:
    def __init__(self, session: Session, tenant: str) -> None:
        self._session, self._tenant = session, tenant

    def current_codes(self) -> frozenset[str] | None:
        rows = self._session.execute(
            select(VillageRecord.code, VillageRecord.retired).where(VillageRecord.tenant_id == self._tenant)
        )
        listed = list(rows)
        if not listed:
            return None
        return frozenset(code for code, retired in listed if not retired)


def case_file(row: CaseFileRecord) -> CaseFile:
    return CaseFile(
        case_id=row.id,
        child_id=row.child_id,
        status=CaseStatus(row.status),
        opened_at=row.opened_at,
        staff=CaseStaff(**{name: getattr(row, name) for name in STAFF_FIELDS}),
        status_reason=row.status_reason,
        status_changed_at=row.status_changed_at,
        risk_level=RiskLevel(row.risk_level) if row.risk_level else None,
        next_visit_due=row.next_visit_due,
        overdue_raised_for=row.overdue_raised_for,
        version=row.version,
    )


def write_columns(row: object, values: dict[str, object]) -> bool:
    """Only what differs, so an unchanged object issues no UPDATE (and keeps its version). True: some did."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


class SqlCaseFileRepository:
    def __init__(self, session: Session, tenant: str, changes: ChangeTracker) -> None:
        self._session, self._tenant, self._changes = session, tenant, changes
        self._rows: dict[str, tuple[CaseFileRecord, CaseFile]] = {}

    def _hand_out(self, row: CaseFileRecord) -> CaseFile:
        held = self._rows.get(row.id)
        if held is None:
            held = self._rows[row.id] = (row, self._changes.seen(case_file(row)))
        return held[1]

    def for_child(self, child_id: str) -> CaseFile:
        row = self._session.scalars(
            select(CaseFileRecord).where(CaseFileRecord.tenant_id == self._tenant, CaseFileRecord.child_id == child_id)
        ).one()
        return self._hand_out(row)

    def save(self, case: CaseFile) -> None:
        row, _ = self._rows[case.case_id]
        write_columns(
            row,
            {
                "status": case.status.value,
                "status_reason": case.status_reason,
                "status_changed_at": case.status_changed_at,
                **{name: getattr(case.staff, name) for name in STAFF_FIELDS},
                "risk_level": case.risk_level.value if case.risk_level else "",
                "next_visit_due": case.next_visit_due,
                "overdue_raised_for": case.overdue_raised_for,
            },
        )
        self._changes.saved(case)

    def progress(self, child_id: str) -> CaseProgress:
        assessed = self._session.scalar(
            select(func.count()).where(
                AssessmentRecord.tenant_id == self._tenant, AssessmentRecord.child_id == child_id
            )
        )
        open_actions = self._session.scalar(
            select(func.count()).where(
                PlanActionRecord.tenant_id == self._tenant,
                PlanActionRecord.child_id == child_id,
                PlanActionRecord.status.not_in([s.value for s in ActionStatus if s.is_finished]),
            )
        )
        return CaseProgress(assessed=bool(assessed), open_plan_actions=int(open_actions or 0))

    def last_contact(self, child_id: str) -> date | None:
        last_visit = self._session.scalar(
            select(func.max(VisitRecord.visited_on)).where(
                VisitRecord.tenant_id == self._tenant, VisitRecord.child_id == child_id
            )
        )
        last_assessment = self._session.scalar(
            select(func.max(AssessmentRecord.assessed_on)).where(
                AssessmentRecord.tenant_id == self._tenant, AssessmentRecord.child_id == child_id
            )
        )
        contacts = [day for day in (last_visit, last_assessment) if day is not None]
        return max(contacts) if contacts else None

    def visits_overdue(self, today: date, limit: int) -> list[CaseFile]:
        rows = self._session.scalars(
            select(CaseFileRecord)
            .where(
                CaseFileRecord.tenant_id == self._tenant,
                CaseFileRecord.next_visit_due < today,
                or_(
                    CaseFileRecord.overdue_raised_for.is_(None),
                    CaseFileRecord.overdue_raised_for != CaseFileRecord.next_visit_due,
                ),
            )
            .order_by(CaseFileRecord.next_visit_due, CaseFileRecord.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [self._hand_out(row) for row in rows]

    def committed(self) -> None:
        """After the commit: each case file carries the version now stored."""
        for row, case in self._rows.values():
            case.version = row.version


def assessment(row: AssessmentRecord) -> Assessment:
    return Assessment(
        assessment_id=row.id,
        child_id=row.child_id,
        kind=AssessmentKind(row.kind),
        assessed_on=row.assessed_on,
        assessor=row.assessor,
        findings=tuple(
            DomainFinding(AssessmentDomain(str(d["domain"])), int(str(d["score"])), str(d["finding"]))
            for d in row.domains
        ),
        risk=RiskResult(RiskLevel(row.risk_level), tuple(row.risk_reasons)),
        summary=row.summary,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
    )


class SqlAssessmentRepository:
    def __init__(self, session: Session, tenant: str, changes: ChangeTracker) -> None:
        self._session, self._tenant, self._changes = session, tenant, changes

    def of_child(self, child_id: str) -> list[Assessment]:
        rows = self._session.scalars(
            select(AssessmentRecord)
            .where(AssessmentRecord.tenant_id == self._tenant, AssessmentRecord.child_id == child_id)
            .order_by(AssessmentRecord.assessed_on, AssessmentRecord.recorded_at)
        )
        return [assessment(row) for row in rows]

    def add(self, item: Assessment) -> None:
        values = item.history_values()
        self._session.add(
            AssessmentRecord(
                id=item.assessment_id,
                tenant_id=self._tenant,
                child_id=item.child_id,
                kind=item.kind.value,
                assessed_on=item.assessed_on,
                assessor=item.assessor,
                domains=values["domains"],
                risk_level=item.risk.level.value,
                risk_reasons=list(item.risk.reasons),
                summary=item.summary,
                recorded_by=item.recorded_by,
                recorded_at=item.recorded_at,
            )
        )
        self._changes.created(item)


class SqlVisitRepository:
    def __init__(self, session: Session, tenant: str, changes: ChangeTracker) -> None:
        self._session, self._tenant, self._changes = session, tenant, changes

    def of_child(self, child_id: str) -> list[Visit]:
        rows = self._session.scalars(
            select(VisitRecord)
            .where(VisitRecord.tenant_id == self._tenant, VisitRecord.child_id == child_id)
            .order_by(VisitRecord.visited_on.desc(), VisitRecord.id)
        )
        return [
            Visit(row.id, row.child_id, row.visited_on, row.visitor, row.findings, row.recorded_by, row.recorded_at)
            for row in rows
        ]

    def add(self, visit: Visit) -> None:
        self._session.add(
            VisitRecord(
                id=visit.visit_id,
                tenant_id=self._tenant,
                child_id=visit.child_id,
                visited_on=visit.visited_on,
                visitor=visit.visitor,
                findings=visit.findings,
                recorded_by=visit.recorded_by,
                recorded_at=visit.recorded_at,
            )
        )
        self._changes.created(visit)


def _goal_values(goal: PlanGoal) -> dict[str, object]:
    return {"description": goal.description, "status": goal.status.value}


def _action_values(action: PlanAction) -> dict[str, object]:
    return {
        "description": action.description,
        "owner_kind": action.owner_kind.value,
        "owner": action.owner,
        "due_on": action.due_on,
        "status": action.status.value,
        "referral_id": action.referral_id,
        "note": action.note,
        "updated_at": action.updated_at,
    }


class SqlPlanRepository:
    def __init__(self, session: Session, tenant: str, changes: ChangeTracker) -> None:
        self._session, self._tenant, self._changes = session, tenant, changes
        self._goals: dict[str, PlanGoalRecord] = {}
        self._actions: dict[str, PlanActionRecord] = {}

    def _goal(self, row: PlanGoalRecord) -> PlanGoal:
        self._goals[row.id] = row
        goal = PlanGoal(row.id, row.child_id, row.description, GoalStatus(row.status), row.created_at)
        return self._changes.seen(goal)

    def _action(self, row: PlanActionRecord) -> PlanAction:
        self._actions[row.id] = row
        action = PlanAction(
            action_id=row.id,
            child_id=row.child_id,
            goal_id=row.goal_id,
            description=row.description,
            owner_kind=OwnerKind(row.owner_kind),
            owner=row.owner,
            due_on=row.due_on,
            status=ActionStatus(row.status),
            referral_id=row.referral_id,
            note=row.note,
            updated_at=row.updated_at,
        )
        return self._changes.seen(action)

    def goal(self, goal_id: str) -> PlanGoal | None:
        row = self._session.get(PlanGoalRecord, goal_id) if goal_id else None
        return None if row is None or row.tenant_id != self._tenant else self._goal(row)

    def goals_of(self, child_id: str) -> list[PlanGoal]:
        rows = self._session.scalars(
            select(PlanGoalRecord)
            .where(PlanGoalRecord.tenant_id == self._tenant, PlanGoalRecord.child_id == child_id)
            .order_by(PlanGoalRecord.created_at, PlanGoalRecord.id)
        )
        return [self._goal(row) for row in rows]

    def add_goal(self, goal: PlanGoal) -> None:
        row = PlanGoalRecord(
            id=goal.goal_id,
            tenant_id=self._tenant,
            child_id=goal.child_id,
            created_at=goal.created_at,
            **_goal_values(goal),
        )
        self._session.add(row)
        self._goals[row.id] = row
        self._changes.created(goal)

    def action(self, action_id: str) -> PlanAction | None:
        row = self._session.get(PlanActionRecord, action_id) if action_id else None
        return None if row is None or row.tenant_id != self._tenant else self._action(row)

    def actions_of(self, child_id: str) -> list[PlanAction]:
        rows = self._session.scalars(
            select(PlanActionRecord)
            .where(PlanActionRecord.tenant_id == self._tenant, PlanActionRecord.child_id == child_id)
            .order_by(PlanActionRecord.due_on, PlanActionRecord.id)
        )
        return [self._action(row) for row in rows]

    def actions_for_referral(self, referral_id: str) -> list[PlanAction]:
        rows = self._session.scalars(
            select(PlanActionRecord).where(
                PlanActionRecord.tenant_id == self._tenant, PlanActionRecord.referral_id == referral_id
            )
        )
        return [self._action(row) for row in rows]

    def add_action(self, action: PlanAction) -> None:
        row = PlanActionRecord(
            id=action.action_id,
            tenant_id=self._tenant,
            child_id=action.child_id,
            goal_id=action.goal_id,
            **_action_values(action),
        )
        self._session.add(row)
        self._actions[row.id] = row
        self._changes.created(action)

    def save(self, item: PlanGoal | PlanAction) -> None:
        if isinstance(item, PlanGoal):
            write_columns(self._goals[item.goal_id], _goal_values(item))
        else:
            write_columns(self._actions[item.action_id], _action_values(item))
        self._changes.saved(item)

    def referral(self, referral_id: str) -> KnownReferral | None:
        row = self._session.get(ReferralProgressRecord, (self._tenant, referral_id))
        if row is None:
            return None
        return KnownReferral(row.referral_id, ReferralProgress(row.progress), row.outcome, row.updated_at)

    def keep_referral(self, known: KnownReferral) -> None:
        row = self._session.get(ReferralProgressRecord, (self._tenant, known.referral_id))
        if row is None:
            self._session.add(
                ReferralProgressRecord(
                    tenant_id=self._tenant,
                    referral_id=known.referral_id,
                    progress=known.progress.value,
                    outcome=known.outcome,
                    updated_at=known.updated_at,
                )
            )
        else:
            row.progress, row.outcome, row.updated_at = known.progress.value, known.outcome, known.updated_at
