"""Merging a duplicate record into the surviving one, and undoing it."""

from __future__ import annotations

from platform_runtime import errors
from platform_runtime.db import new_id
from platform_runtime.tenancy import require_role
from services.registry.adapters.orm import ChildRecord
from services.registry.domain.child import ChildView
from services.registry.domain.events import ChildrenMerged, ChildrenUnmerged
from services.registry.service_layer.access import MERGE_ROLES
from services.registry.service_layer.child_views import child_views
from services.registry.service_layer.match_keys import store_match_keys
from services.registry.service_layer.scope import Scope
from services.registry.service_layer.use_cases import RegistryUseCases
from services.registry.service_layer.visit_schedule import schedule_visits


class MergeUseCases(RegistryUseCases):
    def merge_children(self, surviving_id: str, merged_id: str, reason: str) -> ChildView:
        """The duplicate is kept but hidden (no match keys, not listed, no visits due); its id resolves to
        the survivor, whose case file shows both timelines. Nothing else moves, so unmerging restores all."""
        caller = require_role(*MERGE_ROLES)
        reason = _reason(reason)
        if surviving_id == merged_id:
            raise errors.InvalidInput("a record cannot be merged into itself", "merged_child_id")
        with self._unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            survivor = scope.child(surviving_id, follow_merges=False)
            duplicate = scope.child(merged_id, follow_merges=False)
            if survivor.merged_into is not None:
                raise errors.Conflict("the surviving record was itself merged: merge into the record it resolves to")
            if duplicate.merged_into is not None:
                raise errors.Conflict("this record is already merged; unmerge it first")
            duplicate.merged_into, duplicate.merged_at = survivor.id, scope.now
            self._after_merge_change(scope, duplicate, survivor, "merged", reason)
            scope.emit(ChildrenMerged(survivor.id, duplicate.id, reason, merged_by=caller.user_id))
            (view,) = child_views(scope, [survivor])
            uow.commit()
            return view

    def unmerge_children(self, merged_id: str, reason: str) -> ChildView:
        caller = require_role(*MERGE_ROLES)
        reason = _reason(reason)
        with self._unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            duplicate = scope.child(merged_id, follow_merges=False)
            if duplicate.merged_into is None:
                raise errors.Conflict("this record is not merged")
            survivor = scope.child(duplicate.merged_into, follow_merges=False)
            duplicate.merged_into, duplicate.merged_at = None, None
            self._after_merge_change(scope, duplicate, survivor, "unmerged", reason)
            scope.emit(ChildrenUnmerged(survivor.id, duplicate.id, reason, unmerged_by=caller.user_id))
            (view,) = child_views(scope, [duplicate])
            uow.commit()
            return view

    def _after_merge_change(
        self, scope: Scope, duplicate: ChildRecord, survivor: ChildRecord, action: str, why: str
    ) -> None:
        """What a merge and an unmerge both keep up to date and on record."""
        store_match_keys(scope, self._blind_index, duplicate)
        case = scope.registry.case_files.for_child(duplicate.id)
        schedule_visits(scope.registry, case, merged=duplicate.merged_into is not None)
        scope.registry.case_files.save(case)
        pointer: list[object] = [survivor.id, None] if action == "unmerged" else [None, survivor.id]
        scope.record_change(
            duplicate.id, "child", duplicate.id, action, {"merged_into": pointer, "reason": [None, why]}
        )
        scope.record_change(
            survivor.id, "child", survivor.id, action, {"merged_child_id": [None, duplicate.id], "reason": [None, why]}
        )
        scope.audit("merge_children" if action == "merged" else "unmerge_children", "child", duplicate.id, why)
        summary = f"{'合并' if action == 'merged' else '撤销合并'} {action} duplicate record {duplicate.id}: {why}"
        for child_id in (survivor.id, duplicate.id):
            scope.add_timeline(child_id, action, summary, "registry", new_id())


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise errors.InvalidInput("say why (it is recorded)", "reason")
    return reason
