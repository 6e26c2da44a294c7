"""The assistance plan (帮扶计划): goals, and actions towards them with an owner, a due date and a status.

An action may follow a referral to a member unit; the referral service's events then move it forward
(accepted → in progress, completed → done). Events only ever move an action forward, and never reopen an
action that staff cancelled, so late or repeated events cannot undo what a person decided.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from services.registry.domain.codes import ActionStatus, GoalStatus, OwnerKind
from services.registry.domain.errors import Conflict, InvalidInput

# Agency codes as the referral service and agency tokens spell them (e.g. "civil_affairs", "education").
_AGENCY_CODE = re.compile(r"[a-z][a-z0-9_]{1,39}")


class ReferralProgress(StrEnum):
    """What the referral service told us about a referral."""

    ACCEPTED = "accepted"
    COMPLETED = "completed"


_ORDER = (ActionStatus.PLANNED, ActionStatus.IN_PROGRESS, ActionStatus.DONE)
_STATUS_FOR_PROGRESS = {
    ReferralProgress.ACCEPTED: ActionStatus.IN_PROGRESS,
    ReferralProgress.COMPLETED: ActionStatus.DONE,
}


def status_after_referral(current: ActionStatus, progress: ReferralProgress) -> ActionStatus:
    """The action's status once the referral has made `progress`: forward only, cancelled stays cancelled."""
    if current is ActionStatus.CANCELLED:
        return current
    wanted = _STATUS_FOR_PROGRESS[progress]
    return wanted if _ORDER.index(wanted) > _ORDER.index(current) else current


def furthest(known: ReferralProgress, told: ReferralProgress) -> ReferralProgress:
    """What is known of a referral after being told `told`: a late 'accepted' never undoes 'completed'."""
    return max(known, told, key=list(ReferralProgress).index)


def check_owner(kind: OwnerKind, owner: str) -> str:
    """The owner, trimmed; an agency is named by its code, a person by name."""
    owner = owner.strip()
    if not owner:
        raise InvalidInput("owner", "every action has an owner (a person or an agency)")
    if kind is OwnerKind.AGENCY and not _AGENCY_CODE.fullmatch(owner):
        raise InvalidInput("owner", "an agency is given by its code, e.g. civil_affairs or education")
    if len(owner) > 100:
        raise InvalidInput("owner", "must be at most 100 characters")
    return owner


def is_overdue(due_on: date | None, status: ActionStatus, today: date) -> bool:
    return due_on is not None and not status.is_finished and due_on < today


@dataclass
class PlanGoal:
    goal_id: str
    child_id: str
    description: str
    status: GoalStatus
    created_at: datetime

    @property
    def history_key(self) -> tuple[str, str, str]:
        return self.child_id, "plan_goal", self.goal_id

    def history_values(self) -> dict[str, object]:
        return {"description": self.description, "status": self.status.value}

    def revise(self, description: str, status: GoalStatus | None) -> None:
        """New wording and/or status; what is not given stays."""
        self.description = description or self.description
        self.status = status or self.status

    def require_open(self) -> None:
        if self.status is not GoalStatus.OPEN:
            raise Conflict(f"the goal is {self.status.value}: add actions to an open goal")


@dataclass
class PlanAction:
    action_id: str
    child_id: str
    goal_id: str
    description: str
    owner_kind: OwnerKind
    owner: str
    due_on: date | None
    status: ActionStatus
    referral_id: str
    note: str
    updated_at: datetime

    @property
    def history_key(self) -> tuple[str, str, str]:
        return self.child_id, "plan_action", self.action_id

    def history_values(self) -> dict[str, object]:
        return {
            "description": self.description,
            "owner_kind": self.owner_kind.value,
            "owner": self.owner,
            "due_on": self.due_on,
            "status": self.status.value,
            "referral_id": self.referral_id,
            "note": self.note,
        }

    def update(self, status: ActionStatus | None, due_on: date | None, note: str, at: datetime) -> None:
        """Staff's change; what is not given stays."""
        self.status = status or self.status
        self.due_on = due_on or self.due_on
        self.note = note or self.note
        self.updated_at = at

    def follow_referral(self, progress: ReferralProgress, outcome: str, at: datetime) -> bool:
        """Move forward with the referral it is carried out through; False when that changes nothing."""
        status = status_after_referral(self.status, progress)
        if status is self.status:
            return False
        self.status = status
        if outcome:
            self.note = outcome
        self.updated_at = at
        return True


@dataclass(frozen=True)
class KnownReferral:
    """How far a referral has come as far as the registry was told, kept for actions that name it later."""

    referral_id: str
    progress: ReferralProgress
    outcome: str
    updated_at: datetime

    def told(self, progress: ReferralProgress, outcome: str, at: datetime) -> KnownReferral | None:
        """What is known after being told `progress`; None when that moves nothing (a late 'accepted')."""
        if furthest(self.progress, progress) == self.progress:
            return None
        return KnownReferral(self.referral_id, progress, outcome, at)
