"""Difficulty categories as staff record them: AddCategory, EndCategory, and the periodic derivation again, on
the registry's ports (the Child aggregate, domain/child_record.py; the rules: domain/categories.py, rules.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from platform_runtime import errors
from platform_runtime.consumer import system_principal
from platform_runtime.db import new_id
from services.registry.domain.categories import CategoryEntry, categories_changed, is_current
from services.registry.domain.child_record import Child
from services.registry.domain.codes import CategorySource, DifficultyCategory, parse_code
from services.registry.service_layer.access import CASEWORK_ROLES
from services.registry.service_layer.commands import NewCategory
from services.registry.service_layer.inputs import LONG_TEXT, clean_text
from services.registry.service_layer.ports import RegistryUnitOfWork
from services.registry.service_layer.use_cases import CaseworkUseCases
from services.registry.service_layer.views import CategoryView

REDERIVE_BATCH = 200


class CategoryUseCases(CaseworkUseCases):
    def add_category(self, command: NewCategory) -> tuple[CategoryView, tuple[str, ...]]:
        """A category typed in by staff, with where it came from and its evidence. Derived ones are refused:
        they follow from the facts (family situations, age, registration), so staff record those instead."""
        checked = check_category(command, self._today())
        with self._work(CASEWORK_ROLES) as uow:
            child = uow.children.get(command.child_id)
            before = child.current_categories(uow.today)
            entry = checked.entry(new_id(), child.child_id, uow.caller.user_id, uow.now)
            child.add_category(entry)
            categories = categories_rederived(uow, child, before)
            uow.commit()
            return category_view(entry, uow.today), categories

    def end_category(self, entry_id: str, valid_to: date | None, reason: str) -> tuple[CategoryView, tuple[str, ...]]:
        if valid_to is None:
            raise errors.InvalidInput("the last day the category applied is required", "valid_to")
        reason = clean_text(reason, "reason", max_chars=LONG_TEXT, required=True)
        with self._work(CASEWORK_ROLES) as uow:
            child = uow.children.with_category_entry(entry_id)
            before = child.current_categories(uow.today)
            entry = child.end_category(entry_id, valid_to, reason)
            categories = categories_rederived(uow, child, before)
            uow.commit()
            return category_view(entry, uow.today), categories

    def rederive_categories(self, tenant: str, after_child_id: str = "") -> str:
        """Derive the categories of one batch of the town's children again: ages and periods move with the
        calendar (a child turns 3 or nears 18, a parent's absence reaches 6 months) without any record
        changing. Returns the batch's last child id to continue from, "" when the town is done."""
        with self._store.unit_of_work(tenant) as uow:
            uow.act_as(system_principal(tenant, "registry-rules"), today=self._today(), now=self._now())
            child_ids = uow.children.ids_after(after_child_id, REDERIVE_BATCH)
            for child_id in child_ids:
                child = uow.children.get(child_id)
                categories_rederived(uow, child, child.current_categories(uow.today))
            uow.commit()
            return child_ids[-1] if len(child_ids) == REDERIVE_BATCH else ""


def categories_rederived(uow: RegistryUnitOfWork, child: Child, before: tuple[str, ...]) -> tuple[str, ...]:
    """After a change to the child: its rule-based categories derived again, the child saved, and
    ChildCategoriesChanged if its current categories are no longer `before`. Returns them."""
    child.rederive(
        today=uow.today, district_code=uow.tenant[:6], recorded_by=uow.caller.user_id, at=uow.now, new_id=new_id
    )
    uow.children.save(child)
    after = child.current_categories(uow.today)
    event = categories_changed(child.child_id, before, after)
    if event is not None:
        uow.emit(event)
    return after


@dataclass(frozen=True)
class CheckedCategory:
    """A typed-in category as AddCategory accepts it (`check_category`)."""

    category: DifficultyCategory
    source: CategorySource
    evidence: str
    evidence_document: str
    valid_from: date
    valid_to: date | None

    def entry(self, entry_id: str, child_id: str, recorded_by: str, at: datetime) -> CategoryEntry:
        return CategoryEntry(
            entry_id,
            child_id,
            self.category,
            self.source,
            valid_from=self.valid_from,
            valid_to=self.valid_to,
            recorded_by=recorded_by,
            recorded_at=at,
            evidence=self.evidence,
            evidence_document=self.evidence_document,
        )


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


def category_view(entry: CategoryEntry, today: date) -> CategoryView:
    return CategoryView(
        entry_id=entry.entry_id,
        child_id=entry.child_id,
        category=entry.category,
        source=entry.source,
        evidence=entry.evidence,
        evidence_document=entry.evidence_document,
        valid_from=entry.valid_from,
        valid_to=entry.valid_to,
        rule_code=entry.rule_code,
        reason=entry.reason,
        recorded_by=entry.recorded_by,
        recorded_at=entry.recorded_at,
        current=is_current(entry, today),
    )
