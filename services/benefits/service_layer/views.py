"""What the benefits use cases take and return: plain dataclasses, free of SQL and protobuf."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.benefits.domain.insurance import Ineligible


@dataclass(frozen=True)
class RegisteredChild:
    """A child as the benefits service sees it (from `registry.v1.ChildRegistered`): no names, no numbers."""

    child_id: str
    birth_date: date | None
    household_division_code: str
    registered_at: datetime


@dataclass(frozen=True)
class EnrolmentView:
    enrolment_id: str
    tenant: str
    child_id: str
    policy_code: str
    covered_until: date | None
    ineligible: Ineligible | None
    decided_at: datetime

    @property
    def enrolled(self) -> bool:
        return self.ineligible is None
