"""The town's audit log as its administrator reads it: who read or changed which record, when and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.tenancy import require_role
from services.registry.adapters.orm import AuditRecord, CaseFileRecord
from services.registry.service_layer.use_cases import RegistryUseCases


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    role: str
    action: str
    subject_type: str
    subject_id: str
    purpose: str


@dataclass(frozen=True)
class AuditQuery:
    child_id: str = ""
    actor: str = ""
    purposeful_only: bool = False
    page_size: int = 0
    page_token: str = ""


class AuditLogUseCases(RegistryUseCases):
    def list_audit_entries(self, query: AuditQuery) -> tuple[list[AuditEntry], str]:
        caller = require_role(Role.TOWN_ADMIN)
        size = min(max(query.page_size or 50, 1), 500)
        if query.page_token and not query.page_token.isdigit():
            raise errors.InvalidInput("is not a page token of this list", "page_token")
        with self._database.unit_of_work(caller.tenant) as uow:
            statement = (
                select(AuditRecord).where(AuditRecord.tenant_id == caller.tenant).order_by(AuditRecord.id.desc())
            )
            if query.page_token:
                statement = statement.where(AuditRecord.id < int(query.page_token))
            if query.child_id:
                # A case file's reads name the case file: the child's entries are the record's and its file's.
                child_id = query.child_id.strip()[:64]
                case_ids = select(CaseFileRecord.id).where(
                    CaseFileRecord.tenant_id == caller.tenant, CaseFileRecord.child_id == child_id
                )
                statement = statement.where(
                    or_(AuditRecord.subject_id == child_id, AuditRecord.subject_id.in_(case_ids.scalar_subquery()))
                )
            if query.actor:
                statement = statement.where(AuditRecord.actor == query.actor.strip()[:100])
            if query.purposeful_only:
                statement = statement.where(AuditRecord.purpose != "")
            rows = list(uow.session.scalars(statement.limit(size + 1)))
            more = len(rows) > size
            rows = rows[:size]
            # Who watches the log is in the log too.
            self._scope(uow, caller).audit("list_audit_entries", "tenant", caller.tenant)
            uow.commit()
            entries = [
                AuditEntry(r.at, r.actor, r.role, r.action, r.subject_type, r.subject_id, r.purpose) for r in rows
            ]
            return entries, (str(rows[-1].id) if more else "")
