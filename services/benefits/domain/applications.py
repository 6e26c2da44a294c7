"""Applications (申报) for a benefit: documents checklist, township review, district civil-affairs approval.

Each review has a time limit in working days (the typical flow: the town within 15, the district within
another 15). Working days skip Saturdays, Sundays and the holidays given (the State Council publishes
them yearly; a deployment passes its list). A rejected application stays as it is; applying again makes
a new one that points back at it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, timedelta
from enum import StrEnum

from platform_runtime.errors import Conflict, FieldViolation, InvalidInput

TOWN_REVIEW_DAYS = 15
DISTRICT_REVIEW_DAYS = 15


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"  # waiting for the town's review
    TOWN_APPROVED = "town_approved"  # waiting for the district civil affairs bureau
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


OPEN = (Status.DRAFT, Status.SUBMITTED, Status.TOWN_APPROVED)

# Who may move an application from which status.
TRANSITIONS: dict[str, tuple[Status, ...]] = {
    "submit": (Status.DRAFT,),
    "town_approve": (Status.SUBMITTED,),
    "town_reject": (Status.SUBMITTED,),
    "district_approve": (Status.TOWN_APPROVED,),
    "district_reject": (Status.TOWN_APPROVED,),
    "withdraw": (Status.DRAFT, Status.SUBMITTED, Status.TOWN_APPROVED),
    "reapply": (Status.REJECTED, Status.WITHDRAWN),
}


def require(action: str, status: str) -> None:
    if Status(status) not in TRANSITIONS[action]:
        raise Conflict(f"an application that is {status} cannot be {action.replace('_', ' ')}d")


def add_working_days(start: date, days: int, holidays: Collection[date] = frozenset()) -> date:
    """The day `days` working days after `start` (which itself does not count)."""
    day = start
    while days > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            days -= 1
    return day


def missing_documents(required: Iterable[str], provided: Iterable[str]) -> list[str]:
    have = set(provided)
    return [name for name in required if name not in have]


def check_documents(required: Iterable[str], provided: Iterable[str]) -> None:
    missing = missing_documents(required, provided)
    if missing:
        raise InvalidInput([FieldViolation("documents", f"missing: {name}") for name in missing])


def check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput.single("reason", "a rejection gives its reason")
    if len(reason) > 500:
        raise InvalidInput.single("reason", "at most 500 characters")
    return reason
