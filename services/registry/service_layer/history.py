"""ListChanges: the change history read. What changed in a record, as JSON-ready [before, after] pairs, is
domain/changes.py; the registry's unit of work keeps the entries (ports.ChangeTracker), and `Scope.record_change`
for the use cases not moved to it yet.
"""

from __future__ import annotations

from sqlalchemy import select

from services.registry.adapters.orm import ChangeRecord
from services.registry.service_layer.access import READER_ROLES, require_purpose
from services.registry.service_layer.use_cases import CaseworkUseCases
from services.registry.service_layer.views import ChangeView


class ChangeHistoryUseCases(CaseworkUseCases):
    """ListChanges: the child's change history, read (audited)."""

    def list_changes(
        self, child_id: str, purpose: str, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[ChangeView], str]:
        """The child's change history, oldest first, with the records merged into it (audited)."""
        purpose = require_purpose(purpose, "this change history")
        size = min(max(page_size or 100, 1), 500)
        after = int(page_token) if page_token.isdigit() else 0
        with self._scope(READER_ROLES) as scope:
            child = scope.child(child_id)
            ids = [child.id, *scope.merged_ids(child.id)]
            rows = list(
                scope.session.scalars(
                    select(ChangeRecord)
                    .where(
                        ChangeRecord.tenant_id == scope.tenant, ChangeRecord.child_id.in_(ids), ChangeRecord.id > after
                    )
                    .order_by(ChangeRecord.id)
                    .limit(size + 1)
                )
            )
            more = len(rows) > size
            rows = rows[:size]
            scope.audit("read_change_history", "case_file", scope.case_file(child.id).id, purpose)
            scope.commit()
            views = [
                ChangeView(r.at, r.actor, r.role, r.entity_type, r.entity_id, r.action, dict(r.changes)) for r in rows
            ]
            return views, (str(rows[-1].id) if more else "")
