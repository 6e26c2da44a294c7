"""The unit of work as the service layer sees it: one business transaction of one tenant, and its events.

`AbstractUnitOfWork` holds what every implementation shares (the tenant, the events published and the rule
that they belong to that tenant); an implementation says how a transaction begins, commits and is thrown
away. `platform_runtime.db.UnitOfWork` is the real one (a SQLAlchemy session; the events become outbox rows
in the same transaction). `FakeUnitOfWork` keeps everything in memory, for service-layer tests without a
database: it records the events each commit would have written, how often it committed and rolled back.

A lost race (a row another transaction changed after this one read it) is `ConcurrentUpdate` for every caller,
whether the store notices it at commit or at an earlier flush inside the `with` block: implementations only say
which of their store's errors means that (`_is_lost_race`).
"""

from __future__ import annotations

import abc
from typing import Self

from platform_runtime.errors import ConcurrentUpdate
from platform_runtime.events import PendingEvent

LOST_RACE = "a record was changed by someone else at the same time: reload it and try again"


class AbstractUnitOfWork(abc.ABC):
    """Use as `with ... as uow:`; nothing is kept unless `commit()` is called, and the state change and its
    events commit together or not at all."""

    # What the loser of a race is told; a service may name what was changed.
    lost_race_message = LOST_RACE

    def __init__(self, tenant: str, *, district: str = "") -> None:
        if not tenant and not district:
            raise ValueError("a unit of work needs a tenant (or a district for district-wide reads)")
        self.tenant = tenant
        self.district = district
        self._events: list[PendingEvent] = []

    @property
    def events(self) -> tuple[PendingEvent, ...]:
        """The events published since the last commit or rollback, in order."""
        return tuple(self._events)

    def __enter__(self) -> Self:
        self._events = []
        self._begin()
        return self

    def __exit__(self, _type: object, error: BaseException | None, _traceback: object) -> None:
        try:
            self.rollback()
        finally:
            self._end()
        if error is not None and self._is_lost_race(error):
            # Found by a flush inside the block: the caller reloads and decides again, as after a commit.
            raise ConcurrentUpdate(self.lost_race_message) from error

    def publish(self, pending: PendingEvent) -> None:
        """Queue an event; it is kept with the state change at commit."""
        if pending.tenant != self.tenant:
            raise ValueError("an event must belong to the unit of work's tenant")
        self._events.append(pending)

    def commit(self) -> None:
        events, self._events = self._events, []
        try:
            self._commit(events)
        except Exception as error:
            if self._is_lost_race(error):
                # Another transaction changed what we read (its version moved): nothing was kept.
                raise ConcurrentUpdate(self.lost_race_message) from error
            raise

    def rollback(self) -> None:
        self._events = []
        self._rollback()

    def _is_lost_race(self, error: BaseException) -> bool:
        """Whether `error` is the store saying a row read here was changed by another transaction meanwhile."""
        return False

    @abc.abstractmethod
    def _begin(self) -> None:
        """Start the transaction (at `with`)."""

    @abc.abstractmethod
    def _end(self) -> None:
        """Release what `_begin` took (at the end of `with`, after the rollback)."""

    @abc.abstractmethod
    def _commit(self, events: list[PendingEvent]) -> None:
        """Keep the state change and `events` together, or raise and keep neither."""

    @abc.abstractmethod
    def _rollback(self) -> None:
        """Throw away whatever was not committed."""


class FakeUnitOfWork(AbstractUnitOfWork):
    """In memory, for tests: what was committed, how often, and whether uncommitted work was thrown away.

    `outbox`, when given, is shared by several units of work (as a service's outbox table is): each commit
    appends its events to it. Subclasses holding fake repositories apply their changes in `_apply` and drop
    them in `_discard`.
    """

    def __init__(self, tenant: str, *, district: str = "", outbox: list[PendingEvent] | None = None) -> None:
        super().__init__(tenant, district=district)
        self.outbox: list[PendingEvent] = [] if outbox is None else outbox
        self.committed: list[PendingEvent] = []  # every event committed through this unit of work, in order
        self.commits = 0
        self.rollbacks = 0  # rollbacks that threw away uncommitted events or changes
        self.active = False

    def _begin(self) -> None:
        if self.active:
            raise RuntimeError("a unit of work is not re-entrant")
        self.active = True

    def _end(self) -> None:
        self.active = False

    def _commit(self, events: list[PendingEvent]) -> None:
        if not self.active:
            raise RuntimeError("unit of work used outside its 'with' block")
        self._apply()  # may raise (a lost race, a taken key): then nothing is kept
        self.committed += events
        self.outbox += events
        self.commits += 1

    def rollback(self) -> None:
        if self._events or self._has_changes():
            self.rollbacks += 1
        super().rollback()

    def _rollback(self) -> None:
        self._discard()

    def _apply(self) -> None:
        """Make the changes made through this unit of work's repositories permanent."""

    def _discard(self) -> None:
        """Forget the changes not committed."""

    def _has_changes(self) -> bool:
        return False
