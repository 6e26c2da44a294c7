"""The bases the registry's services are composed over: what the parts of RegistryService (registry.py) and of
CaseworkService (casework.py) share (storage, keys, the clock) and how a use case opens its unit of work."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, utcnow
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.tenancy import require_role
from platform_runtime.vocabulary import china_today
from services.registry.adapters import village_scope
from services.registry.adapters.orm import TenantRecord
from services.registry.adapters.unit_of_work import SqlRegistryStore, SqlRegistryUnitOfWork
from services.registry.service_layer.ports import RegistryStore, RegistryUnitOfWork
from services.registry.service_layer.scope import Scope


class _OnStorage:
    """What both services' parts share: the store (ports.RegistryStore; the SQL one unless told), the database
    for the parts not on the ports yet, the match keys' key and the clock. The parts on the ports need only
    the store, so their tests run on the in-memory one."""

    def __init__(
        self,
        database: Database | None,
        blind_index: BlindIndex,
        *,
        store: RegistryStore | None = None,
        today: Callable[[], date] = china_today,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        if database is not None:
            village_scope.confine(database.session_factory)
        if store is None:
            if database is None:
                raise ValueError("the registry needs a store (or the database to build the SQL one)")
            store = SqlRegistryStore(database)
        self._sql_database = database
        self._store = store
        self._blind_index = blind_index
        self._today = today
        self._now = now

    @property
    def _database(self) -> Database:
        if self._sql_database is None:
            raise RuntimeError("this use case is not on the registry's ports yet: it needs the SQL database")
        return self._sql_database

    @contextmanager
    def _work(self, roles: frozenset[Role]) -> Iterator[RegistryUnitOfWork]:
        """The caller's unit of work on the registry's ports, once their role allows the use case."""
        caller = require_role(*roles)
        with self._store.unit_of_work(caller.tenant) as uow:
            uow.act_as(caller, today=self._today(), now=self._now())
            yield uow


class RegistryUseCases(_OnStorage):
    """What the RegistryService's parts (tenants.py, children.py, matching.py, merges.py, case_files.py)
    share: besides the store and the clock, the identity number's keys."""

    def __init__(
        self,
        database: Database | None,
        cipher: FieldCipher,
        blind_index: BlindIndex,
        *,
        store: RegistryStore | None = None,
        today: Callable[[], date] = china_today,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(database, blind_index, store=store, today=today, now=now)
        self._cipher = cipher

    def _scope(self, uow: UnitOfWork, caller: Principal) -> Scope:
        return Scope(uow, caller, today=self._today(), now=self._now())

    def _unit_of_work(self, tenant: str) -> SqlRegistryUnitOfWork:
        """A unit of work whose lost race (ConcurrentUpdate) names the child's record or case file."""
        return SqlRegistryUnitOfWork(self._database, tenant)

    def _require_tenant(self, uow: UnitOfWork, caller: Principal) -> None:
        if uow.session.get(TenantRecord, caller.tenant) is None:
            raise errors.Conflict(f"town {caller.tenant} is not onboarded")


class CaseworkUseCases(_OnStorage):
    """What the CaseworkService's parts (family.py, category_entries.py, case_status.py, assessments.py,
    assistance_plans.py, follow_up_visits.py, history.py) share."""

    @contextmanager
    def _scope(self, roles: frozenset[Role]) -> Iterator[Scope]:
        """The caller's unit of work on ORM rows, once their role allows the use case."""
        caller = require_role(*roles)
        with SqlRegistryUnitOfWork(self._database, caller.tenant) as uow:
            yield Scope(uow, caller, today=self._today(), now=self._now())
