"""In-memory implementations of the registry's ports (service_layer/ports.py), for unit tests of the use cases
moved to them (the child's family and categories, case status and staff, assessments, the assistance plan,
follow-up visits).

`FakeRegistryStore` keeps what was committed, town by town. Each unit of work works on its own copies and
applies them at commit as the database would: a case file saved after another transaction changed it fails
with ConcurrentUpdate and nothing of the unit is kept; nothing is kept without a commit. Its events are mapped
to protobuf as the real outbox maps them (an unmappable event fails here too); the domain events, change
history and timeline entries committed are kept in order.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from platform_runtime import errors
from platform_runtime.events import PendingEvent
from platform_runtime.unit_of_work import AbstractUnitOfWork, FakeUnitOfWork
from services.registry.adapters import messages
from services.registry.domain.assessment import Assessment
from services.registry.domain.casefile import CaseFile, CaseProgress
from services.registry.domain.child import ALREADY_REGISTERED, ChildDetails
from services.registry.domain.child_record import Child
from services.registry.domain.codes import CaseStatus
from services.registry.domain.events import RegistryEvent
from services.registry.domain.plans import KnownReferral, PlanAction, PlanGoal
from services.registry.domain.visits import Visit
from services.registry.service_layer.ports import ChangeEntry, ChangeTracker, RegistryUnitOfWork

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class TimelineEntry:
    child_id: str
    kind: str
    summary: str
    reference_id: str
    source: str
    at: datetime


@dataclass
class Town:
    """One town's register as committed."""

    children: dict[str, Child] = field(default_factory=dict)  # by child id (merged ones too)
    match_keys: dict[str, list[str]] = field(default_factory=dict)  # by child id
    villages: frozenset[str] | None = None  # current village codes; None: no list recorded
    case_files: dict[str, CaseFile] = field(default_factory=dict)  # by case id
    assessments: list[Assessment] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    goals: dict[str, PlanGoal] = field(default_factory=dict)
    actions: dict[str, PlanAction] = field(default_factory=dict)
    referrals: dict[str, KnownReferral] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)
    history: list[ChangeEntry] = field(default_factory=list)
    audit: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # actor, action, type, id, purpose


@dataclass
class FakeRegistryStore:
    towns: dict[str, Town] = field(default_factory=dict)
    outbox: list[PendingEvent] = field(default_factory=list)  # as the outbox table would hold them
    events: list[RegistryEvent] = field(default_factory=list)  # the same, as domain events
    units: list[FakeRegistryUnitOfWork] = field(default_factory=list)

    def town(self, tenant: str) -> Town:
        return self.towns.setdefault(tenant, Town())

    def add_child(
        self,
        tenant: str,
        child_id: str,
        *,
        opened_at: datetime,
        status: CaseStatus = CaseStatus.IDENTIFIED,
        details: ChildDetails | None = None,
    ) -> CaseFile:
        """A registered child with its case file, as RegisterChild leaves them."""
        town = self.town(tenant)
        town.children[child_id] = Child(child_id, details or ChildDetails(), opened_at)
        case = CaseFile(f"case-{child_id}", child_id, status, opened_at)
        town.case_files[case.case_id] = case
        return copy.deepcopy(case)

    def merge(self, tenant: str, duplicate_id: str, into: str) -> None:
        self.town(tenant).children[duplicate_id].merged_into = into

    def child(self, tenant: str, child_id: str) -> Child:
        """The child as committed."""
        return self.town(tenant).children[child_id]

    def case_file(self, tenant: str, child_id: str) -> CaseFile:
        (case,) = [c for c in self.town(tenant).case_files.values() if c.child_id == child_id]
        return case

    def unit_of_work(self, tenant: str) -> FakeRegistryUnitOfWork:
        unit = FakeRegistryUnitOfWork(self, tenant)
        self.units.append(unit)
        return unit

    def within(self, uow: AbstractUnitOfWork) -> FakeRegistryUnitOfWork:
        if not isinstance(uow, FakeRegistryUnitOfWork):
            raise TypeError("the fake store works within its own units of work")
        return uow

    @property
    def commits(self) -> int:
        return sum(unit.commits for unit in self.units)


