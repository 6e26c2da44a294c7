"""The change history's values: what changed in a record, as JSON-ready [before, after] pairs
(`Scope.record_change` keeps them).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import date

from sqlalchemy import select

from services.registry.adapters.orm import ChangeRecord
from services.registry.service_layer.scope import READER_ROLES, CaseworkUseCases, require_purpose
from services.registry.service_layer.views import ChangeView

# The case file's fields as the change history shows them.
CASE_FIELDS = (
    "status",
    "status_reason",
    "responsible_person",
    "social_worker",
    "child_director",
    "responsible_user_id",
    "social_worker_user_id",
    "child_director_user_id",
    "risk_level",
)


def jsonable(value: object) -> object:
    """A value as the change history stores it (JSON): codes by value, dates as ISO text."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def field_changes(before: Mapping[str, object], after: Mapping[str, object]) -> dict[str, list[object]]:
    """{field: [before, after]} for every field whose value differs; a missing field counts as None."""
    changed: dict[str, list[object]] = {}
    for name in dict.fromkeys([*before, *after]):
        old, new = jsonable(before.get(name)), jsonable(after.get(name))
        if old != new:
            changed[name] = [old, new]
    return changed


def columns(record: object, names: Iterable[str]) -> dict[str, object]:
    return {name: getattr(record, name) for name in names}


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
