"""The child's record on SQLAlchemy (service_layer/ports.ChildRepository): its row, its family members' and
its category entries' rows in, the `Child` aggregate out; its changes written back and kept in the change
history through the unit of work's tracker (as the other repositories, adapters/repository.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from platform_runtime import errors
from services.registry.adapters.orm import CategoryRecord, ChildMatchKey, ChildRecord, FamilyMemberRecord
from services.registry.adapters.repository import child_record, write_columns
from services.registry.domain.categories import CATEGORY_FIELDS, CategoryEntry
from services.registry.domain.child import ALREADY_REGISTERED, ChildDetails
from services.registry.domain.child_record import Child
from services.registry.domain.codes import CategorySource, DifficultyCategory, Sex
from services.registry.domain.family import FamilyMemberEntry, stored_facts
from services.registry.service_layer.family_facts import member_facts
from services.registry.service_layer.ports import ChangeTracker


def child_details(row: ChildRecord) -> ChildDetails:
    return ChildDetails(
        legal_name=row.legal_name,
        other_names=tuple(row.other_names or ()),
        sex=Sex(row.sex),
        birth_date=row.birth_date,
        identity_number_cipher=row.identity_number_cipher,
        identity_number_index=row.identity_number_index,
        identity_number_masked=row.identity_number_masked,
        ethnicity_code=row.ethnicity_code,
        household_division_code=row.household_division_code,
        household_address=row.household_address,
        residence_division_code=row.residence_division_code,
        residence_address=row.residence_address,
        school=row.school,
        grade=row.grade,
        description=row.description,
        provisional=row.provisional,
        disability_type=row.disability_type,
        disability_grade=row.disability_grade,
        serious_illness=row.serious_illness,
        contact_name=row.contact_name,
        contact_relationship=row.contact_relationship,
        contact_phone=row.contact_phone,
    )


IDENTITY_COLUMNS = ("identity_number_cipher", "identity_number_index", "identity_number_masked")


_DETAILS = tuple(field.name for field in fields(ChildDetails))


def details_columns(details: ChildDetails) -> dict[str, object]:
    """The child's details as its row holds them."""
    columns = {name: getattr(details, name) for name in _DETAILS}
    columns.update(sex=details.sex.value, other_names=list(details.other_names))
    return columns


def category_entry(row: CategoryRecord) -> CategoryEntry:
    return CategoryEntry(
        entry_id=row.id,
        child_id=row.child_id,
        category=DifficultyCategory(row.category),
        source=CategorySource(row.source),
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
        evidence=row.evidence,
        evidence_document=row.evidence_document,
        rule_code=row.rule_code,
        reason=row.reason,
    )


def entry_columns(entry: CategoryEntry) -> dict[str, object]:
    return {
        **{name: getattr(entry, name) for name in CATEGORY_FIELDS},
        "category": entry.category.value,
        "source": entry.source.value,
    }


