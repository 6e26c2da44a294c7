"""CaseworkService: work on a child's case file, one file each job. Family and guardians: family.py;
difficulty categories as staff record them: category_entries.py (the rules: categories.py); named staff and
the case status: case_status.py; assessments: assessments.py; the assistance plan: assistance_plans.py;
follow-up visits: follow_up_visits.py; the change history read: history.py. Each use case runs in a unit of
work scoped to the caller's tenant and keeps its change in the change history in the same transaction.

A child id that was merged into another record resolves to the surviving record, so old links keep working.
"""

from __future__ import annotations

from services.registry.service_layer.assessments import AssessmentUseCases
from services.registry.service_layer.assistance_plans import PlanUseCases
from services.registry.service_layer.case_status import CaseStatusUseCases
from services.registry.service_layer.category_entries import CategoryUseCases
from services.registry.service_layer.family import FamilyUseCases
from services.registry.service_layer.follow_up_visits import VisitUseCases
from services.registry.service_layer.history import ChangeHistoryUseCases

__all__ = ["CaseworkService"]


class CaseworkService(
    FamilyUseCases,
    CategoryUseCases,
    CaseStatusUseCases,
    AssessmentUseCases,
    PlanUseCases,
    VisitUseCases,
    ChangeHistoryUseCases,
):
    """The gRPC CaseworkService's use cases, and what the consumers and periodic workers call."""
