"""When a child's next follow-up visit is due."""

from __future__ import annotations

from sqlalchemy import func, select

from services.registry.adapters.orm import AssessmentRecord, CaseFileRecord, ChildRecord, VisitRecord
from services.registry.domain import visits
from services.registry.domain.codes import CaseStatus, RiskLevel
from services.registry.service_layer.scope import Scope


def reschedule_visits(scope: Scope, child: ChildRecord, case: CaseFileRecord) -> None:
    """Set when the next visit is due from the status, the risk level and the last contact."""
    if child.merged_into is not None:
        case.next_visit_due = None  # a merged duplicate is followed through the surviving record
        return
    last_visit = scope.session.scalar(
        select(func.max(VisitRecord.visited_on)).where(
            VisitRecord.tenant_id == scope.tenant, VisitRecord.child_id == child.id
        )
    )
    last_assessment = scope.session.scalar(
        select(func.max(AssessmentRecord.assessed_on)).where(
            AssessmentRecord.tenant_id == scope.tenant, AssessmentRecord.child_id == child.id
        )
    )
    contacts = [day for day in (last_visit, last_assessment) if day is not None]
    case.next_visit_due = visits.next_visit_due(
        status=CaseStatus(case.status),
        risk_level=RiskLevel(case.risk_level) if case.risk_level else None,
        last_contact=max(contacts) if contacts else None,
    )