class _Work:
    """What one transaction read and changed, applied to the store at commit."""

    def __init__(self, town: Town) -> None:
        self.town = town
        self.read_cases: dict[str, CaseFile] = {}  # as read, by case id
        self.saved_children: dict[str, Child] = {}
        self.read_children: dict[str, Child] = {}  # as read, by child id
        self.match_keys: dict[str, list[str]] = {}
        self.saved_cases: dict[str, CaseFile] = {}
        self.assessments: list[Assessment] = []
        self.visits: list[Visit] = []
        self.goals: dict[str, PlanGoal] = {}
        self.actions: dict[str, PlanAction] = {}
        self.referrals: dict[str, KnownReferral] = {}
        self.timeline: list[TimelineEntry] = []
        self.history: list[ChangeEntry] = []
        self.audit: list[tuple[str, str, str, str, str]] = []
        self.events: list[RegistryEvent] = []

    def changed(self) -> bool:
        return any(
            (
                self.saved_children,
                self.match_keys,
                self.saved_cases,
                self.assessments,
                self.visits,
                self.goals,
                self.actions,
                self.referrals,
                self.timeline,
                self.audit,
            )
        )


class FakeChildren:
    def __init__(self, work: _Work, changes: ChangeTracker) -> None:
        self._work, self._changes = work, changes
        self._handed_out: dict[str, Child] = {}

    def _stored(self) -> dict[str, Child]:
        return {**self._work.town.children, **self._work.saved_children}

    def current_id(self, child_id: str) -> str:
        children = self._stored()
        if child_id not in children:
            raise errors.NotFound("no such child in this town")
        while (merged_into := children[child_id].merged_into) is not None:
            child_id = merged_into
        return child_id

    def get(self, child_id: str, *, follow_merges: bool = True) -> Child:
        if child_id not in self._stored():
            raise errors.NotFound("no such child in this town")
        return self._hand_out(self.current_id(child_id) if follow_merges else child_id)

    def hold(self, child_ids: Sequence[str]) -> None:
        pass  # one unit of work at a time: nothing to wait for

    def ids_after(self, after_child_id: str, limit: int) -> list[str]:
        ids = sorted(i for i, c in self._stored().items() if c.merged_into is None and i > after_child_id)
        return ids[:limit]

    def with_member(self, member_id: str) -> Child:
        for child in self._stored().values():
            if any(m.member_id == member_id for m in child.family):
                return self._hand_out(child.child_id)
        raise errors.NotFound("no such family member in this town")

    def with_category_entry(self, entry_id: str) -> Child:
        for child in self._stored().values():
            if any(e.entry_id == entry_id for e in child.categories):
                return self._hand_out(child.child_id)
        raise errors.NotFound("no such category entry in this town")

    def number_taken(self, identity_number_index: str, by_other_than: str) -> bool:
        return any(
            c.details.identity_number_index == identity_number_index
            for i, c in self._stored().items()
            if i != by_other_than
        )

    def _hand_out(self, child_id: str) -> Child:
        if child_id not in self._handed_out:
            self._work.read_children[child_id] = copy.deepcopy(self._stored()[child_id])
            child = self._handed_out[child_id] = copy.deepcopy(self._stored()[child_id])
            self._changes.seen(child)
            for member in child.family:
                self._changes.seen(member)
            for entry in child.categories:
                self._changes.seen(entry)
        return self._handed_out[child_id]

    def save(self, child: Child) -> None:
        """As the database: changed details are written now (a number another child has is refused, the
        version moves once), and checked against the version read at commit."""
        read = self._work.read_children[child.child_id]
        if _record(child) != _record(read):
            index = child.details.identity_number_index
            if index and self.number_taken(index, by_other_than=child.child_id):
                raise errors.Conflict(ALREADY_REGISTERED)
            child.version = read.version + 1
        self._changes.saved_child(child)
        self._work.saved_children[child.child_id] = copy.deepcopy(child)

    def replace_match_keys(self, child_id: str, keys: Sequence[str]) -> None:
        self._work.match_keys[child_id] = list(keys)


def _record(child: Child) -> tuple[object, ...]:
    """What the child's row holds (a change to it moves the version)."""
    return (child.details, child.merged_into, child.merged_at)


class FakeVillages:
    def __init__(self, work: _Work) -> None:
        self._work = work

    def current_codes(self) -> frozenset[str] | None:
        return self._work.town.villages


