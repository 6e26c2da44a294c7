"""The assistance plan: goals and actions (AddPlanGoal, UpdatePlanGoal, AddPlanAction, UpdatePlanAction),
and actions carried out through referrals moved on by the referral's events.
"""

from __future__ import annotations

from datetime import date

from platform_runtime import errors
from platform_runtime.db import new_id
from platform_runtime.tenancy import current_principal
from platform_runtime.unit_of_work import AbstractUnitOfWork
from services.registry.domain import plans
from services.registry.domain.casefile import require_open
from services.registry.domain.codes import ActionStatus, GoalStatus, OwnerKind, parse_code
from services.registry.domain.plans import KnownReferral, PlanAction, PlanGoal
from services.registry.service_layer.access import CASE_MANAGER_ROLES
from services.registry.service_layer.commands import NewPlanAction, PlanActionChange
from services.registry.service_layer.inputs import LONG_TEXT, clean_text
from services.registry.service_layer.ports import RegistryUnitOfWork
from services.registry.service_layer.use_cases import CaseworkUseCases
from services.registry.service_layer.views import PlanActionView, PlanGoalView


class PlanUseCases(CaseworkUseCases):
    def add_plan_goal(self, child_id: str, description: str) -> PlanGoalView:
        description = clean_text(description, "description", max_chars=LONG_TEXT, required=True)
        with self._work(CASE_MANAGER_ROLES) as uow:
            child_id = uow.children.current_id(child_id)
            require_open(uow.case_files.for_child(child_id).status)
            goal = PlanGoal(new_id(), child_id, description, GoalStatus.OPEN, uow.now)
            uow.plans.add_goal(goal)
            uow.commit()
            return PlanGoalView(goal.goal_id, goal.child_id, goal.description, goal.status)

    def update_plan_goal(self, goal_id: str, description: str, status: str) -> PlanGoalView:
        new_status = parse_code(GoalStatus, status, "status") if status else None
        description = clean_text(description, "description", max_chars=LONG_TEXT)
        with self._work(CASE_MANAGER_ROLES) as uow:
            goal = _goal(uow, goal_id)
            require_open(uow.case_files.for_child(goal.child_id).status)
            goal.revise(description, new_status)
            uow.plans.save(goal)
            uow.commit()
            (view,) = [g for g in plan_views(uow, goal.child_id) if g.goal_id == goal.goal_id]
            return view

    def add_plan_action(self, command: NewPlanAction) -> PlanActionView:
        description = clean_text(command.description, "description", max_chars=LONG_TEXT, required=True)
        owner_kind = parse_code(OwnerKind, command.owner_kind, "owner_kind")
        owner = plans.check_owner(owner_kind, command.owner)
        referral_id = clean_text(command.referral_id, "referral_id", max_chars=64)
        with self._work(CASE_MANAGER_ROLES) as uow:
            goal = _goal(uow, command.goal_id)
            require_open(uow.case_files.for_child(goal.child_id).status)
            goal.require_open()
            action = PlanAction(
                action_id=new_id(),
                child_id=goal.child_id,
                goal_id=goal.goal_id,
                description=description,
                owner_kind=owner_kind,
                owner=owner,
                due_on=command.due_on,
                status=ActionStatus.PLANNED,
                referral_id=referral_id,
                note="",
                updated_at=uow.now,
            )
            # The referral may have moved before anyone named it here: start where its events would have led.
            known = uow.plans.referral(referral_id) if referral_id else None
            if known is not None:
                action.status = plans.status_after_referral(ActionStatus.PLANNED, known.progress)
                action.note = known.outcome[:LONG_TEXT]
            uow.plans.add_action(action)
            uow.commit()
            return action_view(action, uow.today)

    def update_plan_action(self, change: PlanActionChange) -> PlanActionView:
        new_status = parse_code(ActionStatus, change.status, "status") if change.status else None
        note = clean_text(change.note, "note", max_chars=LONG_TEXT)
        with self._work(CASE_MANAGER_ROLES) as uow:
            action = uow.plans.action(change.action_id)
            if action is None:
                raise errors.NotFound("no such plan action in this town")
            require_open(uow.case_files.for_child(action.child_id).status)
            action.update(new_status, change.due_on, note, uow.now)
            uow.plans.save(action)
            uow.commit()
            return action_view(action, uow.today)

    def apply_referral_progress(
        self, within: AbstractUnitOfWork, *, referral_id: str, progress: plans.ReferralProgress, outcome: str = ""
    ) -> int:
        """Move the plan actions carried out through this referral forward (called by the consumer, inside
        its unit of work, as the consumer's system principal). Returns how many actions moved."""
        uow = self._store.within(within)
        uow.act_as(current_principal(), today=self._today(), now=self._now())
        # Kept for plan actions that name the referral later (add_plan_action starts them where they would be).
        known = uow.plans.referral(referral_id)
        told = (
            KnownReferral(referral_id, progress, outcome, uow.now)
            if known is None
            else known.told(progress, outcome, uow.now)
        )
        if told is not None:
            uow.plans.keep_referral(told)
        moved = 0
        for action in uow.plans.actions_for_referral(referral_id):
            if action.follow_referral(progress, outcome[:LONG_TEXT], uow.now):
                uow.plans.save(action)
                moved += 1
        return moved


def plan_views(uow: RegistryUnitOfWork, child_id: str) -> list[PlanGoalView]:
    actions: dict[str, list[PlanActionView]] = {}
    for action in uow.plans.actions_of(child_id):
        actions.setdefault(action.goal_id, []).append(action_view(action, uow.today))
    return [
        PlanGoalView(g.goal_id, g.child_id, g.description, g.status, tuple(actions.get(g.goal_id, ())))
        for g in uow.plans.goals_of(child_id)
    ]


def _goal(uow: RegistryUnitOfWork, goal_id: str) -> PlanGoal:
    goal = uow.plans.goal(goal_id)
    if goal is None:
        raise errors.NotFound("no such plan goal in this town")
    return goal


def action_view(action: PlanAction, today: date) -> PlanActionView:
    return PlanActionView(
        action_id=action.action_id,
        goal_id=action.goal_id,
        description=action.description,
        owner_kind=action.owner_kind,
        owner=action.owner,
        due_on=action.due_on,
        status=action.status,
        referral_id=action.referral_id,
        note=action.note,
        overdue=plans.is_overdue(action.due_on, action.status, today),
        updated_at=action.updated_at,
    )
