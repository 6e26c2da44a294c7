"""Time limits per urgency (acknowledge, first contact, assessment), due times and breaches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import Enum

from services.reporting.domain.errors import InvalidInput
from services.reporting.domain.model import CHINA_STANDARD_TIME, Urgency


class Milestone(Enum):
    ACKNOWLEDGE = "acknowledge"  # a person has read the report
    FIRST_CONTACT = "first_contact"  # someone has seen or spoken with the child
    ASSESSMENT = "assessment"  # the situation has been assessed


class TimeUnit(Enum):
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    WORKING_DAYS = "working_days"


@dataclass(frozen=True)
class TimeLimit:
    amount: int
    unit: TimeUnit


TimeLimits = Mapping[Urgency, Mapping[Milestone, TimeLimit]]
# A milestone entered a moment after it happened on a phone whose clock runs ahead is not in the future.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)

DEFAULT_TIME_LIMITS: TimeLimits = {
    Urgency.CRISIS: {
        Milestone.ACKNOWLEDGE: TimeLimit(15, TimeUnit.MINUTES),
        Milestone.FIRST_CONTACT: TimeLimit(1, TimeUnit.HOURS),
        Milestone.ASSESSMENT: TimeLimit(24, TimeUnit.HOURS),
    },
    Urgency.URGENT: {
        Milestone.ACKNOWLEDGE: TimeLimit(4, TimeUnit.HOURS),
        Milestone.FIRST_CONTACT: TimeLimit(24, TimeUnit.HOURS),
        Milestone.ASSESSMENT: TimeLimit(3, TimeUnit.DAYS),
    },
    Urgency.NORMAL: {
        Milestone.ACKNOWLEDGE: TimeLimit(1, TimeUnit.WORKING_DAYS),
        Milestone.FIRST_CONTACT: TimeLimit(3, TimeUnit.WORKING_DAYS),
        Milestone.ASSESSMENT: TimeLimit(15, TimeUnit.WORKING_DAYS),
    },
}


@dataclass(frozen=True)
class WorkingCalendar:
    """Monday to Friday, minus public holidays, plus weekend days worked in exchange (调休).

    Holidays change every year and are policy data; the service layer loads them.
    """

    holidays: frozenset[date] = frozenset()
    make_up_working_days: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        if day in self.make_up_working_days:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same Beijing clock time on the `days`-th working day after `start`'s date."""
        local = start.astimezone(CHINA_STANDARD_TIME)
        day, counted = local.date(), 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return datetime.combine(day, local.timetz())


WEEKDAYS_ONLY = WorkingCalendar()

_FIXED_UNITS: Mapping[TimeUnit, timedelta] = {
    TimeUnit.MINUTES: timedelta(minutes=1),
    TimeUnit.HOURS: timedelta(hours=1),
    TimeUnit.DAYS: timedelta(days=1),
}


def due_at(received_at: datetime, limit: TimeLimit, calendar: WorkingCalendar = WEEKDAYS_ONLY) -> datetime:
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    if limit.unit is TimeUnit.WORKING_DAYS:
        return calendar.add_working_days(received_at, limit.amount)
    return received_at + limit.amount * _FIXED_UNITS[limit.unit]


def due_times(
    received_at: datetime,
    urgency: Urgency,
    calendar: WorkingCalendar = WEEKDAYS_ONLY,
    limits: TimeLimits = DEFAULT_TIME_LIMITS,
) -> dict[Milestone, datetime]:
    return {milestone: due_at(received_at, limit, calendar) for milestone, limit in limits[urgency].items()}


@dataclass(frozen=True)
class Breach:
    milestone: Milestone
    due_at: datetime
    completed_at: datetime | None  # None: still not done
    overdue_by: timedelta


@dataclass(frozen=True)
class Deadline:
    """One milestone of one report: when it is due, when it was reached, whether its breach was announced."""

    milestone: Milestone
    due_at: datetime
    completed_at: datetime | None = None
    breach_raised: bool = False

    def breach(self, now: datetime) -> Breach | None:
        """Missed as of `now`: still open after its due time, or reached late. Reached exactly when due is on time."""
        if self.completed_at is None:
            return Breach(self.milestone, self.due_at, None, now - self.due_at) if now > self.due_at else None
        if self.completed_at > self.due_at:
            return Breach(self.milestone, self.due_at, self.completed_at, self.completed_at - self.due_at)
        return None

    def breach_to_raise(self, now: datetime) -> Breach | None:
        """The breach, unless it was already announced: each report's milestone raises at most one."""
        return None if self.breach_raised else self.breach(now)


def deadlines_for(
    received_at: datetime,
    urgency: Urgency,
    calendar: WorkingCalendar = WEEKDAYS_ONLY,
    limits: TimeLimits = DEFAULT_TIME_LIMITS,
) -> tuple[Deadline, ...]:
    return tuple(Deadline(m, due) for m, due in due_times(received_at, urgency, calendar, limits).items())


def reach(
    deadlines: Iterable[Deadline], milestone: Milestone, at: datetime, *, received_at: datetime, now: datetime
) -> tuple[Deadline, ...]:
    """Record `milestone` reached at `at`; raises `InvalidInput` for an impossible time.

    Earlier milestones still open are reached at the same time (nobody contacts a child about a report
    nobody has read, nor assesses one nobody has contacted); a milestone reached before keeps its time.
    """
    if at.tzinfo is None:
        raise InvalidInput.single("completed_at", "must include a time zone")
    if at < received_at:
        raise InvalidInput.single("completed_at", "must not be before the report was received")
    if at > now + CLOCK_SKEW_ALLOWANCE:
        raise InvalidInput.single("completed_at", "must not be in the future")
    order = list(Milestone)
    return tuple(
        replace(d, completed_at=at)
        if d.completed_at is None and order.index(d.milestone) <= order.index(milestone)
        else d
        for d in deadlines
    )


def breaches(
    received_at: datetime,
    urgency: Urgency,
    completed: Mapping[Milestone, datetime],
    now: datetime,
    calendar: WorkingCalendar = WEEKDAYS_ONLY,
    limits: TimeLimits = DEFAULT_TIME_LIMITS,
) -> list[Breach]:
    """Milestones missed as of `now`: still open after their due time, or done late."""
    found = (
        replace(deadline, completed_at=completed.get(deadline.milestone)).breach(now)
        for deadline in deadlines_for(received_at, urgency, calendar, limits)
    )
    return [breach for breach in found if breach is not None]
