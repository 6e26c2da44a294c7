"""What the registry's use cases need from storage, as interfaces: a `RegistryUnitOfWork` of one town with
its repositories of domain objects (the child with its family and categories, the case file, its assessments,
assistance plan and visits), implemented on
SQLAlchemy in `adapters/unit_of_work.py` and in memory in `tests/unit/fakes.py` (ADR 0018).

The change history is written in one place, here: a repository hands out objects it has seen (`seen`) and
the unit of work compares what is saved (`saved`) or added (`created`) with that, and keeps a
[before, after] entry of what changed, with who changed it and when. Use cases never write it themselves.

Not all use cases are here yet: RegisterChild and the survey's bulk path, and the reads of the register, still
work on ORM rows through `Scope` (scope.py), inside the same SQL unit of work.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, TypeVar

from platform_runtime.auth import Principal
from platform_runtime.unit_of_work import AbstractUnitOfWork
from services.registry.domain.assessment import Assessment
from services.registry.domain.casefile import CaseFile, CaseProgress
from services.registry.domain.changes import field_changes
from services.registry.domain.child_record import Child, ChildChange
from services.registry.domain.events import RegistryEvent
from services.registry.domain.plans import KnownReferral, PlanAction, PlanGoal
from services.registry.domain.visits import Visit

LOST_RACE = "the child's record or case file was changed by someone else at the same time: reload it and try again"


class Tracked(Protocol):
    """A domain object whose changes the change history keeps."""

    @property
    def history_key(self) -> tuple[str, str, str]:
        """(child id, entity type, entity id) as the change history names it."""
        ...

    def history_values(self) -> dict[str, object]:
        """The fields the change history follows, as stored."""
        ...


T = TypeVar("T", bound=Tracked)


@dataclass(frozen=True)
class ChangeEntry:
    """One entry of the change history: who changed what and when ({field: [before, after]})."""

    child_id: str
    entity_type: str
    entity_id: str
    action: str
    changes: dict[str, list[object]]
    actor: str
    role: str
    at: datetime


class ChangeTracker:
    """What a unit of work's repositories handed out, as it was; each save or add becomes one entry, kept at
    once (so entries stay in the order of the changes)."""

    def __init__(self, keep: Callable[[str, str, str, str, dict[str, list[object]]], None]) -> None:
        self._keep = keep
        self._seen: dict[tuple[str, str, str], dict[str, object]] = {}

    def seen(self, item: T) -> T:
        self._seen.setdefault(item.history_key, item.history_values())
        return item

    def created(self, item: Tracked, action: str = "created") -> None:
        values = item.history_values()
        self._keep(*item.history_key, action, field_changes({}, values))
        self._seen[item.history_key] = values

    def saved(self, item: Tracked, action: str = "updated", reason: str = "") -> None:
        """An entry of the fields that changed since the object was read or last saved; none if none did and
        nothing else is to be said (an "updated" with no change). `reason`: what a person gave."""
        before = self._seen.get(item.history_key)
        if before is None:
            raise RuntimeError("save an object read through this unit of work")
        after = item.history_values()
        changes = {**field_changes(before, after), **_reason(reason)}
        if changes or action != "updated":
            self._keep(*item.history_key, action, changes)
        self._seen[item.history_key] = after

    def removed(self, item: Tracked, reason: str = "") -> None:
        """An entry of the fields as they were, and why they went."""
        values = self._seen.pop(item.history_key, None) or item.history_values()
        self._keep(*item.history_key, "removed", {**field_changes(values, {}), **_reason(reason)})

    def saved_child(self, child: Child) -> list[ChildChange]:
        """The child saved: an entry for its details if they changed, then one for each change to its family
        and categories, in the order made. Returns those changes, for the repository to write."""
        self.saved(child)
        changes = child.take_changes()
        for change in changes:
            if change.part is None:
                self._keep(*child.history_key, change.action, change.noted)
            elif change.adds:
                self.created(change.part, change.action)
            elif change.action == "removed":
                self.removed(change.part, change.reason)
            else:
                self.saved(change.part, change.action, change.reason)
        return changes


def _reason(reason: str) -> dict[str, list[object]]:
    return {"reason": [None, reason]} if reason else {}


class ChildRepository(Protocol):
    def current_id(self, child_id: str) -> str:
        """The id of the child's record, or of the record it was merged into; NotFound when the town has no
        such child (another town's child is reported absent, its existence is not disclosed)."""
        ...

    def get(self, child_id: str, *, follow_merges: bool = True) -> Child:
        """The child (or the record it was merged into, unless told not to follow merges) with its family and
        category entries, held for this unit of work: one derivation of a child's categories at a time."""
        ...

    def hold(self, child_ids: Sequence[str]) -> None:
        """Hold these children's records for this unit of work before reading them, in id order: two units of
        work holding the same records never deadlock (each waiting for the other), and what `get` reads next
        is what the winner left. For a use case that decides on a record it does not change (a merge's survivor)."""
        ...

    def ids_after(self, after_child_id: str, limit: int) -> list[str]:
        """Up to `limit` ids of the town's children (not those merged away), in id order, after this one."""
        ...

    def number_taken(self, identity_number_index: str, by_other_than: str) -> bool:
        """Whether a child other than `by_other_than` is registered with this identity number (its blind index)."""
        ...

    def with_member(self, member_id: str) -> Child:
        """The child the family member belongs to (NotFound: no such member in this town)."""
        ...

    def with_category_entry(self, entry_id: str) -> Child:
        """The child the category entry belongs to (NotFound: no such entry in this town)."""
        ...

    def save(self, child: Child) -> None:
        """Keep its changes (its details, and what `child.take_changes()` gives, in order). Changed details
        are refused (ConcurrentUpdate) if another transaction changed the record since it was read, and
        (Conflict) if another child has its identity number; then its `version` is the new one."""
        ...

    def replace_match_keys(self, child_id: str, keys: Sequence[str]) -> None:
        """The child's blocking keys for matching (HMACs), instead of those it had."""
        ...


class VillageDirectory(Protocol):
    def current_codes(self) -> frozenset[str] | None:
        """The town's current (not retired) village codes; None while the town has recorded no list."""
        ...


class CaseFileRepository(Protocol):
    def for_child(self, child_id: str) -> CaseFile: ...

    def save(self, case: CaseFile) -> None:
        """Keep its changes; at commit, refused (ConcurrentUpdate) if another transaction changed it after it
        was read. After the commit its `version` is the stored one."""
        ...

    def progress(self, child_id: str) -> CaseProgress:
        """What a status change depends on: an assessment recorded, the plan's open actions."""
        ...

    def last_contact(self, child_id: str) -> date | None:
        """The last visit or assessment (an assessment is done with the child and family)."""
        ...

    def visits_overdue(self, today: date, limit: int) -> list[CaseFile]:
        """Case files whose next visit was due before `today` and not raised yet for that day, earliest
        first, held for this unit of work; those another unit of work holds are skipped."""
        ...


class AssessmentRepository(Protocol):
    def of_child(self, child_id: str) -> list[Assessment]:
        """Oldest first (by the day assessed, then when recorded)."""
        ...

    def add(self, assessment: Assessment) -> None: ...


class VisitRepository(Protocol):
    def of_child(self, child_id: str) -> list[Visit]:
        """Latest first."""
        ...

    def add(self, visit: Visit) -> None: ...


class PlanRepository(Protocol):
    def goal(self, goal_id: str) -> PlanGoal | None: ...

    def goals_of(self, child_id: str) -> list[PlanGoal]:
        """In the order they were set."""
        ...

    def add_goal(self, goal: PlanGoal) -> None: ...

    def action(self, action_id: str) -> PlanAction | None: ...

    def actions_of(self, child_id: str) -> list[PlanAction]:
        """By due day (undated last), then id."""
        ...

    def actions_for_referral(self, referral_id: str) -> list[PlanAction]: ...

    def add_action(self, action: PlanAction) -> None: ...

    def save(self, item: PlanGoal | PlanAction) -> None: ...

    def referral(self, referral_id: str) -> KnownReferral | None:
        """How far a referral has come, as the referral service told."""
        ...

    def keep_referral(self, known: KnownReferral) -> None: ...


class RegistryUnitOfWork(AbstractUnitOfWork):
    """One transaction of one town's register, acting for one caller: its case files and casework change,
    the change history and timeline record it, and its domain events are kept with it or not at all."""

    lost_race_message = LOST_RACE
    _acting: tuple[Principal, date, datetime] | None = None

    def act_as(self, caller: Principal, *, today: date, now: datetime) -> None:
        """Who acts in what follows (the change history names them), on what day and at what time."""
        self._acting = (caller, today, now)

    def _actor(self) -> tuple[Principal, date, datetime]:
        if self._acting is None:
            raise RuntimeError("say who acts (act_as) before working on the register")
        return self._acting

    @property
    def caller(self) -> Principal:
        return self._actor()[0]

    @property
    def today(self) -> date:
        return self._actor()[1]

    @property
    def now(self) -> datetime:
        return self._actor()[2]

    @property
    @abc.abstractmethod
    def children(self) -> ChildRepository: ...

    @property
    @abc.abstractmethod
    def villages(self) -> VillageDirectory: ...

    @property
    @abc.abstractmethod
    def case_files(self) -> CaseFileRepository: ...

    @property
    @abc.abstractmethod
    def assessments(self) -> AssessmentRepository: ...

    @property
    @abc.abstractmethod
    def visits(self) -> VisitRepository: ...

    @property
    @abc.abstractmethod
    def plans(self) -> PlanRepository: ...

    @abc.abstractmethod
    def emit(self, event: RegistryEvent) -> None:
        """Queue a domain event, published with the change at commit."""

    @abc.abstractmethod
    def audit(self, action: str, subject_type: str, subject_id: str, purpose: str = "") -> None:
        """An entry of the audit trail: the caller did `action` to the subject, now, for `purpose`."""

    @abc.abstractmethod
    def add_timeline(
        self,
        child_id: str,
        kind: str,
        summary: str,
        reference_id: str,
        *,
        source: str = "registry",
        at: datetime | None = None,
    ) -> None:
        """An entry on the child's case-file timeline (at `now` unless told)."""

    def _tracker(self) -> ChangeTracker:
        """A fresh tracker for a transaction's repositories."""
        return ChangeTracker(self._entry)

    def _entry(
        self, child_id: str, entity_type: str, entity_id: str, action: str, changes: dict[str, list[object]]
    ) -> None:
        caller = self.caller
        self._keep_change(
            ChangeEntry(child_id, entity_type, entity_id, action, changes, caller.user_id, caller.role.value, self.now)
        )

    @abc.abstractmethod
    def _keep_change(self, entry: ChangeEntry) -> None:
        """Write one entry of the change history, in this transaction."""


class RegistryStore(Protocol):
    def unit_of_work(self, tenant: str) -> RegistryUnitOfWork: ...

    def within(self, uow: AbstractUnitOfWork) -> RegistryUnitOfWork:
        """The register inside a unit of work begun elsewhere (a consumer's, with its inbox row), which
        commits or rolls it back; events go to that unit of work."""
        ...
