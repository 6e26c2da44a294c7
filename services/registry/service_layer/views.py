"""What the registry's use cases take and return: plain dataclasses, free of SQL and protobuf."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from services.registry.domain.codes import Sex


@dataclass(frozen=True)
class RegisterChild:
    legal_name: str = ""
    other_names: tuple[str, ...] = ()
    sex: Sex = Sex.UNKNOWN
    birth_date: date | None = None
    identity_number: str = ""
    ethnicity_code: str = ""
    household_division_code: str = ""
    household_address: str = ""
    residence_division_code: str = ""
    residence_address: str = ""
    school: str = ""
    grade: str = ""
    provisional: bool = False
    description: str = ""


@dataclass(frozen=True)
class ChildView:
    child_id: str
    tenant: str
    legal_name: str
    other_names: tuple[str, ...]
    sex: Sex
    birth_date: date | None
    identity_number_masked: str
    ethnicity_code: str
    household_division_code: str
    household_address: str
    residence_division_code: str
    residence_address: str
    school: str
    grade: str
    categories: tuple[str, ...]
    provisional: bool
    created_at: datetime


@dataclass(frozen=True)
class MatchProbe:
    name: str = ""
    identity_number: str = ""
    birth_date: date | None = None
    approximate_age: int = 0
    sex: Sex = Sex.UNKNOWN
    guardian_names: tuple[str, ...] = ()
    division_code: str = ""
    school: str = ""


@dataclass(frozen=True)
class Candidate:
    child: ChildView
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str
    summary: str
    source_service: str
    reference_id: str


@dataclass(frozen=True)
class CaseFileView:
    case_id: str
    child: ChildView
    status: str
    responsible_person: str
    social_worker: str
    child_director: str
    timeline: tuple[TimelineItem, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TenantView:
    code: str
    name: str
    district_code: str
    onboarded_at: datetime
