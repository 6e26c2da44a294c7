"""What happened to a report, as the domain says it: the events the reporting service publishes.

Plain frozen dataclasses in the past tense; `adapters/messages.py` maps them to the protobuf messages of
`minorprot.reporting.v1` (topic `reporting.report`, one report's events in order under its id). A use case
hands them to its unit of work, which keeps them with the change (the outbox) or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from services.reporting.domain.deadlines import Breach, Milestone
from services.reporting.domain.model import CrisisAction, Report, SituationType, Urgency
from services.reporting.domain.triage import TriageDecision


@dataclass(frozen=True)
class ReportSubmitted:
    """A report was stored and triaged. Carries the report as it was then; the contract carries only its
    summary (`adapters/messages.report_summary`)."""

    report: Report
    reasons: tuple[str, ...]
    crisis: bool

    @property
    def report_id(self) -> str:
        return self.report.report_id


@dataclass(frozen=True)
class ReportTriageConfirmed:
    """A person confirmed a report from the public: agencies may act on it now. The report as it is then."""

    report: Report
    crisis: bool

    @property
    def report_id(self) -> str:
        return self.report.report_id


@dataclass(frozen=True)
class CrisisDeclared:
    """Triage found the child in immediate danger: what must happen at once, and where."""

    report_id: str
    division_code: str
    situations: frozenset[SituationType]
    reasons: tuple[str, ...]
    actions: tuple[CrisisAction, ...]


@dataclass(frozen=True)
class ReportLinked:
    """A report was tied to a child of the register and grouped with the recent reports about them."""

    report_id: str
    child_id: str
    group_id: str
    situations: frozenset[SituationType]
    urgency: Urgency | None


@dataclass(frozen=True)
class DeadlineBreached:
    """A milestone's time limit was missed: still open after it was due, or reached late."""

    report_id: str
    child_id: str | None
    milestone: Milestone
    urgency: Urgency | None
    due_at: datetime
    completed_at: datetime | None  # None: still not reached
    division_code: str


ReportEvent = ReportSubmitted | ReportTriageConfirmed | CrisisDeclared | ReportLinked | DeadlineBreached


def submitted(report: Report, decision: TriageDecision) -> list[ReportEvent]:
    """The events of a report just stored and triaged: ReportSubmitted, then CrisisDeclared for a crisis."""
    found: list[ReportEvent] = [
        ReportSubmitted(replace(report), decision.reasons, crisis=decision.crisis is not None)  # a snapshot
    ]
    if decision.crisis is not None:
        found.append(
            CrisisDeclared(
                report_id=report.report_id,
                division_code=report.submission.place.division_code,
                situations=report.submission.situations,
                reasons=decision.crisis.reasons,
                actions=decision.crisis.actions,
            )
        )
    return found


def linked(report: Report) -> ReportLinked:
    """The event of a report that `Report.link` has just linked."""
    if report.child_id is None:
        raise ValueError("the report is not linked")
    return ReportLinked(
        report_id=report.report_id,
        child_id=report.child_id,
        group_id=report.group_id or "",
        situations=report.submission.situations,
        urgency=report.urgency,
    )


def deadline_breached(report: Report, breach: Breach) -> DeadlineBreached:
    return DeadlineBreached(
        report_id=report.report_id,
        child_id=report.child_id,
        milestone=breach.milestone,
        urgency=report.urgency,
        due_at=breach.due_at,
        completed_at=breach.completed_at,
        division_code=report.submission.place.division_code,
    )


def triage_confirmed(report: Report, crisis: bool) -> ReportTriageConfirmed:
    return ReportTriageConfirmed(replace(report), crisis)  # a snapshot
