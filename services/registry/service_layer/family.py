"""The child's family and guardians: AddFamilyMember, UpdateFamilyMember, RemoveFamilyMember, on the registry's
ports (the Child aggregate, domain/child_record.py)."""

from __future__ import annotations

from platform_runtime.db import new_id
from services.registry.domain.child_record import Child
from services.registry.domain.family import FamilyMember, FamilyMemberEntry, check_member
from services.registry.service_layer.access import CASEWORK_ROLES
from services.registry.service_layer.category_entries import categories_rederived
from services.registry.service_layer.inputs import LONG_TEXT, clean_text
from services.registry.service_layer.match_keys import child_match_keys
from services.registry.service_layer.ports import RegistryUnitOfWork
from services.registry.service_layer.use_cases import CaseworkUseCases
from services.registry.service_layer.views import FamilyMemberView


class FamilyUseCases(CaseworkUseCases):
    def add_family_member(self, child_id: str, facts: FamilyMember) -> tuple[FamilyMemberView, tuple[str, ...]]:
        check_member(facts)
        with self._work(CASEWORK_ROLES) as uow:
            child = uow.children.get(child_id)
            before = child.current_categories(uow.today)
            member = child.add_member(new_id(), facts, uow.now)
            categories = self._family_changed(uow, child, before)
            uow.commit()
            return family_view(member), categories

    def update_family_member(self, member_id: str, facts: FamilyMember) -> tuple[FamilyMemberView, tuple[str, ...]]:
        """Replaces the member's facts; the ones replaced stay in the change history."""
        check_member(facts)
        with self._work(CASEWORK_ROLES) as uow:
            child = uow.children.with_member(member_id)
            before = child.current_categories(uow.today)
            member = child.update_member(member_id, facts)
            categories = self._family_changed(uow, child, before)
            uow.commit()
            return family_view(member), categories

    def remove_family_member(self, member_id: str, reason: str) -> tuple[str, ...]:
        reason = clean_text(reason, "reason", max_chars=LONG_TEXT, required=True)
        with self._work(CASEWORK_ROLES) as uow:
            child = uow.children.with_member(member_id)
            before = child.current_categories(uow.today)
            child.remove_member(member_id, reason)
            categories = self._family_changed(uow, child, before)
            uow.commit()
            return categories

    def _family_changed(self, uow: RegistryUnitOfWork, child: Child, before: tuple[str, ...]) -> tuple[str, ...]:
        """Guardians' names are match keys, and parents' situations decide derived categories."""
        uow.children.replace_match_keys(child.child_id, child_match_keys(self._blind_index, child))
        return categories_rederived(uow, child, before)


def family_view(member: FamilyMemberEntry) -> FamilyMemberView:
    return FamilyMemberView(member.member_id, member.child_id, member.facts)
