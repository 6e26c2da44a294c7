"""Time limits per urgency (acknowledge, first contact, assessment), due times and breaches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum

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


def breaches(
    received_at: datetime,
    urgency: Urgency,
    completed: Mapping[Milestone, datetime],
    now: datetime,
    calendar: WorkingCalendar = WEEKDAYS_ONLY,
    limits: TimeLimits = DEFAULT_TIME_LIMITS,
) -> list[Breach]:
    """Milestones missed as of `now`: still open after their due time, or done late.

    A milestone done exactly at its due time is on time.
    """
    found = []
    for milestone, due in due_times(received_at, urgency, calendar, limits).items():
        done = completed.get(milestone)
        if done is None and now > due:
            found.append(Breach(milestone, due, None, now - due))
        elif done is not None and done > due:
            found.append(Breach(milestone, due, done, done - due))
    return found
