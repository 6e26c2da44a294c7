"""A referral's life: opened by the rules, accepted by the agency, completed with an outcome. Only forward."""

from __future__ import annotations

from enum import StrEnum

from platform_runtime.errors import Conflict, InvalidInput

OUTCOME_MAX_CHARS = 2000
NOTE_MAX_CHARS = 1000


class ReferralStatus(StrEnum):
    OPENED = "opened"
    ACCEPTED = "accepted"
    COMPLETED = "completed"


_NEXT = {ReferralStatus.OPENED: ReferralStatus.ACCEPTED, ReferralStatus.ACCEPTED: ReferralStatus.COMPLETED}


def advance(current: ReferralStatus, target: ReferralStatus) -> ReferralStatus:
    """`target` if it is the next step from `current`; Conflict (FAILED_PRECONDITION) otherwise."""
    if _NEXT.get(current) is not target:
        raise Conflict(f"a referral cannot go from {current.value} to {target.value}")
    return target


def clean_text(text: str, field: str, max_chars: int, *, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise InvalidInput.single(field, "is required")
    if len(text) > max_chars:
        raise InvalidInput.single(field, f"must be at most {max_chars} characters")
    return text
