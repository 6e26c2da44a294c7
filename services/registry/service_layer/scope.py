"""`Scope`: one use case at work on ORM rows (its unit of work, caller and day) with the record keeping that goes
with every change (change history, audit, timeline, events); `BulkScope` keeps that record keeping for many
children at once (the survey). The use cases on the registry's ports (ports.py) need none of it.

Everything here runs inside the caller's unit of work, so a change and its history, events and derived facts
commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from platform_runtime.auth import Principal
from platform_runtime.db import UnitOfWork
from services.registry.adapters import messages
from services.registry.adapters.bulk_rows import insert_objects, insert_rows
from services.registry.adapters.orm import (
    AuditRecord,
    CaseFileRecord,
    ChangeRecord,
    ChildRecord,
    FamilyMemberRecord,
    TimelineRecord,
)
from services.registry.adapters.repository import (
    MAX_MERGE_CHAIN,
    audit_row,
    change_row,
    child_record,
    timeline_row,
)
from services.registry.domain.events import RegistryEvent
from services.registry.service_layer.ports import ChangeEntry, RegistryUnitOfWork


class Scope:
    """One use case at work: its unit of work, its caller and the day it acts on."""

    def __init__(self, uow: UnitOfWork, caller: Principal, *, today: date, now: datetime) -> None:
        self.uow = uow
        self.caller = caller
        self.today = today
        self.now = now
        if isinstance(uow, RegistryUnitOfWork):
            uow.act_as(caller, today=today, now=now)

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
        self.session.add(AuditRecord(**self._audit_row(action, subject_type, subject_id, purpose)))

    def audit_reads(self, action: str, subject_type: str, subject_ids: Sequence[str], purpose: str = "") -> None:
        """One audit row per record shown, in one statement: every read of a child's data is recorded."""
        if not subject_ids:
            return
        rows = [self._audit_row(action, subject_type, subject_id, purpose) for subject_id in subject_ids]
        self.session.execute(insert(AuditRecord), rows)

    def _audit_row(self, action: str, subject_type: str, subject_id: str, purpose: str) -> dict[str, object]:
        return audit_row(self.tenant, self.caller, self.now, action, subject_type, subject_id, purpose)

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
        self._keep_timeline(timeline_row(self.tenant, child_id, kind, summary, source, reference_id, at or self.now))

    def _keep_timeline(self, row: dict[str, object]) -> None:
        self.session.add(TimelineRecord(**row))


class BulkScope(Scope):
    """A Scope for recording many children in one transaction (the survey): their change history and
    timeline entries wait as plain rows, and `write_rows` inserts them all at once (ChildInWork.write_records
    calls it, after the new children's records they refer to), which saves an ORM object and a flush each;
    the new records themselves are written by `write_new_records` (COPY on PostgreSQL) instead of a flush."""

    def __init__(self, uow: UnitOfWork, caller: Principal, *, today: date, now: datetime) -> None:
        super().__init__(uow, caller, today=today, now=now)
        self._changes: list[dict[str, object]] = []
        self._timeline: list[dict[str, object]] = []

    def _keep_change(self, row: dict[str, object]) -> None:
        self._changes.append(row)

    def _keep_timeline(self, row: dict[str, object]) -> None:
        self._timeline.append(row)

    def write_new_records(self) -> None:
        """Insert the records added to the session so far (children, case files, family members, categories,
        audit rows) in a statement a table, instead of the flush's ORM work per object."""
        insert_objects(self.session, list(self.session.new))

    def write_rows(self) -> None:
        """Insert the change history and timeline entries kept so far, in the order they were made."""
        for table, rows in ((ChangeRecord, self._changes), (TimelineRecord, self._timeline)):
            insert_rows(self.session, table.__table__, rows)
            rows.clear()
