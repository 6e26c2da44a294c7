from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from services.reporting.domain.deadlines import (
    DEFAULT_TIME_LIMITS,
    Breach,
    Deadline,
    Milestone,
    TimeLimit,
    TimeUnit,
    WorkingCalendar,
    breaches,
    deadlines_for,
    due_times,
    reach,
)
from services.reporting.domain.errors import InvalidInput
from services.reporting.domain.model import CHINA_STANDARD_TIME, Urgency

MONDAY = datetime(2024, 5, 20, 10, 0, tzinfo=CHINA_STANDARD_TIME)
M = Milestone


def at(day: date, hour=10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=CHINA_STANDARD_TIME)


def test_every_urgency_has_every_milestone():
    for limits in DEFAULT_TIME_LIMITS.values():
        assert set(limits) == set(Milestone)


def test_crisis_due_times():
    assert due_times(MONDAY, Urgency.CRISIS) == {
        M.ACKNOWLEDGE: MONDAY + timedelta(minutes=15),
        M.FIRST_CONTACT: MONDAY + timedelta(hours=1),
        M.ASSESSMENT: MONDAY + timedelta(hours=24),
    }


def test_urgent_due_times_run_through_weekends():
    friday = MONDAY + timedelta(days=4)
    assert due_times(friday, Urgency.URGENT) == {
        M.ACKNOWLEDGE: friday + timedelta(hours=4),
        M.FIRST_CONTACT: friday + timedelta(hours=24),
        M.ASSESSMENT: friday + timedelta(days=3),
    }


def test_normal_due_times_count_working_days():
    assert due_times(MONDAY, Urgency.NORMAL) == {
        M.ACKNOWLEDGE: at(date(2024, 5, 21)),
        M.FIRST_CONTACT: at(date(2024, 5, 23)),
        M.ASSESSMENT: at(date(2024, 6, 10)),  # three full weeks later
    }


@pytest.mark.parametrize(
    ("received", "acknowledge_by"),
    [
        (at(date(2024, 5, 24), 16), at(date(2024, 5, 27), 16)),  # Friday -> Monday
        (at(date(2024, 5, 25), 9), at(date(2024, 5, 27), 9)),  # Saturday -> Monday
        (at(date(2024, 5, 26), 23), at(date(2024, 5, 27), 23)),  # Sunday -> Monday
    ],
)
def test_weekends_are_not_working_days(received, acknowledge_by):
    assert due_times(received, Urgency.NORMAL)[M.ACKNOWLEDGE] == acknowledge_by


def test_holidays_and_make_up_working_days():
    # 2024: 1-5 May off (Labour Day), Saturday 11 May worked in exchange.
    calendar = WorkingCalendar(
        holidays=frozenset(date(2024, 5, d) for d in range(1, 6)),
        make_up_working_days=frozenset({date(2024, 5, 11)}),
    )
    assert due_times(at(date(2024, 4, 30)), Urgency.NORMAL, calendar)[M.ACKNOWLEDGE] == at(date(2024, 5, 6))
    assert due_times(at(date(2024, 5, 10)), Urgency.NORMAL, calendar)[M.ACKNOWLEDGE] == at(date(2024, 5, 11))


def test_working_days_are_counted_in_beijing_time():
    # Friday 20:00 UTC is already Saturday 04:00 in Beijing: the next working day is Monday.
    received = datetime(2024, 5, 24, 20, 0, tzinfo=UTC)
    assert due_times(received, Urgency.NORMAL)[M.ACKNOWLEDGE] == at(date(2024, 5, 27), 4)


def test_naive_received_time_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone"):
        due_times(MONDAY.replace(tzinfo=None), Urgency.CRISIS)


# --- breaches ---------------------------------------------------------------------------------------------

ACK_DUE = MONDAY + timedelta(minutes=15)


def test_nothing_is_breached_exactly_at_the_due_time():
    assert breaches(MONDAY, Urgency.CRISIS, {}, now=ACK_DUE) == []


def test_an_open_milestone_is_breached_just_after_its_due_time():
    now = ACK_DUE + timedelta(microseconds=1)
    assert breaches(MONDAY, Urgency.CRISIS, {}, now=now) == [
        Breach(M.ACKNOWLEDGE, ACK_DUE, None, timedelta(microseconds=1))
    ]


def test_done_on_time_is_not_a_breach_even_much_later():
    completed = {M.ACKNOWLEDGE: ACK_DUE}
    found = breaches(MONDAY, Urgency.CRISIS, completed, now=MONDAY + timedelta(minutes=30))
    assert found == []


