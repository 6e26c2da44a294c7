"""The scope every registry use case acts in: who may do what (the roles), the checks on what a caller
gives (a purpose, text), the version a caller read, and `Scope` itself: one use case's unit of work, caller and
day, with the record keeping that goes with every change (change history, audit, timeline, events).
`BulkScope` keeps that record keeping for many children at once (the survey).

Everything here runs inside the caller's unit of work, so a change and its history, events and derived
facts commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, utcnow
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.tenancy import require_role
from services.registry.adapters import messages
from services.registry.adapters.orm import (
    AuditRecord,
    CaseFileRecord,
    ChangeRecord,
    ChildRecord,
    FamilyMemberRecord,
    TenantRecord,
    TimelineRecord,
)
from services.registry.adapters.repository import MAX_MERGE_CHAIN, change_row, child_record
from services.registry.adapters.unit_of_work import SqlRegistryStore, SqlRegistryUnitOfWork
from services.registry.domain.casefile import CaseFile
from services.registry.domain.events import RegistryEvent
from services.registry.service_layer.ports import ChangeEntry, RegistryStore, RegistryUnitOfWork

# Who may read the register and case files: the town's and district's child-protection staff.
READER_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.CHILD_DIRECTOR, Role.DISTRICT_OFFICER, Role.SYSTEM})
# Reports reach the registry on behalf of their reporters: those may match a child and register a
# provisional one (the answer goes to the reporting service, never back to the reporter).
INTAKE_ROLES = READER_ROLES | {Role.MANDATED_REPORTER, Role.AGENCY_OFFICER, Role.AGENCY_SYSTEM}
# Who records what they find: family facts, categories, visits, the child's details. Village child
# directors survey and visit; the district supervises and reads, it does not keep the towns' files.
CASEWORK_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.CHILD_DIRECTOR, Role.SYSTEM})
# Who manages the case: status, named staff, assessments and the assistance plan (the town's duty).
CASE_MANAGER_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.SYSTEM})
# A merge is a person's judgement, never a job's.
MERGE_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN})

MIN_PURPOSE_CHARS = 4
IDENTITY_FIELD = "identity_number"


def require_purpose(purpose: str, what: str = "this case file") -> str:
    purpose = purpose.strip()
    if len(purpose) < MIN_PURPOSE_CHARS:
        raise errors.InvalidInput(f"say why you open {what} (it is recorded)", "purpose")
    return purpose


def clean_text(value: str, field: str, *, max_chars: int, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise errors.InvalidInput("is required", field)
    if len(value) > max_chars:
        raise errors.InvalidInput(f"must be at most {max_chars} characters", field)
    return value


def check_version(record: ChildRecord | CaseFileRecord | CaseFile, expected: int | None, what: str) -> None:
    """Refuse an edit the caller based on an older version of the record than the current one."""
    if expected is not None and record.version != expected:
        raise errors.ConcurrentUpdate(
            f"{what} was changed by someone else since you read it (version {expected}, now {record.version}): "
            "reload it and try again"
        )


class Scope:
    """One use case at work: its unit of work, its caller and the day it acts on."""

    def __init__(self, uow: UnitOfWork, caller: Principal, *, today: date, now: datetime) -> None:
        self.uow = uow
        self.caller = caller
        self.today = today
        self.now = now
        if isinstance(uow, RegistryUnitOfWork):
            uow.act_as(caller, today=today, now=now)

    @property
    def registry(self) -> RegistryUnitOfWork:
        """The registry's ports in the same transaction (the use cases moved to them; ADR 0018)."""
        if not isinstance(self.uow, RegistryUnitOfWork):
            raise RuntimeError("this scope's unit of work is not the registry's (use RegistryUseCases._unit_of_work)")
        return self.uow

    def commit(self) -> None:
        self.uow.commit()

    @property
    def session(self) -> Session:
        return self.uow.session

    @property
    def tenant(self) -> str:
        return self.uow.tenant

    def child(self, child_id: str, *, follow_merges: bool = True) -> ChildRecord:
        """The child, or the record it was merged into (events and links keep old ids working)."""
        return child_record(self.session, self.tenant, child_id, follow_merges=follow_merges)

    def merged_ids(self, child_id: str) -> list[str]:
        """Every record merged into this one, directly or through other merges."""
        found: list[str] = []
        frontier = [child_id]
        while frontier and len(found) < MAX_MERGE_CHAIN:
            frontier = list(
                self.session.scalars(
                    select(ChildRecord.id).where(
                        ChildRecord.tenant_id == self.tenant, ChildRecord.merged_into.in_(frontier)
                    )
                )
            )
            found += frontier
        return found

    def case_file(self, child_id: str) -> CaseFileRecord:
        return self.session.scalars(
            select(CaseFileRecord).where(CaseFileRecord.tenant_id == self.tenant, CaseFileRecord.child_id == child_id)
        ).one()

    def family(self, child_id: str) -> list[FamilyMemberRecord]:
        return list(
            self.session.scalars(
                select(FamilyMemberRecord)
                .where(FamilyMemberRecord.tenant_id == self.tenant, FamilyMemberRecord.child_id == child_id)
                .order_by(FamilyMemberRecord.created_at, FamilyMemberRecord.id)
            )
        )

    def emit(self, event: RegistryEvent) -> None:
        """Queue a domain event (adapters/messages.py maps it to its message, topic and key)."""
        self.uow.publish(messages.pending(self.tenant, event))

    def record_change(
        self, child_id: str, entity_type: str, entity_id: str, action: str, changes: Mapping[str, list[object]]
    ) -> None:
        """Keep who changed what and when, in the same transaction as the change itself (for the use cases not
        on the registry's ports yet; those on it have their unit of work keep it: ports.ChangeTracker)."""
        if not changes and action == "updated":
            return  # nothing changed: nothing to keep
        entry = ChangeEntry(
            child_id,
            entity_type,
            entity_id,
            action,
            dict(changes),
            self.caller.user_id,
            self.caller.role.value,
            self.now,
        )
        self._keep_change(change_row(self.tenant, entry))

    def _keep_change(self, row: dict[str, object]) -> None:
        self.session.add(ChangeRecord(**row))

    def audit(self, action: str, subject_type: str, subject_id: str, purpose: str = "") -> None:
        self.session.add(
            AuditRecord(
                tenant_id=self.tenant,
                at=self.now,
                actor=self.caller.user_id,
                role=self.caller.role.value,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                purpose=purpose,
            )
        )

    def audit_reads(self, action: str, subject_type: str, subject_ids: Sequence[str], purpose: str = "") -> None:
        """One audit row per record shown, in one statement: every read of a child's data is recorded."""
        if not subject_ids:
            return
        self.session.execute(
            insert(AuditRecord),
            [
                {
                    "tenant_id": self.tenant,
                    "at": self.now,
                    "actor": self.caller.user_id,
                    "role": self.caller.role.value,
                    "action": action,
                    "subject_type": subject_type,
                    "subject_id": subject_id,
                    "purpose": purpose,
                }
                for subject_id in subject_ids
            ],
        )

    def add_timeline(
        self,
        child_id: str,
        kind: str,
        summary: str,
        source: str,
        reference_id: str,
        *,
        at: datetime | None = None,
    ) -> None:
        self.session.add(
            TimelineRecord(
                tenant_id=self.tenant,
                child_id=child_id,
                at=at or self.now,
                kind=kind,
                summary=summary,
                source_service=source,
                reference_id=reference_id,
            )
        )


