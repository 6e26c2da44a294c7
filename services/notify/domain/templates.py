"""What a notification says: for each kind of event, the facts its texts may use; the texts themselves (the
in-app title and body, and what leaves the portal) are Jinja2 templates of the one catalogue, `outbound.py`.

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

from platform_runtime.vocabulary import CHINA_STANDARD_TIME, SituationType
from services.notify.domain import outbound

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
    """A notification: title and body as the district's zh-CN in-app template renders them (a town's own
    template or a person's language may word the inbox item otherwise when it is delivered)."""

    title: str
    body: str
    priority: Priority
    subject_type: str
    subject_id: str
    # The few facts a message leaving the portal may carry (see outbound.py), as text.
    facts: Mapping[str, str] = field(default_factory=dict)
    # What only the in-app texts add (ids, the town's named staff), as text.
    inbox_facts: Mapping[str, str] = field(default_factory=dict)

    def inbox_variables(self) -> dict[str, str]:
        return {**self.facts, **self.inbox_facts}


def content(
    event_type: str,
    priority: Priority,
    subject: tuple[str, str],
    facts: Mapping[str, str],
    inbox_facts: Mapping[str, str] | None = None,
) -> Content:
    """The notification of an event type, worded by the district's zh-CN in-app template."""
    inbox_facts = dict(inbox_facts or {})
    title, body = outbound.DEFAULTS[(outbound.INBOX + event_type, outbound.DEFAULT_LOCALE)]
    rendered = outbound.render(title, body, {"link": "", "code": "", "town": "", **facts, **inbox_facts})
    return Content(rendered.subject, rendered.text, priority, subject[0], subject[1], dict(facts), inbox_facts)


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


def _report(report_id: str) -> dict[str, str]:
    return {"report_id": report_id}


def referral_opened(referral: OpenedReferral) -> Content:
    # The referral's reason is not printed: it may be typed by staff (the referral page shows it).
    return content(
        "referral_opened",
        Priority.URGENT if referral.urgent else Priority.NORMAL,
        ("referral", referral.referral_id),
        {"agency": referral.agency_name, "due": _beijing(referral.due_at)},
        _report(referral.report_id),
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
    "review_due": "待复核 review due",
}


def referral_sent(referral: OpenedReferral) -> Content:
    return content(
        "referral_sent",
        Priority.URGENT if referral.urgent else Priority.NORMAL,
        ("referral", referral.referral_id),
        {"agency": referral.agency_name, "due": _beijing(referral.due_at)},
        _report(referral.report_id),
    )


def referral_escalated(escalated: EscalatedReferral) -> Content:
    referral = escalated.referral
    return content(
        "referral_escalated",
        Priority.URGENT,
        ("referral", referral.referral_id),
        {"agency": referral.agency_name, "step": str(escalated.step)},
        {"due": _beijing(referral.due_at), "escalated_to": escalated.escalated_to, **_report(referral.report_id)},
    )


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def entitlement_changed(change: ChangedEntitlement) -> Content:
    return content(
        "entitlement_changed",
        Priority.NORMAL,
        ("child", change.child_id),
        {
            "change": ENTITLEMENT_CHANGES.get(change.change, change.change),
            "effective_on": change.effective_on.isoformat(),
        },
        {"benefit": change.benefit_code, "monthly_yuan": _yuan(change.monthly_amount_fen), "child_id": change.child_id},
    )


def _situations(codes: Iterable[str]) -> str:
    """The situations by their labels; a code this notify does not know is left out (never raw text)."""
    known = {situation.value: situation for situation in SituationType}
    return _listed(known[code].label for code in codes if code in known)


def crisis_declared(crisis: DeclaredCrisis) -> Content:
    # Triage's reasons are not printed: the report page shows them to the staff who open it.
    actions = _listed(ACTION_LABELS.get(action, action) for action in crisis.required_actions)
    return content(
        "crisis_declared",
        Priority.CRISIS,
        ("report", crisis.report_id),
        {"actions": actions},
        {
            "situations": _situations(crisis.situation_types),
            "division": crisis.division_code or "—",
            **_report(crisis.report_id),
        },
    )


def crisis_escalation(report_id: str, actions: str) -> Content:
    """An unacknowledged crisis alert, told to the next level of the town's chain."""
    return content(
        "crisis_escalation", Priority.CRISIS, ("report", report_id), {"actions": actions}, _report(report_id)
    )


def deadline_breached(breach: BreachedDeadline) -> Content:
    return content(
        "crisis_deadline_breached" if breach.crisis else "deadline_breached",
        Priority.CRISIS if breach.crisis else Priority.URGENT,
        ("report", breach.report_id),
        {"milestone": MILESTONE_LABELS.get(breach.milestone, breach.milestone), "due": _beijing(breach.due_at)},
        {"reached": _beijing(breach.completed_at) if breach.completed_at else "", **_report(breach.report_id)},
    )


# --- the registry's case work ------------------------------------------------------------------------------

STAFF_LABELS = (("responsible_person", "专人"), ("social_worker", "社工"), ("child_director", "儿童主任"))


def _staff(staff: NamedStaff, only: Iterable[str] | None = None) -> str:
    """'专人 王专人 · 社工 李社工', limited to the fields in `only` when given."""
    wanted = {field for field, _ in STAFF_LABELS} if only is None else set(only)
    return " · ".join(
        f"{label} {getattr(staff, field)}" for field, label in STAFF_LABELS if field in wanted and getattr(staff, field)
    )


def _case(child_id: str, staff: NamedStaff) -> dict[str, str]:
    return {"child_id": child_id, "staff": _staff(staff)}


def visit_overdue(visit: OverdueVisit) -> Content:
    return content(
        "visit_overdue",
        Priority.URGENT,  # a missed time limit, like a report's missed deadline
        ("child", visit.child_id),
        {"days_overdue": str(visit.days_overdue), "due_on": visit.due_on.isoformat()},
        {"risk": RISK_LABELS.get(visit.risk_level, visit.risk_level or "—"), **_case(visit.child_id, visit.staff)},
    )


def case_status_changed(change: ChangedCaseStatus) -> Content:
    return content(
        "case_status_changed",
        Priority.NORMAL,
        ("child", change.child_id),
        {"status": CASE_STATUS_LABELS.get(change.to_status, change.to_status)},
        {
            "from_status": CASE_STATUS_LABELS.get(change.from_status, change.from_status),
            "to_status": change.to_status,
            **_case(change.child_id, change.staff),
        },
    )


def case_assigned(assigned: AssignedCase) -> Content:
    named = _staff(assigned.staff, assigned.staff.named_anew(assigned.previous))
    return content(
        "case_assigned",
        Priority.NORMAL,
        ("child", assigned.child_id),
        {},
        {"named": named, **_case(assigned.child_id, assigned.staff)},
    )
