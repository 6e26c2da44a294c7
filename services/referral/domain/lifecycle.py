"""A referral's life (帮扶转介): where it may go from where it is, and who moves it.

opened → sent → accepted | rejected | returned; returned → sent (the referrer answered); accepted → in progress
(updates) → completed; anything not finished may be cancelled by the referrer or reassigned to another unit
(which sends it again). Rejected, completed and cancelled are final for that agency.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from platform_runtime.errors import Conflict, InvalidInput

OUTCOME_MAX_CHARS = 2000
NOTE_MAX_CHARS = 1000


class ReferralStatus(StrEnum):
    OPENED = "opened"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    RETURNED = "returned"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


S = ReferralStatus
FINAL = frozenset({S.COMPLETED, S.CANCELLED, S.REJECTED})
# Waiting for the agency to take it; an opened one (older rows) is as good as sent.
AWAITING_AGENCY = frozenset({S.OPENED, S.SENT})
WORKING = frozenset({S.ACCEPTED, S.IN_PROGRESS})


class Action(StrEnum):
    SEND = "send"
    ACCEPT = "accept"
    REJECT = "reject"
    RETURN = "return"
    ANSWER = "answer"
    PROGRESS = "progress"
    COMPLETE = "complete"
    CANCEL = "cancel"
    REASSIGN = "reassign"


# Action → (the states it may start from, the state it leads to).
_MOVES: dict[Action, tuple[frozenset[ReferralStatus], ReferralStatus]] = {
    Action.SEND: (frozenset({S.OPENED}), S.SENT),
    Action.ACCEPT: (AWAITING_AGENCY, S.ACCEPTED),
    Action.REJECT: (AWAITING_AGENCY | {S.RETURNED}, S.REJECTED),
    Action.RETURN: (AWAITING_AGENCY, S.RETURNED),
    Action.ANSWER: (frozenset({S.RETURNED}), S.SENT),
    Action.PROGRESS: (WORKING, S.IN_PROGRESS),
    Action.COMPLETE: (WORKING, S.COMPLETED),
    Action.CANCEL: (frozenset(S) - FINAL, S.CANCELLED),
    # A rejected referral is reassigned by the leading group office it was escalated to.
    Action.REASSIGN: (frozenset(S) - {S.COMPLETED, S.CANCELLED}, S.SENT),
}

# Which actions an agency takes and which the referrer (town staff, leading group office) takes.
AGENCY_ACTIONS = frozenset({Action.ACCEPT, Action.REJECT, Action.RETURN, Action.PROGRESS, Action.COMPLETE})
REFERRER_ACTIONS = frozenset({Action.ANSWER, Action.CANCEL, Action.REASSIGN})

# What each action must say, and the field name the caller sees in an error.
REQUIRED_TEXT: dict[Action, str] = {
    Action.REJECT: "reason",
    Action.RETURN: "question",
    Action.ANSWER: "answer",
    Action.PROGRESS: "note",
    Action.COMPLETE: "outcome",
    Action.CANCEL: "reason",
}


def advance(current: ReferralStatus, action: Action) -> ReferralStatus:
    """The state `action` leads to from `current`; Conflict (FAILED_PRECONDITION) if it may not be taken."""
    sources, target = _MOVES[action]
    if current not in sources:
        raise Conflict(f"a referral that is {current.value} cannot be {_PAST[action]}")
    return target


_PAST = {
    Action.SEND: "sent",
    Action.ACCEPT: "accepted",
    Action.REJECT: "rejected",
    Action.RETURN: "returned",
    Action.ANSWER: "answered",
    Action.PROGRESS: "updated",
    Action.COMPLETE: "completed",
    Action.CANCEL: "cancelled",
    Action.REASSIGN: "reassigned",
}


def clean_text(text: str, field: str, max_chars: int, *, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise InvalidInput.single(field, "is required")
    if len(text) > max_chars:
        raise InvalidInput.single(field, f"must be at most {max_chars} characters")
    return text


def action_text(action: Action, text: str) -> str:
    """The text an action carries, trimmed; required where the action must say why or what."""
    field = REQUIRED_TEXT.get(action, "note")
    limit = OUTCOME_MAX_CHARS if action is Action.COMPLETE else NOTE_MAX_CHARS
    return clean_text(text, field, limit, required=action in REQUIRED_TEXT)


# -- time limits and escalation ------------------------------------------------------------------------------

LEADING_GROUP_OFFICE = "leading_group_office"
LAST_STEP = 2


def limited(status: ReferralStatus) -> bool:
    """Whether the referral's clock runs: while the agency has to act (not while the referrer must answer)."""
    return status in AWAITING_AGENCY or status in WORKING


def escalation_due(
    status: ReferralStatus, deadline_from: datetime, due_at: datetime, escalated_step: int, now: datetime
) -> int:
    """The escalation step to raise now, or 0. Step 1 (the agency's supervising level) when the limit has
    passed; step 2 (the leading group office) when as long again has passed. Each step once per limit."""
    if not limited(status) or escalated_step >= LAST_STEP:
        return 0
    step_due = due_at + (due_at - deadline_from) * escalated_step
    return escalated_step + 1 if now >= step_due else 0


def escalated_to(step: int, agency_code: str) -> str:
    return agency_code if step == 1 else LEADING_GROUP_OFFICE