class SqlChildRepository:
    def __init__(self, session: Session, tenant: str, changes: ChangeTracker) -> None:
        self._session, self._tenant, self._changes = session, tenant, changes
        self._children: dict[str, tuple[ChildRecord, Child]] = {}
        self._members: dict[str, FamilyMemberRecord] = {}
        self._entries: dict[str, CategoryRecord] = {}
        self._listed: list[ChildRecord] = []

    def current_id(self, child_id: str) -> str:
        return child_record(self._session, self._tenant, child_id).id

    def get(self, child_id: str, *, follow_merges: bool = True) -> Child:
        return self._load(child_record(self._session, self._tenant, child_id, follow_merges=follow_merges))

    def hold(self, child_ids: Sequence[str]) -> None:
        for child_id in sorted(set(child_ids)):  # one at a time, in id order: the lock order every holder keeps
            self._session.execute(
                select(ChildRecord.id)
                .where(ChildRecord.tenant_id == self._tenant, ChildRecord.id == child_id)
                .with_for_update()
            )

    def ids_after(self, after_child_id: str, limit: int) -> list[str]:
        rows = list(
            self._session.scalars(
                select(ChildRecord)
                .where(
                    ChildRecord.tenant_id == self._tenant,
                    ChildRecord.merged_into.is_(None),
                    ChildRecord.id > after_child_id,
                )
                .order_by(ChildRecord.id)
                .limit(limit)
            )
        )
        self._listed = rows  # held, so that `get` finds them in the session without a query each
        return [row.id for row in rows]

    def number_taken(self, identity_number_index: str, by_other_than: str) -> bool:
        found = self._session.scalar(
            select(ChildRecord.id).where(
                ChildRecord.tenant_id == self._tenant,
                ChildRecord.identity_number_index == identity_number_index,
                ChildRecord.id != by_other_than,
            )
        )
        return found is not None

    def with_member(self, member_id: str) -> Child:
        row = self._session.get(FamilyMemberRecord, member_id) if member_id else None
        if row is None or row.tenant_id != self._tenant:
            raise errors.NotFound("no such family member in this town")
        return self._load(child_record(self._session, self._tenant, row.child_id, follow_merges=False))

    def with_category_entry(self, entry_id: str) -> Child:
        row = self._session.get(CategoryRecord, entry_id) if entry_id else None
        if row is None or row.tenant_id != self._tenant:
            raise errors.NotFound("no such category entry in this town")
        return self._load(child_record(self._session, self._tenant, row.child_id, follow_merges=False))

    def _load(self, row: ChildRecord) -> Child:
        held = self._children.get(row.id)
        if held is not None:
            return held[1]
        # One derivation per child at a time (PostgreSQL row lock): two at once would both add the same row.
        # Only the id is selected, so the record keeps the version it was read with (a lost update is refused).
        self._session.execute(select(ChildRecord.id).where(ChildRecord.id == row.id).with_for_update())
        members = list(
            self._session.scalars(
                select(FamilyMemberRecord)
                .where(FamilyMemberRecord.tenant_id == self._tenant, FamilyMemberRecord.child_id == row.id)
                .order_by(FamilyMemberRecord.created_at, FamilyMemberRecord.id)
            )
        )
        entries = list(
            self._session.scalars(
                select(CategoryRecord)
                .where(CategoryRecord.tenant_id == self._tenant, CategoryRecord.child_id == row.id)
                .order_by(CategoryRecord.valid_from, CategoryRecord.recorded_at, CategoryRecord.id)
            )
        )
        self._members.update((m.id, m) for m in members)
        self._entries.update((e.id, e) for e in entries)
        child = Child(
            child_id=row.id,
            details=child_details(row),
            created_at=row.created_at,
            family=[
                self._changes.seen(FamilyMemberEntry(m.id, m.child_id, member_facts(m), m.created_at)) for m in members
            ],
            categories=[self._changes.seen(category_entry(e)) for e in entries],
            merged_into=row.merged_into,
            merged_at=row.merged_at,
            version=row.version,
        )
        self._children[row.id] = (row, self._changes.seen(child))
        return child

    def save(self, child: Child) -> None:
        row, _ = self._children[child.child_id]
        columns = {**details_columns(child.details), "merged_into": child.merged_into, "merged_at": child.merged_at}
        if write_columns(row, columns):
            try:
                self._session.flush()  # the version moves now, and a number registered meanwhile is refused
            except IntegrityError as exc:
                raise errors.Conflict(ALREADY_REGISTERED) from exc
            child.version = row.version
        for change in self._changes.saved_child(child):
            if change.part is None:
                continue  # the record itself: written above
            if change.adds:
                self._add(change.part)
            elif change.action == "removed":
                self._remove(change.part)
            else:
                self._write(change.part)

    def _add(self, part: FamilyMemberEntry | CategoryEntry) -> None:
        if isinstance(part, FamilyMemberEntry):
            member = FamilyMemberRecord(
                id=part.member_id,
                tenant_id=self._tenant,
                child_id=part.child_id,
                created_at=part.created_at,
                **stored_facts(part.facts),
            )
            self._session.add(member)
            self._members[member.id] = member
        else:
            entry = CategoryRecord(
                id=part.entry_id,
                tenant_id=self._tenant,
                child_id=part.child_id,
                recorded_by=part.recorded_by,
                recorded_at=part.recorded_at,
                **entry_columns(part),
            )
            self._session.add(entry)
            self._entries[entry.id] = entry

    def _write(self, part: FamilyMemberEntry | CategoryEntry) -> None:
        if isinstance(part, FamilyMemberEntry):
            write_columns(self._members[part.member_id], stored_facts(part.facts))
        else:
            write_columns(self._entries[part.entry_id], entry_columns(part))

    def _remove(self, part: FamilyMemberEntry | CategoryEntry) -> None:
        row: FamilyMemberRecord | CategoryRecord | None = (
            self._members.pop(part.member_id, None)
            if isinstance(part, FamilyMemberEntry)
            else self._entries.pop(part.entry_id, None)
        )
        if row is None:
            return
        if row in self._session.new:  # added in this same unit of work and not written yet
            self._session.expunge(row)
        else:
            self._session.delete(row)

    def replace_match_keys(self, child_id: str, keys: Sequence[str]) -> None:
        self._session.execute(delete(ChildMatchKey).where(ChildMatchKey.child_id == child_id))
        for key in keys:
            self._session.add(ChildMatchKey(tenant_id=self._tenant, match_key=key, child_id=child_id))
