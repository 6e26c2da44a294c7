"""The child's record as one aggregate: its details, its family members and its category entries, changed
only through its methods, which keep the rules: a member's facts checked, a typed-in category not over a
period it already has, a derived one ended only by its rule, and the rule-based categories derived again
from the child and family as they are (`rederive`).

Each change to a member or an entry is noted in `changes` (created, derived, updated, ended, removed, with
the reason a person gave); the unit of work turns each into one entry of the change history with the fields
that differ (service_layer/ports.ChangeTracker), in the order they were made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from platform_runtime import errors
from services.registry.domain.categories import CategoryEntry, in_code_order, is_current, lapse, rederive
from services.registry.domain.child import CHILD_HISTORY_FIELDS, ChildDetails
from services.registry.domain.codes import CategorySource
from services.registry.domain.family import FamilyMember, FamilyMemberEntry, child_snapshot, guardian_names


@dataclass(frozen=True)
class ChildChange:
    """What happened to a part of the child (None: the record itself, with what is `noted`): `action` is how
    the change history names it."""

    action: str  # created, derived, updated, ended, removed; merged or unmerged for the record
    part: FamilyMemberEntry | CategoryEntry | None
    reason: str = ""  # what a person gave as the reason (a removal, an ended category)
    noted: dict[str, list[object]] = field(default_factory=dict)  # the record's: kept as is

    @property
    def adds(self) -> bool:
        """The part is new (created by staff, or derived by a rule)."""
        return self.action in ("created", "derived")


@dataclass
class Child:
    child_id: str
    details: ChildDetails
    created_at: datetime
    family: list[FamilyMemberEntry] = field(default_factory=list)  # in the order recorded
    categories: list[CategoryEntry] = field(default_factory=list)  # by valid_from, then as recorded
    merged_into: str | None = None
    merged_at: datetime | None = None
    version: int = 1
    changes: list[ChildChange] = field(default_factory=list)  # since read or last saved

    @property
    def history_key(self) -> tuple[str, str, str]:
        return (self.child_id, "child", self.child_id)

    def history_values(self) -> dict[str, object]:
        return {name: getattr(self.details, name) for name in CHILD_HISTORY_FIELDS}

    def current_categories(self, today: date) -> tuple[str, ...]:
        """Its categories valid today, typed in or derived, in the code list's order."""
        return in_code_order(entry.category.value for entry in self.categories if is_current(entry, today))

    def guardian_names(self) -> tuple[str, ...]:
        return guardian_names((m.facts.name, m.facts.guardian, m.facts.relationship) for m in self.family)

    # -- merges -------------------------------------------------------------------------------------------------

    def merge_into(self, survivor: Child, at: datetime, reason: str) -> None:
        """This record is a duplicate of `survivor`: kept but hidden, its id resolving to the survivor."""
        if survivor.merged_into is not None:
            raise errors.Conflict("the surviving record was itself merged: merge into the record it resolves to")
        if self.merged_into is not None:
            raise errors.Conflict("this record is already merged; unmerge it first")
        self.merged_into, self.merged_at = survivor.child_id, at
        self._noted_merge("merged", survivor, reason)

    def unmerge_from(self, survivor: Child, reason: str) -> None:
        if self.merged_into != survivor.child_id:
            raise errors.Conflict("this record is not merged")
        self.merged_into, self.merged_at = None, None
        self._noted_merge("unmerged", survivor, reason)

    def _noted_merge(self, action: str, survivor: Child, reason: str) -> None:
        pointer: list[object] = [None, survivor.child_id] if action == "merged" else [survivor.child_id, None]
        why: list[object] = [None, reason]
        self.changes.append(ChildChange(action, None, noted={"merged_into": pointer, "reason": why}))
        survivor.changes.append(
            ChildChange(action, None, noted={"merged_child_id": [None, self.child_id], "reason": why})
        )

    # -- family -------------------------------------------------------------------------------------------------

    def member(self, member_id: str) -> FamilyMemberEntry:
        for member in self.family:
            if member.member_id == member_id:
                return member
        raise errors.NotFound("no such family member in this town")

    def add_member(self, member_id: str, facts: FamilyMember, at: datetime) -> FamilyMemberEntry:
        """A member whose facts were checked (family.check_member)."""
        member = FamilyMemberEntry(member_id, self.child_id, _trimmed(facts), at)
        self.family.append(member)
        self.changes.append(ChildChange("created", member))
        return member

    def update_member(self, member_id: str, facts: FamilyMember) -> FamilyMemberEntry:
        """Replaces the member's facts (checked); the ones replaced stay in the change history."""
        member = self.member(member_id)
        member.facts = _trimmed(facts)
        self.changes.append(ChildChange("updated", member))
        return member

    def remove_member(self, member_id: str, reason: str) -> None:
        member = self.member(member_id)
        self.family = [m for m in self.family if m is not member]
        self.changes.append(ChildChange("removed", member, reason))

    # -- categories ---------------------------------------------------------------------------------------------

    def add_category(self, entry: CategoryEntry) -> None:
        """A category typed in by staff; refused over a period the child already has it for."""
        if any(e.overlaps(entry.category, entry.valid_from, entry.valid_to) for e in self.categories):
            raise errors.Conflict("this category is already recorded for the child over an overlapping period")
        self.categories.append(entry)
        self.changes.append(ChildChange("created", entry))

    def end_category(self, entry_id: str, valid_to: date, reason: str) -> CategoryEntry:
        """A typed-in category's last day; a derived one ends only when its rule no longer applies."""
        entry = self.category_entry(entry_id)
        if entry.source is CategorySource.RULE:
            raise errors.Conflict("a derived category ends when its rule no longer applies: correct the facts")
        if valid_to < entry.valid_from:
            raise errors.InvalidInput("ends before it starts", "valid_to")
        entry.valid_to = valid_to
        self.changes.append(ChildChange("ended", entry, reason))
        return entry

    def category_entry(self, entry_id: str) -> CategoryEntry:
        for entry in self.categories:
            if entry.entry_id == entry_id:
                return entry
        raise errors.NotFound("no such category entry in this town")

    def rederive(
        self, *, today: date, district_code: str, recorded_by: str, at: datetime, new_id: Callable[[], str]
    ) -> None:
        """Derive the rule-based categories again from the child and family as they are today: an entry whose
        rule no longer applies ends (or goes, if it began today), one whose rule or reason changed is updated,
        a newly derived category gets an entry from today (the facts may have held earlier, unknown to the
        register)."""
        snapshot = child_snapshot(
            birth_date=self.details.birth_date,
            household_registration_code=self.details.household_division_code,
            district_code=district_code,
            members=[member.facts for member in self.family],
            on=today,
        )
        open_rule_entries = [
            e
            for e in self.categories
            if e.source is CategorySource.RULE and (e.valid_to is None or e.valid_to >= today)
        ]
        found = rederive(snapshot, open_rule_entries, today)
        for entry in found.lapsed:
            last_day = lapse(entry.valid_from, today)
            if last_day is None:
                self.categories = [e for e in self.categories if e is not entry]
                self.changes.append(ChildChange("removed", entry))
            else:
                entry.valid_to = last_day
                self.changes.append(ChildChange("ended", entry))
        for entry, still in found.changed:
            entry.rule_code, entry.reason = still.rule_code, still.reason
            self.changes.append(ChildChange("updated", entry))
        for derived in found.begun:
            entry = CategoryEntry(
                new_id(),
                self.child_id,
                derived.category,
                CategorySource.RULE,
                valid_from=today,
                valid_to=None,
                recorded_by=recorded_by,
                recorded_at=at,
                rule_code=derived.rule_code,
                reason=derived.reason,
            )
            self.categories.append(entry)
            self.changes.append(ChildChange("derived", entry))

    def take_changes(self) -> list[ChildChange]:
        """The changes noted since the last call, for the repository to keep."""
        taken, self.changes = self.changes, []
        return taken


def _trimmed(facts: FamilyMember) -> FamilyMember:
    """The facts as stored: text without surrounding spaces."""
    return replace(
        facts,
        name=facts.name.strip(),
        evidence=facts.evidence.strip(),
        evidence_document=facts.evidence_document.strip(),
    )
