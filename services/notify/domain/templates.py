"""What a notification says: titles and bodies for each kind of event, in the staff's words.

Titles are seen on lock screens and in lists, so they never carry a child's name or any other personal
data: only the kind of event, the unit concerned and what must be done. Bodies name a child by its id only;
the registry's case events also name the staff holding the case (the town's own staff, as the case file
shows them to the same roles), and those names appear in bodies, never in titles. Text typed by staff about
a child (a reason for closing, findings) is never copied into a notification.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from platform_runtime.vocabulary import CHINA_STANDARD_TIME

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

# The case file statuses of the contract (`registry.v1.CaseStatusChanged`), as staff name them.
CASE_STATUS_LABELS = {
    "identified": "已发现 identified",
    "assessing": "评估中 assessing",
    "plan_active": "帮扶计划实施中 plan active",
    "monitoring": "跟踪监测 monitoring",
    "closed": "已结案 closed",
    "transferred": "已转出 transferred",
}

# The risk levels of the contract (`registry.v1.VisitOverdue.risk_level`), as staff name them.
RISK_LABELS = {"high": "高风险 high", "medium": "中风险 medium", "low": "低风险 low"}


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
    # The few facts a message leaving the portal may carry (see outbound.py), as text.
    facts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenedReferral:
    referral_id: str
    report_id: str
    agency_name: str
    reason: str
    due_at: datetime
    urgent: bool
    agency_code: str = ""


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


@dataclass(frozen=True)
class NamedStaff:
    """The people a case file names (free text in the registry); any may be empty."""

    responsible_person: str = ""  # 专人 named by the village or residents' committee
    social_worker: str = ""
    child_director: str = ""
    # Their portal accounts (empty where a name has no account): notify tells these people by name.
    responsible_user_id: str = ""
    social_worker_user_id: str = ""
    child_director_user_id: str = ""

    def user_ids(
        self, fields: Iterable[str] = ("responsible_person", "social_worker", "child_director")
    ) -> tuple[str, ...]:
        """The accounts of the named staff in `fields` (the accounts of everyone named by default)."""
        accounts = (getattr(self, f"{field.removesuffix('_person')}_user_id") for field in fields)
        return tuple(dict.fromkeys(account for account in accounts if account))

    def named_anew(self, previous: NamedStaff) -> tuple[str, ...]:
        """The fields naming someone who was not named there before (a name removed is not among them)."""
        return tuple(
            field
            for field in ("responsible_person", "social_worker", "child_director")
            if getattr(self, field) and getattr(self, field) != getattr(previous, field)
        )


@dataclass(frozen=True)
class OverdueVisit:
    case_id: str
    child_id: str
    due_on: date
    days_overdue: int
    risk_level: str  # high, medium, low
    staff: NamedStaff


@dataclass(frozen=True)
class ChangedCaseStatus:
    """A case file's status change; the reason typed in is deliberately not carried (see the module doc)."""

    case_id: str
    child_id: str
    from_status: str
    to_status: str
    staff: NamedStaff


@dataclass(frozen=True)
class AssignedCase:
    case_id: str
    child_id: str
    staff: NamedStaff
    previous: NamedStaff


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
        facts={"agency": referral.agency_name, "due": _beijing(referral.due_at)},
    )


@dataclass(frozen=True)
class EscalatedReferral:
    referral: OpenedReferral
    step: int
    escalated_to: str  # an agency code, or "leading_group_office"


@dataclass(frozen=True)
class ChangedEntitlement:
    entitlement_id: str
    child_id: str
    benefit_code: str
    change: str  # started, changed, suspended, ended
    effective_on: date
    monthly_amount_fen: int


ENTITLEMENT_CHANGES = {
    "started": "开始发放 started",
    "changed": "标准调整 changed",
    "suspended": "暂停发放 suspended",
    "ended": "终止发放 ended",
}


def referral_sent(referral: OpenedReferral) -> Content:
    return Content(
        title=f"转介已送达 Referral sent to {referral.agency_name}",
        body=f"办理期限 due: {_beijing(referral.due_at)} (北京时间)\n发现报告 report: {referral.report_id}",
        priority=Priority.URGENT if referral.urgent else Priority.NORMAL,
        subject_type="referral",
        subject_id=referral.referral_id,
        facts={"agency": referral.agency_name, "due": _beijing(referral.due_at)},
    )


