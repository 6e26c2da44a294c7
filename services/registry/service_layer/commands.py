"""What the registry's use cases are asked to do: plain dataclasses, free of SQL and protobuf, built by the
entrypoints from requests (adapters/messages.py) and by the survey from its rows. What they return is views.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from services.registry.domain.assessment import DomainFinding
from services.registry.domain.child import ContactPerson
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
    disability_type: str = ""
    disability_grade: str = ""
    serious_illness: str = ""
    contact_person: ContactPerson = field(default_factory=ContactPerson)


@dataclass(frozen=True)
class UpdateChild:
    """New values for the fields named in `fields` (names of RegisterChild's fields); the rest stay."""

    child_id: str
    values: RegisterChild
    fields: frozenset[str]
    # The Child.version the caller read; None: no check beyond the one every update makes.
    expected_version: int | None = None


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
class NewCategory:
    child_id: str
    category: str
    source: str
    evidence: str = ""
    evidence_document: str = ""
    valid_from: date | None = None  # today when not given
    valid_to: date | None = None


@dataclass(frozen=True)
class NewAssessment:
    child_id: str
    kind: str
    domains: tuple[DomainFinding, ...]
    assessed_on: date | None = None  # today when not given
    assessor: str = ""
    summary: str = ""


@dataclass(frozen=True)
class NewPlanAction:
    goal_id: str
    description: str
    owner_kind: str
    owner: str
    due_on: date | None = None
    referral_id: str = ""


@dataclass(frozen=True)
class PlanActionChange:
    """Empty / None fields stay as they are."""

    action_id: str
    status: str = ""
    due_on: date | None = None
    note: str = ""


@dataclass(frozen=True)
class NewVisit:
    child_id: str
    visitor: str
    findings: str
    visited_on: date | None = None  # today when not given
