"""A child's difficulty categories: the entries staff type in or the rules derive, which of them are current,
and what deriving them again from the child and family as they are today changes (`rederive`: which rule-based
entries end, change or begin). The rules themselves are rules.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Generic, Protocol, TypeVar

from services.registry.domain import rules
from services.registry.domain.codes import CategorySource, DifficultyCategory
from services.registry.domain.events import ChildCategoriesChanged

# The fields of an entry the change history follows.
CATEGORY_FIELDS = (
    "category",
    "source",
    "evidence",
    "evidence_document",
    "valid_from",
    "valid_to",
    "rule_code",
    "reason",
)
_CATEGORY_ORDER = {category.value: index for index, category in enumerate(DifficultyCategory)}


def in_code_order(codes: Iterable[str]) -> tuple[str, ...]:
    """Category codes, each once, in the code list's order."""
    return tuple(sorted(set(codes), key=_CATEGORY_ORDER.__getitem__))


class CategoryRow(Protocol):
    """An entry as the derivation reads it: a CategoryEntry, or the ORM row the survey's bulk path holds."""

    @property
    def category(self) -> str: ...
    @property
    def valid_from(self) -> date: ...
    @property
    def valid_to(self) -> date | None: ...
    @property
    def rule_code(self) -> str: ...
    @property
    def reason(self) -> str: ...


def is_current(row: CategoryRow, today: date) -> bool:
    """The category applies on `today` (valid_to is the last day)."""
    return row.valid_from <= today and (row.valid_to is None or row.valid_to >= today)


@dataclass
class CategoryEntry:
    """One period of one category for a child, typed in by staff (with its evidence) or derived by a rule."""

    entry_id: str
    child_id: str
    category: DifficultyCategory
    source: CategorySource
    valid_from: date
    valid_to: date | None
    recorded_by: str
    recorded_at: datetime
    evidence: str = ""
    evidence_document: str = ""
    rule_code: str = ""
    reason: str = ""

    @property
    def history_key(self) -> tuple[str, str, str]:
        return (self.child_id, "category", self.entry_id)

    def history_values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in CATEGORY_FIELDS}

    def overlaps(self, category: DifficultyCategory, valid_from: date, valid_to: date | None) -> bool:
        """Of `category`, over a period that overlaps valid_from..valid_to (None: open-ended)."""
        return (
            self.category == category
            and (self.valid_to is None or self.valid_to >= valid_from)
            and (valid_to is None or self.valid_from <= valid_to)
        )


R = TypeVar("R", bound=CategoryRow)


@dataclass
class Rederivation(Generic[R]):
    """What deriving again changes among the rule-based entries still open."""

    lapsed: list[R] = field(default_factory=list)  # their rule no longer applies: see `lapse`
    changed: list[tuple[R, rules.DerivedCategory]] = field(default_factory=list)  # same category, rule or reason
    begun: list[rules.DerivedCategory] = field(default_factory=list)  # newly derived: an entry from today


def rederive(snapshot: rules.ChildSnapshot | None, open_rule_rows: Iterable[R], today: date) -> Rederivation[R]:
    """The rule-based categories derived from `snapshot` (None: nothing can be derived) set against the
    child's rule-based entries still open."""
    derived = {d.category: d for d in rules.evaluate(rules.DEFAULT_RULES, snapshot, today)} if snapshot else {}
    found: Rederivation[R] = Rederivation()
    for row in open_rule_rows:
        still = derived.pop(DifficultyCategory(row.category), None)
        if still is None:
            found.lapsed.append(row)
        elif (still.rule_code, still.reason) != (row.rule_code, row.reason):
            found.changed.append((row, still))
    found.begun = list(derived.values())
    return found


def lapse(valid_from: date, today: date) -> date | None:
    """A rule no longer applies: its entry ends yesterday (the day returned), or never was if it began
    today (None: the entry goes)."""
    yesterday = today - timedelta(days=1)
    return None if yesterday < valid_from else yesterday


def categories_changed(child_id: str, before: tuple[str, ...], after: tuple[str, ...]) -> ChildCategoriesChanged | None:
    """ChildCategoriesChanged, when the child's current categories (typed or derived) are not `before`."""
    if after == before:
        return None
    return ChildCategoriesChanged(
        child_id,
        categories=after,
        added=tuple(c for c in after if c not in before),
        removed=tuple(c for c in before if c not in after),
    )
