"""One new child at work in a transaction on ORM rows (RegisterChild and the survey's bulk path): its family
and category rows kept at hand, so many new children are recorded without a query each. The use cases on the
registry's ports work on the Child aggregate instead (domain/child_record.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from platform_runtime import errors
from platform_runtime.db import new_id
from platform_runtime.pii import BlindIndex
from services.registry.adapters.bulk_rows import insert_rows
from services.registry.adapters.child_repository import category_entry, entry_columns
from services.registry.adapters.orm import CategoryRecord, ChildMatchKey, ChildRecord, FamilyMemberRecord
from services.registry.domain.categories import in_code_order, is_current
from services.registry.domain.changes import columns, field_changes
from services.registry.domain.codes import CategorySource
from services.registry.domain.family import FAMILY_FIELDS, FamilyMember
from services.registry.service_layer.categories import announce_categories, derive_categories
from services.registry.service_layer.category_entries import CheckedCategory
from services.registry.service_layer.family_facts import guardian_names, member_facts, write_member_facts
from services.registry.service_layer.match_keys import match_key_digests
from services.registry.service_layer.scope import BulkScope, Scope


class ChildInWork:
    """A child recorded in this transaction, with what the category rules and the match keys read of it: its
    family and category rows, kept up to date as they are recorded, so that many new children (a survey) are
    recorded without one query each. The rules are categories.py's (derive_categories, announce_categories)
    and match_keys.py's."""

    def __init__(self, scope: Scope, record: ChildRecord) -> None:
        self.scope = scope
        self.record = record
        self.members: list[FamilyMemberRecord] = []
        self.category_rows: list[CategoryRecord] = []
        self._match_keys: list[str] = []  # until write_records

    @classmethod
    def new_child(cls, scope: Scope, record: ChildRecord) -> ChildInWork:
        """A child recorded in this transaction: no family, no categories yet. Its record is written by
        `write_records` before anything that refers to it."""
        scope.session.add(record)
        return cls(scope, record)

    @staticmethod
    def write_records(scope: Scope, children: Sequence[ChildInWork]) -> None:
        """Write the records of new children (all in one statement) before what refers to them: the tables
        have no relationship() between them, so a flush would take them in the order of their classes'
        names, and case_files, child_categories, change_history and child_match_keys come before children.
        Then their match keys, and a BulkScope's change history and timeline, as plain rows."""
        records = [child.record for child in children]
        if isinstance(scope, BulkScope):
            scope.write_new_records()  # the children first, in the order the tables refer to each other
        elif records:  # flush([]) would write everything
            scope.session.flush(records)
        keys = [
            {"tenant_id": child.record.tenant_id, "match_key": key, "child_id": child.child_id}
            for child in children
            for key in child._match_keys
        ]
        insert_rows(scope.session, ChildMatchKey.__table__, keys)
        for child in children:
            child._match_keys = []
        if isinstance(scope, BulkScope):
            scope.write_rows()

    @property
    def child_id(self) -> str:
        return self.record.id

    def categories(self) -> tuple[str, ...]:
        """The child's categories valid today, typed in or derived, in the code list's order."""
        return in_code_order(row.category for row in self.category_rows if is_current(row, self.scope.today))

    def add_member(self, facts: FamilyMember) -> tuple[str, ...]:
        """AddFamilyMember's work for a new child (the survey): the member, its change history, and the
        categories derived again (parents' situations decide some) and announced. The caller has checked the
        facts (`check_member`) and stores the child's match keys once its family is all in."""
        before = self.categories()
        scope = self.scope
        record = FamilyMemberRecord(id=new_id(), tenant_id=scope.tenant, child_id=self.child_id, created_at=scope.now)
        write_member_facts(record, facts)
        scope.session.add(record)
        self.members.append(record)
        scope.record_change(
            self.child_id, "family_member", record.id, "created", field_changes({}, columns(record, FAMILY_FIELDS))
        )
        return self.refresh_categories(before)

    def add_category(self, checked: CheckedCategory) -> tuple[str, ...]:
        """AddCategory's work for a new child (the survey): the category's entry (refused when the child has it
        over an overlapping period), its change history, and the categories derived again and announced."""
        entry = checked.entry(new_id(), self.child_id, self.scope.caller.user_id, self.scope.now)
        if any(
            category_entry(row).overlaps(entry.category, entry.valid_from, entry.valid_to) for row in self.category_rows
        ):
            raise errors.Conflict("this category is already recorded for the child over an overlapping period")
        before = self.categories()
        record = CategoryRecord(
            id=entry.entry_id,
            tenant_id=self.scope.tenant,
            child_id=self.child_id,
            recorded_by=entry.recorded_by,
            recorded_at=entry.recorded_at,
            **entry_columns(entry),
        )
        self.scope.session.add(record)
        self.category_rows.append(record)
        self.scope.record_change(
            self.child_id, "category", record.id, "created", field_changes({}, entry.history_values())
        )
        return self.refresh_categories(before)

    def refresh_categories(self, before: tuple[str, ...]) -> tuple[str, ...]:
        """refresh_categories from what is known of the child here: derive again, announce, return them."""
        today = self.scope.today
        open_rule_rows = [
            row
            for row in self.category_rows
            if row.source == CategorySource.RULE.value and (row.valid_to is None or row.valid_to >= today)
        ]
        members = [member_facts(member) for member in self.members]
        removed, added = derive_categories(self.scope, self.record, members, open_rule_rows)
        gone = {id(row) for row in removed}
        self.category_rows = [row for row in self.category_rows if id(row) not in gone] + added
        after = self.categories()
        announce_categories(self.scope, self.record.id, before, after)
        return after

    def store_match_keys(self, blind_index: BlindIndex) -> None:
        """Its match keys from what is known of it here, written with its record (write_records)."""
        self._match_keys = match_key_digests(blind_index, self.record, guardian_names(self.members))
