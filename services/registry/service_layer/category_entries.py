"""Difficulty categories as staff record them: AddCategory, EndCategory, and the periodic derivation again
(the rules themselves: categories.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.consumer import system_principal
from platform_runtime.db import new_id
from services.registry.adapters.orm import CategoryRecord, ChildRecord
from services.registry.domain.changes import columns, field_changes
from services.registry.domain.codes import CategorySource, DifficultyCategory, parse_code
from services.registry.service_layer.access import CASEWORK_ROLES
from services.registry.service_layer.categories import CATEGORY_FIELDS, categories_of, refresh_categories
from services.registry.service_layer.child_in_work import ChildInWork
from services.registry.service_layer.commands import NewCategory
from services.registry.service_layer.inputs import LONG_TEXT, clean_text
from services.registry.service_layer.scope import Scope
from services.registry.service_layer.use_cases import CaseworkUseCases
from services.registry.service_layer.views import CategoryView

REDERIVE_BATCH = 200


class CategoryUseCases(CaseworkUseCases):
    def add_category(self, command: NewCategory) -> tuple[CategoryView, tuple[str, ...]]:
        """A category typed in by staff, with where it came from and its evidence. Derived ones are refused:
        they follow from the facts (family situations, age, registration), so staff record those instead."""
        checked = check_category(command, self._today())
        with self._scope(CASEWORK_ROLES) as scope:
            child = ChildInWork.load(scope, scope.child(command.child_id))
            record, categories = record_category(scope, child, checked)
            scope.commit()
            return _category_view(record, scope.today), categories

    def end_category(self, entry_id: str, valid_to: date | None, reason: str) -> tuple[CategoryView, tuple[str, ...]]:
        if valid_to is None:
            raise errors.InvalidInput("the last day the category applied is required", "valid_to")
        reason = clean_text(reason, "reason", max_chars=LONG_TEXT, required=True)
        with self._scope(CASEWORK_ROLES) as scope:
            record = scope.session.get(CategoryRecord, entry_id) if entry_id else None
            if record is None or record.tenant_id != scope.tenant:
                raise errors.NotFound("no such category entry in this town")
            if record.source == CategorySource.RULE.value:
                raise errors.Conflict("a derived category ends when its rule no longer applies: correct the facts")
            if valid_to < record.valid_from:
                raise errors.InvalidInput("ends before it starts", "valid_to")
            child = scope.child(record.child_id, follow_merges=False)
            before = categories_of(scope, child.id)
            old = columns(record, CATEGORY_FIELDS)
            record.valid_to = valid_to
            changes = field_changes(old, columns(record, CATEGORY_FIELDS))
            scope.record_change(child.id, "category", record.id, "ended", {**changes, "reason": [None, reason]})
            categories = refresh_categories(scope, child, before)
            scope.commit()
            return _category_view(record, scope.today), categories

    def rederive_categories(self, tenant: str, after_child_id: str = "") -> str:
        """Derive the categories of one batch of the town's children again: ages and periods move with the
        calendar (a child turns 3 or nears 18, a parent's absence reaches 6 months) without any record
        changing. Returns the batch's last child id to continue from, "" when the town is done."""
        with self._database.unit_of_work(tenant) as uow:
            scope = Scope(uow, system_principal(tenant, "registry-rules"), today=self._today(), now=self._now())
            children = list(
                uow.session.scalars(
                    select(ChildRecord)
                    .where(
                        ChildRecord.tenant_id == tenant,
                        ChildRecord.merged_into.is_(None),
                        ChildRecord.id > after_child_id,
                    )
                    .order_by(ChildRecord.id)
                    .limit(REDERIVE_BATCH)
                )
            )
            for child in children:
                refresh_categories(scope, child, categories_of(scope, child.id))
            uow.commit()
            return children[-1].id if len(children) == REDERIVE_BATCH else ""


@dataclass(frozen=True)
class CheckedCategory:
    """A typed-in category as AddCategory accepts it (`check_category`)."""

    category: DifficultyCategory
    source: CategorySource
    evidence: str
    evidence_document: str
    valid_from: date
    valid_to: date | None


def check_category(command: NewCategory, today: date) -> CheckedCategory:
    """AddCategory's checks of the command itself: a category typed in (not a derived one) from a typed-in
    source, with its evidence, over a period (from `today` unless given) that does not end before it starts."""
    category = parse_code(DifficultyCategory, command.category, "category")
    if category.is_derived:
        raise errors.InvalidInput(
            "is derived by rules from the child's and family's facts and cannot be typed in", "category"
        )
    source = parse_code(CategorySource, command.source, "source")
    if not source.typed_in:
        raise errors.InvalidInput("'rule' is the source of derived categories only", "source")
    evidence = clean_text(command.evidence, "evidence", max_chars=LONG_TEXT)
    document = clean_text(command.evidence_document, "evidence_document", max_chars=200)
    if not evidence and not document:
        raise errors.InvalidInput("a category is recorded with its evidence (text or document)", "evidence")
    valid_from = command.valid_from or today
    if command.valid_to is not None and command.valid_to < valid_from:
        raise errors.InvalidInput("ends before it starts", "valid_to")
    return CheckedCategory(category, source, evidence, document, valid_from, command.valid_to)


def record_category(
    scope: Scope, child: ChildInWork, checked: CheckedCategory
) -> tuple[CategoryRecord, tuple[str, ...]]:
    """AddCategory's work inside the caller's transaction: the category's row (refused when the child has it
    over an overlapping period), its change history, and the categories derived again and announced."""
    if child.overlapping(checked.category.value, checked.valid_from, checked.valid_to):
        raise errors.Conflict("this category is already recorded for the child over an overlapping period")
    before = child.categories()
    record = CategoryRecord(
        id=new_id(),
        tenant_id=scope.tenant,
        child_id=child.child_id,
        category=checked.category.value,
        source=checked.source.value,
        evidence=checked.evidence,
        evidence_document=checked.evidence_document,
        valid_from=checked.valid_from,
        valid_to=checked.valid_to,
        rule_code="",
        reason="",
        recorded_by=scope.caller.user_id,
        recorded_at=scope.now,
    )
    child.add_category(record)
    scope.record_change(
        child.child_id, "category", record.id, "created", field_changes({}, columns(record, CATEGORY_FIELDS))
    )
    return record, child.refresh_categories(before)


def category_views(scope: Scope, child_id: str) -> list[CategoryView]:
    rows = scope.session.scalars(
        select(CategoryRecord)
        .where(CategoryRecord.tenant_id == scope.tenant, CategoryRecord.child_id == child_id)
        .order_by(CategoryRecord.valid_from, CategoryRecord.recorded_at, CategoryRecord.id)
    )
    return [_category_view(row, scope.today) for row in rows]


def _category_view(record: CategoryRecord, today: date) -> CategoryView:
    return CategoryView(
        entry_id=record.id,
        child_id=record.child_id,
        category=DifficultyCategory(record.category),
        source=CategorySource(record.source),
        evidence=record.evidence,
        evidence_document=record.evidence_document,
        valid_from=record.valid_from,
        valid_to=record.valid_to,
        rule_code=record.rule_code,
        reason=record.reason,
        recorded_by=record.recorded_by,
        recorded_at=record.recorded_at,
        current=record.valid_from <= today and (record.valid_to is None or record.valid_to >= today),
    )
