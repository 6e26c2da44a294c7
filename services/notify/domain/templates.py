"""What a notification says: titles and bodies for each kind of event, in the staff's words.

Titles are seen on lock screens and in lists, so they never carry a child's name or any other personal
data: only the kind of event, the unit concerned and what must be done. The events used here carry none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

# Times people read are Beijing time (China has no DST).
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")

# The milestones of the contract (`reporting.v1.Milestone`), as staff name them.
MILESTONE_LABELS = {
    "acknowledge": "受理确认 acknowledge",
    "first_contact": "首次接触儿童 first contact",
    "assessment": "评估 assessment",
}

# The crisis actions of the contract (`reporting.v1.CrisisDeclared.required_actions`), as staff name them.
ACTION_LABELS = {
    "notify_township_duty_officer": "立即通知乡镇(街道)值班人员",
    "notify_police": "向公安机关报告",
    "arrange_emergency_shelter": "安排紧急庇护",
}


class Priority(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"
    CRISIS = "crisis"


@dataclass(frozen=True)
class Content:
    title: str
    body: str
    priority: Priority
    subject_type: str
    subject_id: str


@dataclass(frozen=True)
class OpenedReferral:
    referral_id: str
    report_id: str
    agency_name: str
    reason: str
    due_at: datetime
    urgent: bool


@dataclass(frozen=True)
class BreachedDeadline:
    report_id: str
    milestone: str  # acknowledge, first_contact, assessment
    crisis: bool
    due_at: datetime
    completed_at: datetime | None  # None: still not reached


@dataclass(frozen=True)
class DeclaredCrisis:
    report_id: str
    division_code: str
    situation_types: tuple[str, ...]
    reasons: tuple[str, ...]
    required_actions: tuple[str, ...]


def _beijing(value: datetime) -> str:
    return value.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M")


def _listed(items: Iterable[str]) -> str:
    return "、".join(items) or "—"


def referral_opened(referral: OpenedReferral) -> Content:
    return Content(
        title=f"新转介 New referral to {referral.agency_name}",
        body=(
            f"转介理由 reason: {referral.reason}\n"
            f"办理期限 due: {_beijing(referral.due_at)} (北京时间)\n"
            f"发现报告 report: {referral.report_id}"
        ),
        priority=Priority.URGENT if referral.urgent else Priority.NORMAL,
        subject_type="referral",
        subject_id=referral.referral_id,
    )


def crisis_declared(crisis: DeclaredCrisis) -> Content:
    actions = _listed(ACTION_LABELS.get(action, action) for action in crisis.required_actions)
    return Content(
        title=f"危机报告 Crisis report: {actions}",
        body=(
            f"第一时间处置 act at once: {actions}\n"
            f"原因 reasons: {_listed(crisis.reasons)}\n"
            f"情形 situations: {_listed(crisis.situation_types)}\n"
            f"地点 division: {crisis.division_code or '—'}\n"
            f"发现报告 report: {crisis.report_id}"
        ),
        priority=Priority.CRISIS,
        subject_type="report",
        subject_id=crisis.report_id,
    )


def deadline_breached(breach: BreachedDeadline) -> Content:
    milestone = MILESTONE_LABELS.get(breach.milestone, breach.milestone)
    done = f"{_beijing(breach.completed_at)} (超时完成 reached late)" if breach.completed_at else "尚未完成 not yet"
    return Content(
        title=f"办理超时 Deadline missed: {milestone}",
        body=(
            f"期限 due: {_beijing(breach.due_at)} (北京时间)\n完成 reached: {done}\n发现报告 report: {breach.report_id}"
        ),
        priority=Priority.CRISIS if breach.crisis else Priority.URGENT,
        subject_type="report",
        subject_id=breach.report_id,
    )