def test_done_late_is_a_breach():
    done = ACK_DUE + timedelta(seconds=1)
    found = breaches(MONDAY, Urgency.CRISIS, {M.ACKNOWLEDGE: done}, now=done)
    assert found == [Breach(M.ACKNOWLEDGE, ACK_DUE, done, timedelta(seconds=1))]


def test_all_breaches_are_listed():
    now = MONDAY + timedelta(days=2)
    completed = {M.ACKNOWLEDGE: MONDAY + timedelta(minutes=5)}
    found = breaches(MONDAY, Urgency.CRISIS, completed, now=now)
    assert [b.milestone for b in found] == [M.FIRST_CONTACT, M.ASSESSMENT]
    assert found[1].overdue_by == timedelta(days=1)


def test_custom_limits_are_data():
    limits = {**DEFAULT_TIME_LIMITS, Urgency.CRISIS: {M.ACKNOWLEDGE: TimeLimit(5, TimeUnit.MINUTES)}}
    assert due_times(MONDAY, Urgency.CRISIS, limits=limits) == {M.ACKNOWLEDGE: MONDAY + timedelta(minutes=5)}


# --- one report's deadlines -------------------------------------------------------------------------------


def test_a_reports_deadlines_follow_its_urgency():
    found = deadlines_for(MONDAY, Urgency.CRISIS)
    assert [(d.milestone, d.due_at) for d in found] == list(due_times(MONDAY, Urgency.CRISIS).items())
    assert all(d.completed_at is None and not d.breach_raised for d in found)


def test_a_deadline_is_breached_when_open_past_due_or_done_late():
    deadline = Deadline(M.ACKNOWLEDGE, ACK_DUE)
    assert deadline.breach(ACK_DUE) is None
    assert deadline.breach(ACK_DUE + timedelta(seconds=1)) == Breach(M.ACKNOWLEDGE, ACK_DUE, None, timedelta(seconds=1))
    late = replace(deadline, completed_at=ACK_DUE + timedelta(minutes=2))
    assert late.breach(ACK_DUE + timedelta(days=1)) == Breach(
        M.ACKNOWLEDGE, ACK_DUE, ACK_DUE + timedelta(minutes=2), timedelta(minutes=2)
    )
    assert replace(deadline, completed_at=ACK_DUE).breach(ACK_DUE + timedelta(days=1)) is None


def test_a_breach_is_raised_once():
    later = ACK_DUE + timedelta(hours=1)
    deadline = Deadline(M.ACKNOWLEDGE, ACK_DUE)
    assert deadline.breach_to_raise(later) is not None
    assert replace(deadline, breach_raised=True).breach_to_raise(later) is None


def test_reaching_a_milestone_also_reaches_the_earlier_open_ones():
    contact = MONDAY + timedelta(minutes=40)
    found = reach(deadlines_for(MONDAY, Urgency.CRISIS), M.FIRST_CONTACT, contact, received_at=MONDAY, now=contact)
    assert {d.milestone: d.completed_at for d in found} == {
        M.ACKNOWLEDGE: contact,  # nobody contacts a child about a report nobody has read
        M.FIRST_CONTACT: contact,
        M.ASSESSMENT: None,
    }


def test_a_milestone_reached_before_keeps_its_first_time():
    first, second = MONDAY + timedelta(minutes=5), MONDAY + timedelta(minutes=50)
    once = reach(deadlines_for(MONDAY, Urgency.CRISIS), M.ACKNOWLEDGE, first, received_at=MONDAY, now=first)
    twice = reach(once, M.FIRST_CONTACT, second, received_at=MONDAY, now=second)
    assert [d.completed_at for d in twice] == [first, second, None]


@pytest.mark.parametrize(
    ("at", "problem"),
    [
        (MONDAY - timedelta(minutes=1), "before the report was received"),
        (MONDAY + timedelta(hours=2), "in the future"),
        (MONDAY.replace(tzinfo=None), "time zone"),
    ],
)
def test_a_milestone_cannot_be_reached_before_the_report_or_in_the_future(at, problem):
    with pytest.raises(InvalidInput, match=problem) as raised:
        reach(deadlines_for(MONDAY, Urgency.CRISIS), M.ACKNOWLEDGE, at, received_at=MONDAY, now=MONDAY)
    assert raised.value.violations[0].field == "completed_at"