class BulkScope(Scope):
    """A Scope for recording many children in one transaction (the survey): their change history and
    timeline entries wait as plain rows, and `write_rows` inserts them all at once (ChildInWork.write_records
    calls it, after the new children's records they refer to), which saves an ORM object and a flush each."""

    def __init__(self, uow: UnitOfWork, caller: Principal, *, today: date, now: datetime) -> None:
        super().__init__(uow, caller, today=today, now=now)
        self._changes: list[dict[str, object]] = []
        self._timeline: list[dict[str, object]] = []

    def _keep_change(self, row: dict[str, object]) -> None:
        self._changes.append(row)

    def add_timeline(
        self,
        child_id: str,
        kind: str,
        summary: str,
        source: str,
        reference_id: str,
        *,
        at: datetime | None = None,
    ) -> None:
        self._timeline.append(
            {
                "tenant_id": self.tenant,
                "child_id": child_id,
                "at": at or self.now,
                "kind": kind,
                "summary": summary,
                "source_service": source,
                "reference_id": reference_id,
            }
        )

    def write_rows(self) -> None:
        """Insert the change history and timeline entries kept so far, in the order they were made."""
        for table, rows in ((ChangeRecord, self._changes), (TimelineRecord, self._timeline)):
            if rows:
                self.session.connection().execute(insert(table), rows)
                rows.clear()


class RegistryUseCases:
    """What the RegistryService's parts (tenants.py, children.py, matching.py, merges.py, case_files.py)
    share: the database, the identity number's keys and the clock."""

    def __init__(
        self,
        database: Database,
        cipher: FieldCipher,
        blind_index: BlindIndex,
        *,
        today: Callable[[], date] = date.today,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._cipher = cipher
        self._blind_index = blind_index
        self._today = today
        self._now = now

    def _scope(self, uow: UnitOfWork, caller: Principal) -> Scope:
        return Scope(uow, caller, today=self._today(), now=self._now())

    def _unit_of_work(self, tenant: str) -> SqlRegistryUnitOfWork:
        """A unit of work whose lost race (ConcurrentUpdate) names the child's record or case file."""
        return SqlRegistryUnitOfWork(self._database, tenant)

    def _require_tenant(self, uow: UnitOfWork, caller: Principal) -> None:
        if uow.session.get(TenantRecord, caller.tenant) is None:
            raise errors.Conflict(f"town {caller.tenant} is not onboarded")


SHORT_TEXT, LONG_TEXT = 100, 4000


def past_or_today(day: date | None, today: date, field: str) -> date:
    if day is None:
        return today
    if day > today:
        raise errors.InvalidInput("is in the future", field)
    if day < today - timedelta(days=366 * 5):
        raise errors.InvalidInput("is more than five years ago", field)
    return day


class CaseworkUseCases:
    """What the CaseworkService's parts (family.py, category_entries.py, case_status.py, assessments.py,
    assistance_plans.py, follow_up_visits.py, history.py) share: the store (ports.RegistryStore), the match
    keys' key, the clock. The parts moved to the ports (case status, assessments, plans, visits) need only the
    store, so their tests run on the in-memory one; the others still need the database."""

    def __init__(
        self,
        database: Database | None,
        blind_index: BlindIndex,
        *,
        store: RegistryStore | None = None,
        today: Callable[[], date] = date.today,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        if store is None:
            if database is None:
                raise ValueError("casework needs a store (or the database to build the SQL one)")
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

    @contextmanager
    def _scope(self, roles: frozenset[Role]) -> Iterator[Scope]:
        """The caller's unit of work, once their role allows the use case."""
        caller = require_role(*roles)
        with SqlRegistryUnitOfWork(self._database, caller.tenant) as uow:
            yield Scope(uow, caller, today=self._today(), now=self._now())
