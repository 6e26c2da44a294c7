"""The discovery report (发现报告): what was reported, by whom, through which channel, and how far it got.

Pure data and state rules only. Field rules that produce user-facing errors live in `validation`;
urgency comes from `triage`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from platform_runtime.vocabulary import (
    CHINA_STANDARD_TIME,
    MANDATORY_REPORTING_SITUATIONS,
    PLAN_CATEGORIES,
    AgencyKind,
    Channel,
    Fact,
    LabelledEnum,
    PersonTriage,
    ReporterRole,
    ReportStatus,
    Sex,
    SituationType,
    Urgency,
    most_urgent,
    set_labels,
)
from services.reporting.domain.errors import Conflict, InvalidInput

# The code lists other services and the gateway speak too are the shared vocabulary's (with their labels);
# the reporting code reads them from its own domain, so this module names them as well.
__all__ = [
    "ALLOWED_TRANSITIONS",
    "CHINA_STANDARD_TIME",
    "MANDATORY_REPORTING_SITUATIONS",
    "OUTCOME_NOTICE_MAX_CHARS",
    "PLAN_CATEGORIES",
    "AgencyKind",
    "Channel",
    "ChildInfo",
    "CrisisAction",
    "EscortDestination",
    "Fact",
    "PersonTriage",
    "Place",
    "ReceiptContact",
    "Report",
    "ReportStatus",
    "Reporter",
    "ReporterRole",
    "Sex",
    "SituationType",
    "Submission",
    "Urgency",
    "most_urgent",
    "requires_police_report",
]


class CrisisAction(LabelledEnum):
    """What must happen at once when a report declares a crisis (第一时间、危机介入、及时庇护)."""

    NOTIFY_TOWNSHIP_DUTY_OFFICER = "notify_township_duty_officer"
    NOTIFY_POLICE = "notify_police"
    ARRANGE_EMERGENCY_SHELTER = "arrange_emergency_shelter"


set_labels(
    CrisisAction,
    {
        CrisisAction.NOTIFY_TOWNSHIP_DUTY_OFFICER: "立即通知乡镇(街道)值班人员",
        CrisisAction.NOTIFY_POLICE: "向公安机关报告",
        CrisisAction.ARRANGE_EMERGENCY_SHELTER: "安排紧急庇护",
    },
)


class EscortDestination(LabelledEnum):
    """Where police or urban management escort a child found wandering or begging (护送)."""

    CITY_MINOR_RESCUE_CENTRE = "city_minor_rescue_centre"
    CITY_SECOND_MINOR_RESCUE_CENTRE = "city_second_minor_rescue_centre"
    DISTRICT_RELIEF_STATION = "district_relief_station"


set_labels(
    EscortDestination,
    {
        EscortDestination.CITY_MINOR_RESCUE_CENTRE: "市未成年人救助保护中心",
        EscortDestination.CITY_SECOND_MINOR_RESCUE_CENTRE: "市第二未成年人救助保护中心",
        EscortDestination.DISTRICT_RELIEF_STATION: "区救助管理站",
    },
)


def requires_police_report(situations: Iterable[SituationType]) -> bool:
    """The 2020 rules oblige an immediate report to the police for any of the nine situations."""
    return any(s in MANDATORY_REPORTING_SITUATIONS for s in situations)


_R = ReportStatus
# Forward along the pipeline; any open report can be closed (with an outcome notice) or flagged when a
# downstream step fails; a flagged report resumes at whichever step a person or a retry completed.
ALLOWED_TRANSITIONS: Mapping[ReportStatus, frozenset[ReportStatus]] = {
    _R.RECEIVED: frozenset({_R.TRIAGED, _R.NEEDS_ATTENTION, _R.CLOSED}),
    _R.TRIAGED: frozenset({_R.LINKED, _R.NEEDS_ATTENTION, _R.CLOSED}),
    _R.LINKED: frozenset({_R.IN_PROGRESS, _R.NEEDS_ATTENTION, _R.CLOSED}),
    _R.IN_PROGRESS: frozenset({_R.NEEDS_ATTENTION, _R.CLOSED}),
    _R.NEEDS_ATTENTION: frozenset({_R.TRIAGED, _R.LINKED, _R.IN_PROGRESS, _R.CLOSED}),
    _R.CLOSED: frozenset(),
}


@dataclass(frozen=True)
class ChildInfo:
    """What the reporter knows about the child; everything is optional but a name or a description."""

    name: str | None = None
    sex: Sex | None = None
    birth_date: date | None = None
    approximate_age: int | None = None
    identity_number: str | None = None
    description: str | None = None
    school: str | None = None
    guardian_names: tuple[str, ...] = ()

    def age_on(self, day: date) -> int | None:
        """Age in whole years on `day`: from the birth date if known, else the reporter's estimate."""
        if self.birth_date is not None:
            before_birthday = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
            return day.year - self.birth_date.year - int(before_birthday)
        return self.approximate_age


@dataclass(frozen=True)
class Place:
    """GB/T 2260 division code (9 digits for a town/street, 12 for a village/community) plus free text."""

    division_code: str
    text: str = ""


