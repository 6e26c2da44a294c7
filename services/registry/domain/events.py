"""What happened in the register, as the domain says it (past tense). `adapters/messages.py` maps each to its
`minorprot.registry.v1` message, topic and key; the use cases never build protobuf.

The case's events carry its named staff, so notify can tell the people holding the case. Which topic and key
each goes out on is the mapper's business (children and their categories on registry.child, the case on
registry.case, a new town on platform.tenant).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from services.registry.domain.casefile import CaseStaff
from services.registry.domain.child import ChildView
from services.registry.domain.codes import CaseStatus, RiskLevel


@dataclass(frozen=True)
class TenantOnboarded:
    code: str
    name: str
    district_code: str
    onboarded_at: datetime


@dataclass(frozen=True)
class ChildRegistered:
    """A child was registered: what benefits follows (the insurance age rule, the household registration), no
    name, address, health fact, contact or number; staff read those from the registry."""

    child_id: str
    birth_date: date | None
    household_division_code: str
    registered_at: datetime
    person_key: str = ""  # the blind index other services know the person by ("" without an identity number)

    @classmethod
    def of(cls, child: ChildView, person_key: str = "") -> ChildRegistered:
        return cls(child.child_id, child.birth_date, child.household_division_code, child.created_at, person_key)


@dataclass(frozen=True)
class ChildCategoriesChanged:
    """The child's current difficulty categories (typed or derived) changed."""

    child_id: str
    categories: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class ChildMoved:
    """The child's residence or household registration moved to another division (codes only)."""

    child_id: str
    from_residence_division_code: str
    to_residence_division_code: str
    from_household_division_code: str
    to_household_division_code: str
    effective_on: date


@dataclass(frozen=True)
class ChildBirthDateCorrected:
    child_id: str
    birth_date: date | None


@dataclass(frozen=True)
class ChildIdentityChanged:
    """The identity number was added, corrected or removed: only the new person key ("" when removed)."""

    child_id: str
    person_key: str


@dataclass(frozen=True)
class ChildrenMerged:
    """Without the merger's reason: staff's words stay in the change history, never on Kafka."""

    surviving_child_id: str
    merged_child_id: str
    merged_by: str


@dataclass(frozen=True)
class ChildrenUnmerged:
    surviving_child_id: str
    merged_child_id: str
    unmerged_by: str


@dataclass(frozen=True)
class CaseFileOpened:
    case_id: str
    child_id: str
    status: CaseStatus


@dataclass(frozen=True)
class ReportLinkedToCase:
    """A discovery report about the child joined the case file (the reporting service linked it)."""

    case_id: str
    child_id: str
    report_id: str


@dataclass(frozen=True)
class CaseAssigned:
    """The case's named staff changed (AssignCase); raised only when someone changed."""

    case_id: str
    child_id: str
    staff: CaseStaff
    previous: CaseStaff


@dataclass(frozen=True)
class CaseStatusChanged:
    case_id: str
    child_id: str
    from_status: CaseStatus
    to_status: CaseStatus
    staff: CaseStaff  # the reason given stays in the change history


@dataclass(frozen=True)
class VisitOverdue:
    """A follow-up visit is past due (raised once per due date)."""

    case_id: str
    child_id: str
    due_on: date
    days_overdue: int
    risk_level: RiskLevel | None
    staff: CaseStaff


RegistryEvent = (
    TenantOnboarded
    | ChildRegistered
    | ChildCategoriesChanged
    | ChildMoved
    | ChildBirthDateCorrected
    | ChildIdentityChanged
    | ChildrenMerged
    | ChildrenUnmerged
    | CaseFileOpened
    | ReportLinkedToCase
    | CaseAssigned
    | CaseStatusChanged
    | VisitOverdue
)
