"""Builders of valid domain objects for the unit tests; each test overrides only what it is about."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from stdnum.cn import ric

from services.reporting.domain.model import (
    CHINA_STANDARD_TIME,
    AgencyKind,
    Channel,
    ChildInfo,
    Place,
    Report,
    Reporter,
    ReporterRole,
    SituationType,
    Submission,
)

NOW = datetime(2024, 5, 20, 10, 0, tzinfo=CHINA_STANDARD_TIME)  # a Monday
LIANGXIANG = "110111008"


def identity_number(first17: str) -> str:
    """A valid identity number; the check character comes from python-stdnum, an independent oracle."""
    return first17 + ric.calc_check_digit(first17 + "0")


TEACHER = Reporter("王老师", "13800138000", "良乡中心小学", role=ReporterRole.TEACHER)
POLICE_OFFICER = Reporter("李警官", "010-69351234", "良乡派出所", agency=AgencyKind.POLICE)
RESIDENT = Reporter("赵女士", "13912345678")


def reporter_for(channel: Channel) -> Reporter | None:
    """The smallest reporter the channel accepts."""
    if channel is Channel.PUBLIC_ANONYMOUS:
        return None
    if channel is Channel.MANDATED_REPORTER:
        return TEACHER
    if channel is Channel.AGENCY_SHARE:
        return POLICE_OFFICER
    return RESIDENT


def submission(channel: Channel = Channel.PUBLIC_NAMED, **overrides: Any) -> Submission:
    base = Submission(
        channel=channel,
        child=ChildInfo(description="约8岁男孩,穿红色上衣"),
        place=Place(LIANGXIANG, "良乡火车站南广场"),
        occurred_at=NOW.replace(hour=8),
        situations=frozenset({SituationType.WANDERING}),
        narrative="一名男孩独自在火车站附近徘徊,向路人要钱。",
        reporter=reporter_for(channel),
    )
    return replace(base, **overrides)


def child(**fields: Any) -> ChildInfo:
    return replace(ChildInfo(description="约8岁男孩"), **fields)


def report(sub: Submission | None = None, **overrides: Any) -> Report:
    base = Report(
        report_id="rep-1",
        tenant_id=LIANGXIANG,
        receipt="R-0000000-0000000-000000Z",
        received_at=NOW,
        submission=sub or submission(),
    )
    return replace(base, **overrides)


def born(years_before_now: int) -> date:
    return NOW.date().replace(year=NOW.year - years_before_now)
