"""The checks on what a caller gives every use case: text, days, the version they read."""

from __future__ import annotations

from datetime import date, timedelta

from platform_runtime import errors
from services.registry.adapters.orm import CaseFileRecord, ChildRecord
from services.registry.domain.casefile import CaseFile
from services.registry.domain.child_record import Child

IDENTITY_FIELD = "identity_number"  # the identity number's name in the blind index
SHORT_TEXT, LONG_TEXT = 100, 4000


def clean_text(value: str, field: str, *, max_chars: int, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise errors.InvalidInput("is required", field)
    if len(value) > max_chars:
        raise errors.InvalidInput(f"must be at most {max_chars} characters", field)
    return value


def check_version(record: ChildRecord | CaseFileRecord | CaseFile | Child, expected: int | None, what: str) -> None:
    """Refuse an edit the caller based on an older version of the record than the current one."""
    if expected is not None and record.version != expected:
        raise errors.ConcurrentUpdate(
            f"{what} was changed by someone else since you read it (version {expected}, now {record.version}): "
            "reload it and try again"
        )


def past_or_today(day: date | None, today: date, field: str) -> date:
    if day is None:
        return today
    if day > today:
        raise errors.InvalidInput("is in the future", field)
    if day < today - timedelta(days=366 * 5):
        raise errors.InvalidInput("is more than five years ago", field)
    return day
