"""Merging a duplicate record into the surviving one, and undoing it, on the registry's ports (the Child
aggregate, domain/child_record.py)."""

from __future__ import annotations

from platform_runtime import errors
from platform_runtime.db import new_id
from services.registry.domain.child import ChildView
from services.registry.domain.child_record import Child
from services.registry.domain.events import ChildrenMerged, ChildrenUnmerged
from services.registry.service_layer.access import MERGE_ROLES
from services.registry.service_layer.child_views import aggregate_view
from services.registry.service_layer.match_keys import child_match_keys
from services.registry.service_layer.ports import RegistryUnitOfWork
from services.registry.service_layer.use_cases import RegistryUseCases
from services.registry.service_layer.visit_schedule import schedule_visits


class MergeUseCases(RegistryUseCases):
    def merge_children(self, surviving_id: str, merged_id: str, reason: str) -> ChildView:
        """The duplicate is kept but hidden (no match keys, not listed, no visits due); its id resolves to
        the survivor, whose case file shows both timelines. Nothing else moves, so unmerging restores all."""
        with self._work(MERGE_ROLES) as uow:
            reason = _reason(reason)
            if surviving_id == merged_id:
                raise errors.InvalidInput("a record cannot be merged into itself", "merged_child_id")
            # Both held (in id order) before either is read: the same pair merged both ways at once neither
            # deadlocks nor makes a loop, as the survivor's `merged_into` is read after the other merge's commit.
            uow.children.hold((surviving_id, merged_id))
            survivor = uow.children.get(surviving_id, follow_merges=False)
            duplicate = uow.children.get(merged_id, follow_merges=False)
            duplicate.merge_into(survivor, uow.now, reason)
            self._after_merge_change(uow, duplicate, survivor, "merged", reason)
            uow.emit(ChildrenMerged(survivor.child_id, duplicate.child_id, merged_by=uow.caller.user_id))
            view = aggregate_view(survivor, uow.tenant, survivor.current_categories(uow.today))
            uow.commit()
            return view

    def unmerge_children(self, merged_id: str, reason: str) -> ChildView:
        with self._work(MERGE_ROLES) as uow:
            reason = _reason(reason)
            # The pair held in id order as a merge holds it (a merge of the same two at once waits, not deadlocks);
            # the duplicate is written, so a change to it since this first look is refused at the save.
            uow.children.hold((merged_id, uow.children.current_id(merged_id)))
            duplicate = uow.children.get(merged_id, follow_merges=False)
            if duplicate.merged_into is None:
                raise errors.Conflict("this record is not merged")
            survivor = uow.children.get(duplicate.merged_into, follow_merges=False)
            duplicate.unmerge_from(survivor, reason)
            self._after_merge_change(uow, duplicate, survivor, "unmerged", reason)
            uow.emit(ChildrenUnmerged(survivor.child_id, duplicate.child_id, unmerged_by=uow.caller.user_id))
            view = aggregate_view(duplicate, uow.tenant, duplicate.current_categories(uow.today))
            uow.commit()
            return view

    def _after_merge_change(
        self, uow: RegistryUnitOfWork, duplicate: Child, survivor: Child, action: str, why: str
    ) -> None:
        """What a merge and an unmerge both keep up to date and on record."""
        uow.children.replace_match_keys(duplicate.child_id, child_match_keys(self._blind_index, duplicate))
        case = uow.case_files.for_child(duplicate.child_id)
        schedule_visits(uow, case, merged=duplicate.merged_into is not None)
        uow.case_files.save(case)
        uow.children.save(duplicate)
        uow.children.save(survivor)
        uow.audit("merge_children" if action == "merged" else "unmerge_children", "child", duplicate.child_id, why)
        summary = (
            f"{'合并' if action == 'merged' else '撤销合并'} {action} duplicate record {duplicate.child_id}: {why}"
        )
        for child_id in (survivor.child_id, duplicate.child_id):
            uow.add_timeline(child_id, action, summary, new_id())


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise errors.InvalidInput("say why (it is recorded)", "reason")
    return reason
