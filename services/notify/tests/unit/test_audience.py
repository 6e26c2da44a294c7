"""A person's channels: preferences and quiet hours hold routine messages, never a crisis."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from platform_runtime import errors
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.notify.domain import audience
from services.notify.domain.audience import Person
from services.notify.domain.channels import Channel, retry_delay

NIGHT = Person("cw1", phone="139", email="a@b.cn", quiet_from=time(22, 0), quiet_until=time(7, 0))


def beijing(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 4, hour, minute, tzinfo=CHINA_STANDARD_TIME).astimezone(UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (beijing(23, 30), datetime(2026, 12, 5, 7, 0, tzinfo=CHINA_STANDARD_TIME)),  # before midnight: tomorrow 07:00
        (beijing(3, 0), datetime(2026, 12, 4, 7, 0, tzinfo=CHINA_STANDARD_TIME)),  # after midnight: today 07:00
        (beijing(12, 0), beijing(12, 0)),  # daytime: at once
        (beijing(7, 0), beijing(7, 0)),  # the quiet hours have just ended
    ],
)
def test_quiet_hours_across_midnight_hold_routine_messages_until_they_end(now, expected):
    assert NIGHT.not_before(now, "visit_overdue") == expected


def test_daytime_quiet_hours():
    lunch = Person("cw1", quiet_from=time(12, 0), quiet_until=time(13, 30))
    assert lunch.not_before(beijing(12, 15), "case_assigned") == datetime(
        2026, 12, 4, 13, 30, tzinfo=CHINA_STANDARD_TIME
    )
    assert lunch.not_before(beijing(14, 0), "case_assigned") == beijing(14, 0)


@pytest.mark.parametrize("event_type", ["crisis_declared", "crisis_escalation", "crisis_deadline_breached"])
def test_a_crisis_ignores_quiet_hours_and_channels_turned_off(event_type):
    off = Person("cw1", phone="139", channels_off=frozenset({"sms"}), quiet_from=time(0, 0), quiet_until=time(23, 59))
    assert off.not_before(beijing(3, 0), event_type) == beijing(3, 0)
    assert off.wants(Channel.SMS, event_type)
    assert not off.wants(Channel.SMS, "visit_overdue")


@pytest.mark.parametrize("recipient", ["role:public", "role:system", "role:nobody", "user:", "everyone", "agency:x"])
def test_unknown_recipients_are_refused(recipient):
    with pytest.raises(errors.InvalidInput):
        audience.check_recipient(recipient)


def test_retries_back_off_then_stop():
    delays = [retry_delay(attempt) for attempt in range(1, 9)]
    waits = [delay for delay in delays if delay is not None]
    assert len(waits) == 6 and waits == sorted(waits)
    assert delays[6:] == [None, None]
