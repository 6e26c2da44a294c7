"""What the registry's use cases return (and the villages a town sets): plain dataclasses, free of SQL and
protobuf. What they are asked to do is commands.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from services.registry.domain.assessment import DomainFinding
from services.registry.domain.child import ChildView
from services.registry.domain.codes import (
    ActionStatus,
    AssessmentKind,
    CaseStatus,
    CategorySource,
    DifficultyCategory,
    GoalStatus,
    OwnerKind,
    RiskLevel,
)
from services.registry.domain.family import FamilyMember


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
class FamilyMemberView:
    member_id: str
    child_id: str
    facts: FamilyMember


@dataclass(frozen=True)
class CategoryView:
    entry_id: str
    child_id: str
    category: DifficultyCategory
    source: CategorySource
    evidence: str
    evidence_document: str
    valid_from: date
    valid_to: date | None
    rule_code: str
    reason: str
    recorded_by: str
    recorded_at: datetime
    current: bool


@dataclass(frozen=True)
class AssessmentView:
    assessment_id: str
    child_id: str
    kind: AssessmentKind
    assessed_on: date
    assessor: str
    domains: tuple[DomainFinding, ...]
    risk_level: RiskLevel
    risk_reasons: tuple[str, ...]
    summary: str
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class PlanActionView:
    action_id: str
    goal_id: str
    description: str
    owner_kind: OwnerKind
    owner: str
    due_on: date | None
    status: ActionStatus
    referral_id: str
    note: str
    overdue: bool
    updated_at: datetime


@dataclass(frozen=True)
class PlanGoalView:
    goal_id: str
    child_id: str
    description: str
    status: GoalStatus
    actions: tuple[PlanActionView, ...] = ()


@dataclass(frozen=True)
class VisitView:
    visit_id: str
    child_id: str
    visited_on: date
    visitor: str
    findings: str
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class CaseStatusView:
    case_id: str
    status: CaseStatus
    next_visit_due: date | None
    version: int = 0


@dataclass(frozen=True)
class ChangeView:
    at: datetime
    actor: str
    role: str
    entity_type: str
    entity_id: str
    action: str
    changes: dict[str, list[object]]  # field: [before, after], JSON values


@dataclass(frozen=True)
class CaseFileView:
    case_id: str
    child: ChildView
    status: str
    responsible_person: str
    social_worker: str
    child_director: str
    timeline: tuple[TimelineItem, ...] = field(default_factory=tuple)
    status_reason: str = ""
    family: tuple[FamilyMemberView, ...] = ()
    categories: tuple[CategoryView, ...] = ()
    assessments: tuple[AssessmentView, ...] = ()
    risk_level: str = ""
    plan: tuple[PlanGoalView, ...] = ()
    visits: tuple[VisitView, ...] = ()
    next_visit_due: date | None = None
    merged_child_ids: tuple[str, ...] = ()
    version: int = 0
    responsible_user_id: str = ""
    social_worker_user_id: str = ""
    child_director_user_id: str = ""


@dataclass(frozen=True)
class TenantView:
    code: str
    name: str
    district_code: str
    onboarded_at: datetime


@dataclass(frozen=True)
class Village:
    """A village or community (村/社区) of a town: a 12-digit statistical division code and its name."""

    code: str
    name: str
    retired: bool = False


@dataclass(frozen=True)
class VillagesSet:
    villages: tuple[Village, ...]
    added: int
    renamed: int
    retired: int
