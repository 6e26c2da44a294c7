"""One child at work in a transaction: its family and category rows kept at hand, so many new children
(a survey) are recorded without a query each.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import delete, select

from platform_runtime.pii import BlindIndex
from services.registry.adapters.bulk_rows import insert_rows
from services.registry.adapters.orm import CategoryRecord, ChildMatchKey, ChildRecord, FamilyMemberRecord
from services.registry.domain.codes import CategorySource
from services.registry.service_layer.categories import announce_categories, derive_categories, in_code_order, is_current
from services.registry.service_layer.family_facts import guardian_names, member_facts
from services.registry.service_layer.match_keys import add_match_keys, match_key_digests
from services.registry.service_layer.scope import BulkScope, Scope


class ChildInWork:
    """A child being changed in this transaction, with what the category rules and the match keys read of
    it: its family and its category rows. `load` reads them for a child in the register (under the row lock
    that keeps derivations one at a time); `new` starts them empty for a child recorded in this transaction,
    which keeps them up to date as its family and categories are recorded, so that many new children (a
    survey) are recorded without one query each. The rules are categories.py's (derive_categories,
    announce_categories) and match_keys.py's (store_match_keys)."""

    def __init__(
        self,
        scope: Scope,
        record: ChildRecord,
        members: list[FamilyMemberRecord],
        category_rows: list[CategoryRecord],
        *,
        new: bool,
    ) -> None:
        self.scope = scope
        self.record = record
        self.members = members
        self.category_rows = category_rows
        self.new = new
        self._match_keys: list[str] = []  # a new child's, until write_records

    @classmethod
    def load(cls, scope: Scope, record: ChildRecord) -> ChildInWork:
        # One derivation per child at a time (PostgreSQL row lock): two at once would both add the same row.
        scope.session.execute(select(ChildRecord.id).where(ChildRecord.id == record.id).with_for_update())
        rows = scope.session.scalars(
            select(CategoryRecord)
            .where(CategoryRecord.tenant_id == scope.tenant, CategoryRecord.child_id == record.id)
            .order_by(CategoryRecord.valid_from, CategoryRecord.recorded_at, CategoryRecord.id)
        )
        return cls(scope, record, scope.family(record.id), list(rows), new=False)

    @classmethod
    def new_child(cls, scope: Scope, record: ChildRecord) -> ChildInWork:
        """A child recorded in this transaction: no family, no categories yet. Its record is written by
        `write_records` before anything that refers to it."""
        scope.session.add(record)
        return cls(scope, record, [], [], new=True)

    @staticmethod
    def write_records(scope: Scope, children: Sequence[ChildInWork]) -> None:
        """Write the records of new children (all in one statement) before what refers to them: the tables
        have no relationship() between them, so a flush would take them in the order of their classes'
        names, and case_files, child_categories, change_history and child_match_keys come before children.
        Then their match keys, and a BulkScope's change history and timeline, as plain rows."""
        records = [child.record for child in children if child.new]
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

    def add_member(self, record: FamilyMemberRecord) -> None:
        self.scope.session.add(record)
        self.members.append(record)

    def add_category(self, record: CategoryRecord) -> None:
        self.scope.session.add(record)
        self.category_rows.append(record)

    def overlapping(self, category: str, valid_from: date, valid_to: date | None) -> bool:
        """A row of this category whose period overlaps valid_from..valid_to (None: open-ended)."""
        return any(
            row.category == category
            and (row.valid_to is None or row.valid_to >= valid_from)
            and (valid_to is None or row.valid_from <= valid_to)
            for row in self.category_rows
        )

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
        """store_match_keys from what is known of the child here. A new child has no keys to replace, and
        its keys are written with its record (write_records)."""
        if self.new:
            self._match_keys = match_key_digests(blind_index, self.record, guardian_names(self.members))
            return
        self.scope.session.execute(delete(ChildMatchKey).where(ChildMatchKey.child_id == self.record.id))
        if self.record.merged_into is None:
            add_match_keys(self.scope, blind_index, self.record, guardian_names(self.members))
