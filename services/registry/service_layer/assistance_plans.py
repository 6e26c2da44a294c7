"""The assistance plan: goals and actions (AddPlanGoal, UpdatePlanGoal, AddPlanAction, UpdatePlanAction),
and actions carried out through referrals moved on by the referral's events.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.db import UnitOfWork, new_id
from platform_runtime.tenancy import current_principal
from services.registry.adapters.orm import PlanActionRecord, PlanGoalRecord, ReferralProgressRecord
from services.registry.domain import plans
from services.registry.domain.casefile import require_open
from services.registry.domain.codes import ActionStatus, CaseStatus, GoalStatus, OwnerKind, parse_code
from services.registry.service_layer.history import columns, field_changes
from services.registry.service_layer.scope import CASE_MANAGER_ROLES, LONG_TEXT, CaseworkUseCases, Scope, clean_text
from services.registry.service_layer.views import NewPlanAction, PlanActionChange, PlanActionView, PlanGoalView

GOAL_FIELDS = ("description", "status")


ACTION_FIELDS = ("description", "owner_kind", "owner", "due_on", "status", "referral_id", "note")


class PlanUseCases(CaseworkUseCases):
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


def _goal(scope: Scope, goal_id: str) -> PlanGoalRecord:
    record = scope.session.get(PlanGoalRecord, goal_id) if goal_id else None
    if record is None or record.tenant_id != scope.tenant:
        raise errors.NotFound("no such plan goal in this town")
    return record


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
