"""The register in numbers for a town's dashboard: counts only, so no child is named and nothing is audited.

A district officer may ask for any onboarded town of their district (the district supervises its towns);
everyone else sees their own town.

Counting is seven aggregate queries over the town's whole register, too slow to run on every dashboard view
(bench portal_pages, issue 14). So each process keeps the numbers it last counted per town (and per village
set, for a village child director, whose counts cover their villages only), and gives them again while
- the day is the same (overdue visits and actions, current categories move with the calendar),
- the town's latest change_history id is the same, and so is the count of this process's commits that wrote
  change history (adapters/change_marker.py: every change to what is counted writes a history row),
- and they are younger than `statistics_cache_seconds` (REGISTER_STATISTICS_CACHE_SECONDS, default 300; 0: never):
  the bound for another replica's write committed out of its ids' order.
Who may see which town is checked on every call, before the cache is looked at. A key is counted by one call
at a time: the views that miss the cache together (fifty people opening the dashboard at nine) wait for that
one count instead of each running its own seven queries (bench portal_pages: dashboard p95 3.9 s when each did).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.db import Database, utcnow
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.tenancy import require_role
from platform_runtime.vocabulary import china_today
from services.registry.adapters.change_marker import HistoryCommits, latest_change
from services.registry.adapters.orm import (
    Base,
    CaseFileRecord,
    CategoryRecord,
    ChildRecord,
    PlanActionRecord,
    TenantRecord,
)
from services.registry.adapters.village_scope import villages_of
from services.registry.domain.codes import ActionStatus, CaseStatus
from services.registry.service_layer.access import READER_ROLES
from services.registry.service_layer.ports import RegistryStore
from services.registry.service_layer.use_cases import RegistryUseCases

KeyCounts = tuple[tuple[str, int], ...]
DEFAULT_CACHE_SECONDS = 300
# A process keeps one entry per town and village set seen: a district's towns and their child directors.
MAX_CACHED = 1024


@dataclass(frozen=True)
class RegisterStatistics:
    town_code: str
    children: int
    by_category: KeyCounts
    by_village: KeyCounts
    by_case_status: KeyCounts
    by_risk_level: KeyCounts
    overdue_visits: int
    overdue_plan_actions: int


# (town, the caller's villages or None for the whole town); (day, town's latest change, this process's commits)
CacheKey = tuple[str, tuple[str, ...] | None]
Marker = tuple[date, int, int]


@dataclass(frozen=True)
class _Counted:
    marker: Marker
    at: float
    statistics: RegisterStatistics


class CountedStatistics:
    """The numbers last counted for each key, reused while their marker holds and they are young enough.
    Shared by the gRPC server's threads."""

    def __init__(self, max_age_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[CacheKey, _Counted] = OrderedDict()
        self._counting: dict[CacheKey, threading.Lock] = {}

    def get(self, key: CacheKey, marker: Marker) -> RegisterStatistics | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None or found.marker != marker or self._clock() - found.at >= self._max_age:
                return None
            self._entries.move_to_end(key)
            return found.statistics

    def counting(self, key: CacheKey) -> threading.Lock:
        """Held while the key is counted, so that one call counts it and the others wait for its numbers."""
        with self._lock:
            if len(self._counting) > MAX_CACHED:
                self._counting = {k: lock for k, lock in self._counting.items() if lock.locked()}
            return self._counting.setdefault(key, threading.Lock())

    def put(self, key: CacheKey, marker: Marker, statistics: RegisterStatistics) -> None:
        with self._lock:
            self._entries[key] = _Counted(marker, self._clock(), statistics)
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_CACHED:
                self._entries.popitem(last=False)


class StatisticsUseCases(RegistryUseCases):
    def __init__(
        self,
        database: Database | None,
        cipher: FieldCipher,
        blind_index: BlindIndex,
        *,
        store: RegistryStore | None = None,
        today: Callable[[], date] = china_today,
        now: Callable[[], datetime] = utcnow,
        statistics_cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> None:
        super().__init__(database, cipher, blind_index, store=store, today=today, now=now)
        self._counted = CountedStatistics(statistics_cache_seconds)
        self._history_commits = HistoryCommits(database.engine) if database is not None else None

    def register_statistics(self, town_code: str = "") -> RegisterStatistics:
        caller = require_role(*READER_ROLES)
        town = town_code.strip() or caller.tenant
        if town != caller.tenant and caller.role is not Role.DISTRICT_OFFICER:
            raise errors.PermissionDenied("another town's register is not visible")
        with self._database.unit_of_work(town) as uow:
            tenant = uow.session.get(TenantRecord, town)
            if tenant is None or tenant.district_code != caller.district:
                raise errors.NotFound("no such town in your district")
            today = self._today()
            # Read before counting: a change committed meanwhile moves the marker past what is kept.
            commits = self._history_commits.count if self._history_commits is not None else 0
            marker = (today, latest_change(uow.session, town), commits)
            key = (town, villages_of(caller))
            found = self._counted.get(key, marker)
        if found is not None:
            return found
        # Waiting without a connection held: the waiters would otherwise empty the pool the count needs.
        with self._counted.counting(key):
            found = self._counted.get(key, marker)  # counted by the call this one waited for
            if found is None:
                with self._database.unit_of_work(town) as uow:
                    found = _count(uow.session, town, today)
                self._counted.put(key, marker, found)
            return found


def _count(session: Session, town: str, today: date) -> RegisterStatistics:
    """The town's numbers (the caller's villages only, for a child director: adapters/village_scope.py)."""
    live = (ChildRecord.tenant_id == town, ChildRecord.merged_into.is_(None))

    def counts(
        column: InstrumentedAttribute[str],
        *where: ColumnElement[bool],
        join: tuple[type[Base], ColumnElement[bool]] | None = None,
    ) -> KeyCounts:
        query = select(column, func.count()).select_from(ChildRecord)
        if join is not None:
            query = query.join(*join)
        rows = session.execute(query.where(*live, *where).group_by(column).order_by(column))
        return tuple((str(key or ""), int(count)) for key, count in rows)

    children = session.scalar(select(func.count()).select_from(ChildRecord).where(*live)) or 0
    on_case: tuple[type[Base], ColumnElement[bool]] = (CaseFileRecord, CaseFileRecord.child_id == ChildRecord.id)
    by_category = counts(
        CategoryRecord.category,
        CategoryRecord.valid_from <= today,
        or_(CategoryRecord.valid_to.is_(None), CategoryRecord.valid_to >= today),
        join=(CategoryRecord, CategoryRecord.child_id == ChildRecord.id),
    )
    by_village = counts(ChildRecord.residence_division_code)
    by_status = counts(CaseFileRecord.status, join=on_case)
    by_risk = counts(CaseFileRecord.risk_level, join=on_case)
    open_statuses = [s.value for s in CaseStatus if s.is_open]
    overdue_visits = session.scalar(
        select(func.count())
        .select_from(CaseFileRecord)
        .join(ChildRecord, CaseFileRecord.child_id == ChildRecord.id)
        .where(*live, CaseFileRecord.status.in_(open_statuses), CaseFileRecord.next_visit_due < today)
    )
    overdue_actions = session.scalar(
        select(func.count())
        .select_from(PlanActionRecord)
        .join(ChildRecord, PlanActionRecord.child_id == ChildRecord.id)
        .where(
            *live,
            PlanActionRecord.due_on < today,
            PlanActionRecord.status.not_in([s.value for s in ActionStatus if s.is_finished]),
        )
    )
    return RegisterStatistics(
        town,
        int(children),
        by_category,
        by_village,
        by_status,
        tuple((key, count) for key, count in by_risk if key),
        int(overdue_visits or 0),
        int(overdue_actions or 0),
    )