class FakeCaseFiles:
    def __init__(self, work: _Work, changes: ChangeTracker) -> None:
        self._work, self._changes = work, changes
        self._handed_out: dict[str, CaseFile] = {}

    def _hand_out(self, stored: CaseFile) -> CaseFile:
        if stored.case_id not in self._handed_out:
            case = self._handed_out[stored.case_id] = copy.deepcopy(stored)
            self._work.read_cases[case.case_id] = copy.deepcopy(stored)
            self._changes.seen(case)
        return self._handed_out[stored.case_id]

    def for_child(self, child_id: str) -> CaseFile:
        (stored,) = [c for c in self._work.town.case_files.values() if c.child_id == child_id]
        return self._hand_out(stored)

    def save(self, case: CaseFile) -> None:
        self._work.saved_cases[case.case_id] = case
        self._changes.saved(case)

    def progress(self, child_id: str) -> CaseProgress:
        assessed = any(a.child_id == child_id for a in [*self._work.town.assessments, *self._work.assessments])
        actions = {**self._work.town.actions, **self._work.actions}.values()
        open_actions = sum(1 for a in actions if a.child_id == child_id and not a.status.is_finished)
        return CaseProgress(assessed=assessed, open_plan_actions=open_actions)

    def last_contact(self, child_id: str) -> date | None:
        town, work = self._work.town, self._work
        days = [v.visited_on for v in [*town.visits, *work.visits] if v.child_id == child_id]
        days += [a.assessed_on for a in [*town.assessments, *work.assessments] if a.child_id == child_id]
        return max(days, default=None)

    def visits_overdue(self, today: date, limit: int) -> list[CaseFile]:
        due = [
            c
            for c in self._work.town.case_files.values()
            if c.next_visit_due is not None and c.next_visit_due < today and c.overdue_raised_for != c.next_visit_due
        ]
        due.sort(key=lambda c: (c.next_visit_due or today, c.case_id))
        return [self._hand_out(c) for c in due[:limit]]


class FakeAssessments:
    def __init__(self, work: _Work, changes: ChangeTracker) -> None:
        self._work, self._changes = work, changes

    def of_child(self, child_id: str) -> list[Assessment]:
        found = [a for a in [*self._work.town.assessments, *self._work.assessments] if a.child_id == child_id]
        return sorted(found, key=lambda a: (a.assessed_on, a.recorded_at))

    def add(self, assessment: Assessment) -> None:
        self._work.assessments.append(assessment)
        self._changes.created(assessment)


class FakeVisits:
    def __init__(self, work: _Work, changes: ChangeTracker) -> None:
        self._work, self._changes = work, changes

    def of_child(self, child_id: str) -> list[Visit]:
        found = [v for v in [*self._work.town.visits, *self._work.visits] if v.child_id == child_id]
        return sorted(sorted(found, key=lambda v: v.visit_id), key=lambda v: v.visited_on, reverse=True)

    def add(self, visit: Visit) -> None:
        self._work.visits.append(visit)
        self._changes.created(visit)


def _merged(stored: dict[K, V], changed: dict[K, V]) -> dict[K, V]:
    return {**stored, **changed}


class FakePlans:
    def __init__(self, work: _Work, changes: ChangeTracker) -> None:
        self._work, self._changes = work, changes

    def goal(self, goal_id: str) -> PlanGoal | None:
        found = _merged(self._work.town.goals, self._work.goals).get(goal_id)
        return None if found is None else self._changes.seen(copy.deepcopy(found))

    def goals_of(self, child_id: str) -> list[PlanGoal]:
        goals = [g for g in _merged(self._work.town.goals, self._work.goals).values() if g.child_id == child_id]
        return [self._changes.seen(copy.deepcopy(g)) for g in sorted(goals, key=lambda g: (g.created_at, g.goal_id))]

    def add_goal(self, goal: PlanGoal) -> None:
        self._work.goals[goal.goal_id] = copy.deepcopy(goal)
        self._changes.created(goal)

    def action(self, action_id: str) -> PlanAction | None:
        found = _merged(self._work.town.actions, self._work.actions).get(action_id)
        return None if found is None else self._changes.seen(copy.deepcopy(found))

    def actions_of(self, child_id: str) -> list[PlanAction]:
        actions = [a for a in _merged(self._work.town.actions, self._work.actions).values() if a.child_id == child_id]
        # Undated actions last, as PostgreSQL orders NULLs.
        actions.sort(key=lambda a: (a.due_on is None, a.due_on or date.min, a.action_id))
        return [self._changes.seen(copy.deepcopy(a)) for a in actions]

    def actions_for_referral(self, referral_id: str) -> list[PlanAction]:
        actions = _merged(self._work.town.actions, self._work.actions).values()
        return [self._changes.seen(copy.deepcopy(a)) for a in actions if a.referral_id == referral_id]

    def add_action(self, action: PlanAction) -> None:
        self._work.actions[action.action_id] = copy.deepcopy(action)
        self._changes.created(action)

    def save(self, item: PlanGoal | PlanAction) -> None:
        if isinstance(item, PlanGoal):
            self._work.goals[item.goal_id] = copy.deepcopy(item)
        else:
            self._work.actions[item.action_id] = copy.deepcopy(item)
        self._changes.saved(item)

    def referral(self, referral_id: str) -> KnownReferral | None:
        return _merged(self._work.town.referrals, self._work.referrals).get(referral_id)

    def keep_referral(self, known: KnownReferral) -> None:
        self._work.referrals[known.referral_id] = known


