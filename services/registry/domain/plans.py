"""The assistance plan (帮扶计划): goals, and actions towards them with an owner, a due date and a status.

An action may follow a referral to a member unit; the referral service's events then move it forward
(accepted → in progress, completed → done). Events only ever move an action forward, and never reopen an
action that staff cancelled, so late or repeated events cannot undo what a person decided.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum

from services.registry.domain.codes import ActionStatus, OwnerKind
from services.registry.domain.errors import InvalidInput

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
