"""When a child's next follow-up visit is due."""

from __future__ import annotations

from services.registry.domain.casefile import CaseFile
from services.registry.service_layer.ports import RegistryUnitOfWork


def schedule_visits(uow: RegistryUnitOfWork, case: CaseFile, *, merged: bool = False) -> None:
    """Set when the next visit is due from the status, the risk level and the last contact; the caller saves
    the case file. A merged duplicate is followed through the surviving record."""
    case.schedule_visits(last_contact=None if merged else uow.case_files.last_contact(case.child_id), merged=merged)
