"""The registry's unit of work on SQLAlchemy: the runtime's unit of work (a session; events become outbox rows
in the same transaction; a lost race is ConcurrentUpdate) with the registry's repositories, its change history
and timeline. Implements `service_layer.ports.RegistryUnitOfWork` and `RegistryStore`.

Use cases not moved to the ports yet reach the same session through `Scope` (service_layer/scope.py).
"""

from __future__ import annotations

from datetime import datetime

from platform_runtime.db import Database, UnitOfWork
from platform_runtime.events import PendingEvent
from platform_runtime.unit_of_work import AbstractUnitOfWork
from services.registry.adapters import messages
from services.registry.adapters.child_repository import SqlChildRepository
from services.registry.adapters.orm import AuditRecord, ChangeRecord, TimelineRecord
from services.registry.adapters.repository import (
    SqlAssessmentRepository,
    SqlCaseFileRepository,
    SqlPlanRepository,
    SqlVillageDirectory,
    SqlVisitRepository,
    audit_row,
    change_row,
    timeline_row,
)
from services.registry.domain.events import RegistryEvent
from services.registry.service_layer.ports import ChangeEntry, RegistryUnitOfWork


class SqlRegistryUnitOfWork(UnitOfWork, RegistryUnitOfWork):
    def __init__(self, database: Database, tenant: str) -> None:
        super().__init__(database, tenant)
        self._repositories: _Repositories | None = None
        self._outer: UnitOfWork | None = None  # when it works inside another unit of work (`within`)

    @property
    def _repos(self) -> _Repositories:
        if self._repositories is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._repositories

    @property
    def children(self) -> SqlChildRepository:
        return self._repos.children

    @property
    def villages(self) -> SqlVillageDirectory:
        return self._repos.villages

    @property
    def case_files(self) -> SqlCaseFileRepository:
        return self._repos.case_files

    @property
    def assessments(self) -> SqlAssessmentRepository:
        return self._repos.assessments

    @property
    def visits(self) -> SqlVisitRepository:
        return self._repos.visits

    @property
    def plans(self) -> SqlPlanRepository:
        return self._repos.plans

    def _begin(self) -> None:
        super()._begin()
        self._repositories = _Repositories(self)

    def _end(self) -> None:
        self._repositories = None
        super()._end()

    def _commit(self, events: list[PendingEvent]) -> None:
        if self._outer is not None:
            raise RuntimeError("the unit of work this one works within commits")
        super()._commit(events)
        self._repos.case_files.committed()

    def join(self, outer: UnitOfWork) -> None:
        """Work inside `outer`'s transaction: its session, its events; it commits or rolls back."""
        self._outer, self._session = outer, outer.session
        self._repositories = _Repositories(self)

    def publish(self, pending: PendingEvent) -> None:
        if self._outer is not None:
            self._outer.publish(pending)
        else:
            super().publish(pending)

    def emit(self, event: RegistryEvent) -> None:
        self.publish(messages.pending(self.tenant, event))

    def add_timeline(
        self,
        child_id: str,
        kind: str,
        summary: str,
        reference_id: str,
        *,
        source: str = "registry",
        at: datetime | None = None,
    ) -> None:
        self.session.add(
            TimelineRecord(**timeline_row(self.tenant, child_id, kind, summary, source, reference_id, at or self.now))
        )

    def audit(self, action: str, subject_type: str, subject_id: str, purpose: str = "") -> None:
        row = audit_row(self.tenant, self.caller, self.now, action, subject_type, subject_id, purpose)
        self.session.add(AuditRecord(**row))

    def _keep_change(self, entry: ChangeEntry) -> None:
        self.session.add(ChangeRecord(**change_row(self.tenant, entry)))


class _Repositories:
    def __init__(self, uow: SqlRegistryUnitOfWork) -> None:
        session, tenant, changes = uow.session, uow.tenant, uow._tracker()
        self.children = SqlChildRepository(session, tenant, changes)
        self.villages = SqlVillageDirectory(session, tenant)
        self.case_files = SqlCaseFileRepository(session, tenant, changes)
        self.assessments = SqlAssessmentRepository(session, tenant, changes)
        self.visits = SqlVisitRepository(session, tenant, changes)
        self.plans = SqlPlanRepository(session, tenant, changes)


class SqlRegistryStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def unit_of_work(self, tenant: str) -> SqlRegistryUnitOfWork:
        return SqlRegistryUnitOfWork(self._database, tenant)

    def within(self, uow: AbstractUnitOfWork) -> SqlRegistryUnitOfWork:
        if isinstance(uow, SqlRegistryUnitOfWork):
            return uow
        if not isinstance(uow, UnitOfWork):
            raise TypeError("the registry's SQL store works within a SQL unit of work")
        joined = SqlRegistryUnitOfWork(self._database, uow.tenant)
        joined.join(uow)
        return joined
