"""The child's family and guardians: AddFamilyMember, UpdateFamilyMember, RemoveFamilyMember."""

from __future__ import annotations

from platform_runtime import errors
from platform_runtime.db import new_id
from services.registry.adapters.orm import ChildRecord, FamilyMemberRecord
from services.registry.domain.changes import columns, field_changes
from services.registry.domain.family import FamilyMember, check_member
from services.registry.service_layer.access import CASEWORK_ROLES
from services.registry.service_layer.categories import categories_of, refresh_categories
from services.registry.service_layer.child_in_work import ChildInWork
from services.registry.service_layer.family_facts import FAMILY_FIELDS, member_facts, write_member_facts
from services.registry.service_layer.inputs import LONG_TEXT, clean_text
from services.registry.service_layer.match_keys import store_match_keys
from services.registry.service_layer.scope import Scope
from services.registry.service_layer.use_cases import CaseworkUseCases
from services.registry.service_layer.views import FamilyMemberView


class FamilyUseCases(CaseworkUseCases):
    def add_family_member(self, child_id: str, facts: FamilyMember) -> tuple[FamilyMemberView, tuple[str, ...]]:
        check_member(facts)
        with self._scope(CASEWORK_ROLES) as scope:
            child = ChildInWork.load(scope, scope.child(child_id))
            record, categories = record_family_member(scope, child, facts)
            child.store_match_keys(self._blind_index)  # guardians' names are match keys
            scope.commit()
            return _family_view(record), categories

    def update_family_member(self, member_id: str, facts: FamilyMember) -> tuple[FamilyMemberView, tuple[str, ...]]:
        """Replaces the member's facts; the ones replaced stay in the change history."""
        check_member(facts)
        with self._scope(CASEWORK_ROLES) as scope:
            record = _member(scope, member_id)
            child = scope.child(record.child_id, follow_merges=False)
            before = categories_of(scope, child.id)
            old = columns(record, FAMILY_FIELDS)
            write_member_facts(record, facts)
            scope.record_change(
                child.id, "family_member", record.id, "updated", field_changes(old, columns(record, FAMILY_FIELDS))
            )
            categories = self._family_changed(scope, child, before)
            scope.commit()
            return _family_view(record), categories

    def remove_family_member(self, member_id: str, reason: str) -> tuple[str, ...]:
        reason = clean_text(reason, "reason", max_chars=LONG_TEXT, required=True)
        with self._scope(CASEWORK_ROLES) as scope:
            record = _member(scope, member_id)
            child = scope.child(record.child_id, follow_merges=False)
            before = categories_of(scope, child.id)
            changes = field_changes(columns(record, FAMILY_FIELDS), {})
            scope.session.delete(record)
            scope.record_change(child.id, "family_member", record.id, "removed", {**changes, "reason": [None, reason]})
            categories = self._family_changed(scope, child, before)
            scope.commit()
            return categories

    def _family_changed(self, scope: Scope, child: ChildRecord, before: tuple[str, ...]) -> tuple[str, ...]:
        """Guardians' names are match keys, and parents' situations decide derived categories."""
        store_match_keys(scope, self._blind_index, child)
        return refresh_categories(scope, child, before)


def record_family_member(
    scope: Scope, child: ChildInWork, facts: FamilyMember
) -> tuple[FamilyMemberRecord, tuple[str, ...]]:
    """AddFamilyMember's work inside the caller's transaction: the member, its change history, and the
    categories derived again (parents' situations decide some) and announced. The caller has checked the
    facts (`check_member`) and stores the child's match keys once its family is all in."""
    before = child.categories()
    record = FamilyMemberRecord(id=new_id(), tenant_id=scope.tenant, child_id=child.child_id, created_at=scope.now)
    write_member_facts(record, facts)
    child.add_member(record)
    scope.record_change(
        child.child_id, "family_member", record.id, "created", field_changes({}, columns(record, FAMILY_FIELDS))
    )
    return record, child.refresh_categories(before)


def family_views(scope: Scope, child_id: str) -> list[FamilyMemberView]:
    return [_family_view(record) for record in scope.family(child_id)]


def _member(scope: Scope, member_id: str) -> FamilyMemberRecord:
    record = scope.session.get(FamilyMemberRecord, member_id) if member_id else None
    if record is None or record.tenant_id != scope.tenant:
        raise errors.NotFound("no such family member in this town")
    return record


def _family_view(record: FamilyMemberRecord) -> FamilyMemberView:
    return FamilyMemberView(record.id, record.child_id, member_facts(record))
