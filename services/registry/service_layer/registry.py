"""RegistryService: the register's use cases, one file each job, each in a unit of work scoped to the
caller's tenant. Towns and villages: tenants.py; children: children.py; MatchChild: matching.py; merges:
merges.py; the case file as a whole and what other services' events add to it: case_files.py. (Casework on
the case file is CaseworkService, casework.py; the survey is SurveyService, survey.py and survey_import.py.)
"""

from __future__ import annotations

from services.registry.service_layer.audit_log import AuditLogUseCases
from services.registry.service_layer.case_files import CaseFileUseCases
from services.registry.service_layer.children import ChildUseCases
from services.registry.service_layer.matching import MatchUseCases
from services.registry.service_layer.merges import MergeUseCases
from services.registry.service_layer.statistics import StatisticsUseCases
from services.registry.service_layer.tenants import TenantUseCases

__all__ = ["RegistryService"]


class RegistryService(
    TenantUseCases, ChildUseCases, MatchUseCases, MergeUseCases, CaseFileUseCases, StatisticsUseCases, AuditLogUseCases
):
    """The gRPC RegistryService's and TenantDirectoryService's use cases, and what the consumers call."""