@dataclass(frozen=True)
class Reporter:
    """Who reported; confidential (the law protects the reporter's identity)."""

    name: str | None = None
    phone: str | None = None
    organisation: str | None = None
    role: ReporterRole | None = None
    agency: AgencyKind | None = None


@dataclass(frozen=True)
class ReceiptContact:
    """The reporter's wish to be sent the receipt number (they ticked "send me the receipt number"), and where.

    Asked for explicitly, never assumed from a phone left for staff to call back. An anonymous reporter may give an
    address for the receipt alone: it stays out of the report (which still has no reporter), is kept encrypted only
    until notify has taken the message, and is never in an event or shown to staff (`receipts.destination`).
    """

    consent: bool
    address: str = ""  # a mobile number or an e-mail address; empty: the named reporter's phone
    locale: str = "zh-CN"  # the message's language


@dataclass(frozen=True)
class Submission:
    """A report as submitted, before it is stored; checked by `validation.validate_submission`."""

    channel: Channel
    child: ChildInfo
    place: Place
    occurred_at: datetime
    situations: frozenset[SituationType]
    narrative: str
    reporter: Reporter | None = None
    facts: frozenset[Fact] = frozenset()
    receipt_contact: ReceiptContact | None = None

    def child_age(self) -> int | None:
        """The child's age when it happened, as far as known."""
        return self.child.age_on(self.occurred_at.astimezone(CHINA_STANDARD_TIME).date())


OUTCOME_NOTICE_MAX_CHARS = 1000


@dataclass
class Report:
    """A stored report and how far its handling has got."""

    report_id: str
    tenant_id: str
    receipt: str
    received_at: datetime
    submission: Submission
    status: ReportStatus = ReportStatus.RECEIVED
    urgency: Urgency | None = None
    triage_rule_codes: tuple[str, ...] = ()
    child_id: str | None = None
    group_id: str | None = None
    outcome_notice: str | None = None
    attention_reason: str | None = None
    # Set for reports from the public: no agency referral until a person confirms the report.
    person_triage: PersonTriage | None = None

    def __post_init__(self) -> None:
        # Last line of defence for the reporter's anonymity, whatever the caller validated.
        if self.submission.channel is Channel.PUBLIC_ANONYMOUS and self.submission.reporter is not None:
            raise ValueError("an anonymous report cannot carry a reporter")

    def record_triage(self, urgency: Urgency, rule_codes: tuple[str, ...]) -> None:
        self._move(ReportStatus.TRIAGED)
        self.urgency = urgency
        self.triage_rule_codes = rule_codes

    def decide_triage(self, confirmed: bool) -> None:
        """A person on duty confirms a report from the public (agencies may act on it) or rejects it."""
        if self.person_triage is not PersonTriage.AWAITING:
            raise Conflict("the report is not awaiting a person's triage")
        if self.status is ReportStatus.CLOSED:
            raise Conflict("the report is closed")
        self.person_triage = PersonTriage.CONFIRMED if confirmed else PersonTriage.REJECTED

    def check_linkable(self) -> None:
        """Raise `Conflict` unless `link` would succeed (asked before registering a child for the report)."""
        if self.urgency is None:
            raise Conflict("a report is triaged before it is linked")
        self._check_move(ReportStatus.LINKED)

    def link(self, child_id: str, group_id: str) -> None:
        self.check_linkable()
        self._move(ReportStatus.LINKED)
        self.child_id = child_id
        self.group_id = group_id

    def start_handling(self) -> None:
        if self.child_id is None:
            raise Conflict("a report is linked to a child before handling starts")
        self._move(ReportStatus.IN_PROGRESS)

    def flag_for_attention(self, reason: str) -> None:
        self._move(ReportStatus.NEEDS_ATTENTION)
        self.attention_reason = reason

    def give_outcome_notice(self, text: str) -> None:
        """The notice the reporter sees (Minors Protection Law 2020, Art. 11); never child or family data."""
        if self.status is ReportStatus.CLOSED:
            raise Conflict("the report is closed: its outcome notice is final")
        text = text.strip()
        if not text:
            raise InvalidInput.single("outcome_notice", "must not be empty")
        if len(text) > OUTCOME_NOTICE_MAX_CHARS:
            raise InvalidInput.single("outcome_notice", f"must be at most {OUTCOME_NOTICE_MAX_CHARS} characters")
        self.outcome_notice = text

    def close(self) -> None:
        # The law requires telling the reporter the outcome, so no report closes without a notice.
        if self.outcome_notice is None:
            raise Conflict("give an outcome notice before closing the report")
        self._move(ReportStatus.CLOSED)

    def _check_move(self, target: ReportStatus) -> None:
        if target not in ALLOWED_TRANSITIONS[self.status]:
            raise Conflict(f"a report cannot go from {self.status.value} to {target.value}")

    def _move(self, target: ReportStatus) -> None:
        self._check_move(target)
        if target is not ReportStatus.NEEDS_ATTENTION:
            self.attention_reason = None
        self.status = target
