"""Difficulty categories on ORM rows: each child's current ones (for the register's views), and the rule-based
ones derived again for a child recorded by RegisterChild or the survey's bulk path (child_in_work.py). The use
cases on the registry's ports derive them on the Child aggregate, from the same plan (domain/categories.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import inspect as inspect_state
from sqlalchemy import or_, select

from platform_runtime.db import new_id
from services.registry.adapters.orm import CategoryRecord, ChildRecord
from services.registry.domain.categories import (
    CATEGORY_FIELDS,
    categories_changed,
    in_code_order,
    lapse,
    rederive,
)
from services.registry.domain.changes import columns, field_changes
from services.registry.domain.codes import CategorySource
from services.registry.domain.family import FamilyMember, child_snapshot
from services.registry.service_layer.scope import Scope


def current_categories(scope: Scope, child_ids: Collection[str]) -> dict[str, tuple[str, ...]]:
    """Each child's categories valid today, in the code list's order."""
    if not child_ids:
        return {}
    rows = scope.session.execute(
        select(CategoryRecord.child_id, CategoryRecord.category).where(
            CategoryRecord.tenant_id == scope.tenant,
            CategoryRecord.child_id.in_(list(child_ids)),
            CategoryRecord.valid_from <= scope.today,
            or_(CategoryRecord.valid_to.is_(None), CategoryRecord.valid_to >= scope.today),
        )
    )
    found: dict[str, set[str]] = {}
    for child_id, category in rows:
        found.setdefault(child_id, set()).add(category)
    return {child_id: in_code_order(codes) for child_id, codes in found.items()}


def derive_categories(
    scope: Scope, child: ChildRecord, members: Sequence[FamilyMember], open_rule_rows: Iterable[CategoryRecord]
) -> tuple[list[CategoryRecord], list[CategoryRecord]]:
    """The rule-based categories derived again from the child and its family (`members`) as they are today,
    set against the child's rule-based rows still open (domain/categories.rederive): a row whose rule no
    longer applies ends, one whose rule or reason changed is updated, a newly derived category gets a row;
    each change goes into the change history. Returns the rows removed (begun today, so they never were) and
    the rows added. (The survey's bulk path and the periodic derivation; the Child aggregate applies the
    same `rederive` to its entries.)"""
    snapshot = child_snapshot(
        birth_date=child.birth_date,
        household_registration_code=child.household_division_code,
        district_code=scope.tenant[:6],
        members=members,
        on=scope.today,
    )
    found = rederive(snapshot, open_rule_rows, scope.today)
    removed = [row for row in found.lapsed if _end_derived(scope, row)]
    for row, still in found.changed:
        old = columns(row, CATEGORY_FIELDS)
        row.rule_code, row.reason = still.rule_code, still.reason
        scope.record_change(child.id, "category", row.id, "updated", field_changes(old, columns(row, CATEGORY_FIELDS)))
    added: list[CategoryRecord] = []
    for new in found.begun:
        row = CategoryRecord(
            id=new_id(),
            tenant_id=scope.tenant,
            child_id=child.id,
            category=new.category.value,
            source=CategorySource.RULE.value,
            evidence="",
            evidence_document="",
            # The day the rule found it: the facts may have held earlier, unknown to the register.
            valid_from=scope.today,
            valid_to=None,
            rule_code=new.rule_code,
            reason=new.reason,
            recorded_by=scope.caller.user_id,
            recorded_at=scope.now,
        )
        scope.session.add(row)
        scope.record_change(child.id, "category", row.id, "derived", field_changes({}, columns(row, CATEGORY_FIELDS)))
        added.append(row)
    return removed, added


def announce_categories(scope: Scope, child_id: str, before: tuple[str, ...], after: tuple[str, ...]) -> None:
    """ChildCategoriesChanged, when the child's current categories (typed or derived) are not `before`."""
    event = categories_changed(child_id, before, after)
    if event is not None:
        scope.emit(event)


def _end_derived(scope: Scope, row: CategoryRecord) -> bool:
    """A rule no longer applies: the category ended yesterday, or never was if it began today (True: the
    row is gone)."""
    last_day = lapse(row.valid_from, scope.today)
    if last_day is None:
        if inspect_state(row).pending:  # added in this same transaction and not written yet
            scope.session.expunge(row)
        else:
            scope.session.delete(row)
        scope.record_change(
            row.child_id, "category", row.id, "removed", field_changes(columns(row, CATEGORY_FIELDS), {})
        )
        return True
    old = columns(row, CATEGORY_FIELDS)
    row.valid_to = last_day
    scope.record_change(row.child_id, "category", row.id, "ended", field_changes(old, columns(row, CATEGORY_FIELDS)))
    return False
