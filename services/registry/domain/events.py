"""What happened in the register, as the domain says it (past tense). `adapters/messages.py` maps each to its
`minorprot.registry.v1` message, topic and key; the use cases never build protobuf.

The case's events carry its named staff, so notify can tell the people holding the case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from services.registry.domain.casefile import CaseStaff
from services.registry.domain.codes import CaseStatus, RiskLevel


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
    reason: str
    staff: CaseStaff


@dataclass(frozen=True)
class VisitOverdue:
    """A follow-up visit is past due (raised once per due date)."""

    case_id: str
    child_id: str
    due_on: date
    days_overdue: int
    risk_level: RiskLevel | None
    staff: CaseStaff


RegistryEvent = CaseAssigned | CaseStatusChanged | VisitOverdue