class FakeRegistryUnitOfWork(FakeUnitOfWork, RegistryUnitOfWork):
    def __init__(self, store: FakeRegistryStore, tenant: str) -> None:
        super().__init__(tenant, outbox=store.outbox)
        self._store = store
        self._work: _Work | None = None
        self._repos: tuple[FakeChildren, FakeCaseFiles, FakeAssessments, FakeVisits, FakePlans] | None = None

    def _repositories(self) -> tuple[FakeChildren, FakeCaseFiles, FakeAssessments, FakeVisits, FakePlans]:
        if self._repos is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._repos

    @property
    def children(self) -> FakeChildren:
        return self._repositories()[0]

    @property
    def villages(self) -> FakeVillages:
        return FakeVillages(self._current())

    @property
    def case_files(self) -> FakeCaseFiles:
        return self._repositories()[1]

    @property
    def assessments(self) -> FakeAssessments:
        return self._repositories()[2]

    @property
    def visits(self) -> FakeVisits:
        return self._repositories()[3]

    @property
    def plans(self) -> FakePlans:
        return self._repositories()[4]

    def _start(self) -> None:
        work = self._work = _Work(self._store.town(self.tenant))
        changes = self._tracker()
        self._repos = (
            FakeChildren(work, changes),
            FakeCaseFiles(work, changes),
            FakeAssessments(work, changes),
            FakeVisits(work, changes),
            FakePlans(work, changes),
        )

    def _begin(self) -> None:
        super()._begin()
        self._start()

    def _end(self) -> None:
        super()._end()
        self._work, self._repos = None, None

    def emit(self, event: RegistryEvent) -> None:
        self.publish(messages.pending(self.tenant, event))  # mapped now: an unmappable event fails here
        self._current().events.append(event)

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
        self._current().timeline.append(TimelineEntry(child_id, kind, summary, reference_id, source, at or self.now))

    def audit(self, action: str, subject_type: str, subject_id: str, purpose: str = "") -> None:
        self._current().audit.append((self.caller.user_id, action, subject_type, subject_id, purpose))

    def _keep_change(self, entry: ChangeEntry) -> None:
        self._current().history.append(entry)

    def _current(self) -> _Work:
        if self._work is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._work

    def _apply(self) -> None:
        work, town = self._current(), self._store.town(self.tenant)
        # As the database: a case file saved unchanged issues no UPDATE; a changed one is written only if
        # nobody changed it since it was read (its version), and then all of the unit's changes, or none.
        updated = {i: c for i, c in work.saved_cases.items() if c != work.read_cases[i]}
        if any(town.case_files[i].version != work.read_cases[i].version for i in updated):
            raise errors.ConcurrentUpdate(self.lost_race_message)
        changed = [i for i, c in work.saved_children.items() if _record(c) != _record(work.read_children[i])]
        if any(town.children[i].version != work.read_children[i].version for i in changed):
            raise errors.ConcurrentUpdate(self.lost_race_message)
        for case_id, case in updated.items():
            case.version += 1
            town.case_files[case_id] = copy.deepcopy(case)
        town.children.update(work.saved_children)
        town.match_keys.update(work.match_keys)
        town.assessments += work.assessments
        town.visits += work.visits
        town.goals.update(work.goals)
        town.actions.update(work.actions)
        town.referrals.update(work.referrals)
        town.timeline += work.timeline
        town.history += work.history
        town.audit += work.audit
        self._store.events += work.events
        self._start()  # what follows in the same block starts from what was just committed

    def _discard(self) -> None:
        if self._work is not None:
            self._start()

    def _has_changes(self) -> bool:
        return self._work is not None and self._work.changed()