def referral_escalated(escalated: EscalatedReferral) -> Content:
    referral = escalated.referral
    return Content(
        title=f"转介督办 Referral escalated (第 {escalated.step} 级 step): {referral.agency_name}",
        body=(
            f"超期未办 past its time limit ({_beijing(referral.due_at)} 北京时间)\n"
            f"督办至 escalated to: {escalated.escalated_to}\n发现报告 report: {referral.report_id}"
        ),
        priority=Priority.URGENT,
        subject_type="referral",
        subject_id=referral.referral_id,
        facts={"agency": referral.agency_name, "step": str(escalated.step)},
    )


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def entitlement_changed(change: ChangedEntitlement) -> Content:
    label = ENTITLEMENT_CHANGES.get(change.change, change.change)
    return Content(
        title=f"待遇变更 Benefit {label}: {change.benefit_code}",
        body=(
            f"生效日期 effective: {change.effective_on.isoformat()}\n"
            f"月标准 monthly: {_yuan(change.monthly_amount_fen)} 元 yuan\n"
            f"儿童 child: {change.child_id}"
        ),
        priority=Priority.NORMAL,
        subject_type="child",
        subject_id=change.child_id,
        facts={"change": label, "effective_on": change.effective_on.isoformat()},
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
        facts={"actions": actions},
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
        facts={"milestone": milestone, "due": _beijing(breach.due_at)},
    )


# --- the registry's case work ------------------------------------------------------------------------------

STAFF_LABELS = (("responsible_person", "专人"), ("social_worker", "社工"), ("child_director", "儿童主任"))


def _staff(staff: NamedStaff, only: Iterable[str] | None = None) -> str:
    """'专人 王专人 · 社工 李社工', limited to the fields in `only` when given."""
    wanted = {field for field, _ in STAFF_LABELS} if only is None else set(only)
    return " · ".join(
        f"{label} {getattr(staff, field)}" for field, label in STAFF_LABELS if field in wanted and getattr(staff, field)
    )


def _holders(staff: NamedStaff) -> str:
    return f"负责人 named staff: {_staff(staff) or '尚未指定 nobody named yet: 请指定专人 name a responsible person'}"


def visit_overdue(visit: OverdueVisit) -> Content:
    return Content(
        title=f"随访逾期 Follow-up visit overdue: {visit.days_overdue} 天 days",
        body=(
            f"应随访日期 visit due: {visit.due_on.isoformat()}, 已逾期 {visit.days_overdue} 天 days overdue\n"
            f"风险等级 risk: {RISK_LABELS.get(visit.risk_level, visit.risk_level or '—')}\n"
            f"儿童 child: {visit.child_id}\n"
            f"{_holders(visit.staff)}"
        ),
        # A missed time limit, like a report's missed deadline.
        priority=Priority.URGENT,
        subject_type="child",
        subject_id=visit.child_id,
        facts={"days_overdue": str(visit.days_overdue), "due_on": visit.due_on.isoformat()},
    )


def case_status_changed(change: ChangedCaseStatus) -> Content:
    if change.to_status == "transferred":
        title, then = (
            "个案已转出 Case transferred out",
            "随访停止,接收地另建档案 visits stop; the receiving town opens its own file",
        )
    elif change.to_status == "closed":
        title, then = "个案已结案 Case closed", "随访停止 visits stop"
    else:
        title, then = "个案重新开启 Case reopened", "重新评估后安排随访 assess again, then visits are scheduled"
    before = CASE_STATUS_LABELS.get(change.from_status, change.from_status)
    after = CASE_STATUS_LABELS.get(change.to_status, change.to_status)
    return Content(
        title=title,
        body=(
            f"档案状态 case status: {before} → {after}\n"
            f"{then}; 原因见档案 the reason is in the case file\n"
            f"儿童 child: {change.child_id}\n"
            f"{_holders(change.staff)}"
        ),
        priority=Priority.NORMAL,
        subject_type="child",
        subject_id=change.child_id,
        facts={"status": after},
    )


def case_assigned(assigned: AssignedCase) -> Content:
    return Content(
        title="个案分配 Case assigned",
        body=(
            f"新指定 newly named: {_staff(assigned.staff, assigned.staff.named_anew(assigned.previous)) or '—'}\n"
            f"儿童 child: {assigned.child_id}\n"
            f"{_holders(assigned.staff)}"
        ),
        priority=Priority.NORMAL,
        subject_type="child",
        subject_id=assigned.child_id,
    )
