"""Translation between the reporting domain and its protobuf contract (one place for both directions)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import Enum
from typing import TypeVar

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from minorprot.common.v1 import common_pb2
from minorprot.reporting.v1 import events_pb2, reporting_pb2

from platform_runtime.events import PendingEvent
from platform_runtime.pii import normalize_identity_number
from platform_runtime.topics import REPORTING_REPORT
from platform_runtime.vocabulary_messages import known_sex_from_proto, sex_to_proto
from services.reporting.domain import events
from services.reporting.domain.deadlines import Deadline, Milestone
from services.reporting.domain.errors import InvalidInput, Violation
from services.reporting.domain.model import (
    AgencyKind,
    Channel,
    ChildInfo,
    Fact,
    PersonTriage,
    Place,
    ReceiptContact,
    Report,
    Reporter,
    ReporterRole,
    SituationType,
    Submission,
    Urgency,
)
from services.reporting.domain.receipts import ReporterView
from services.reporting.domain.triage import DEFAULT_RULE_SET, TriageRule, TriageRuleSet
from services.reporting.service_layer.ports import ChildCandidate, ReportRead
from services.reporting.service_layer.views import StoredReport

E = TypeVar("E", bound=Enum)

CHANNEL = {
    reporting_pb2.CHANNEL_MANDATED_REPORTER: Channel.MANDATED_REPORTER,
    reporting_pb2.CHANNEL_AGENCY_SHARE: Channel.AGENCY_SHARE,
    reporting_pb2.CHANNEL_STAFF_HOTLINE: Channel.STAFF_HOTLINE,
    reporting_pb2.CHANNEL_STAFF_WALK_IN: Channel.STAFF_WALK_IN,
    reporting_pb2.CHANNEL_RELATIVE: Channel.RELATIVE,
    reporting_pb2.CHANNEL_NEIGHBOUR: Channel.NEIGHBOUR,
    reporting_pb2.CHANNEL_PUBLIC_ANONYMOUS: Channel.PUBLIC_ANONYMOUS,
    reporting_pb2.CHANNEL_PUBLIC_NAMED: Channel.PUBLIC_NAMED,
}
CHANNEL_TO_PROTO = {value: key for key, value in CHANNEL.items()}
URGENCY = {
    Urgency.NORMAL: reporting_pb2.URGENCY_NORMAL,
    Urgency.URGENT: reporting_pb2.URGENCY_URGENT,
    Urgency.CRISIS: reporting_pb2.URGENCY_CRISIS,
}
MILESTONE = {
    reporting_pb2.MILESTONE_ACKNOWLEDGE: Milestone.ACKNOWLEDGE,
    reporting_pb2.MILESTONE_FIRST_CONTACT: Milestone.FIRST_CONTACT,
    reporting_pb2.MILESTONE_ASSESSMENT: Milestone.ASSESSMENT,
}
MILESTONE_TO_PROTO = {value: key for key, value in MILESTONE.items()}


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _proto_date(value: date | None) -> common_pb2.Date | None:
    return common_pb2.Date(year=value.year, month=value.month, day=value.day) if value else None


def _date(value: common_pb2.Date, field: str, violations: list[Violation]) -> date | None:
    if not value.year:
        return None
    try:
        return date(value.year, value.month, value.day)
    except ValueError:
        violations.append(Violation(field, "is not a real date"))
        return None


def _enum(kind: type[E], text: str, field: str, violations: list[Violation]) -> E | None:
    try:
        return kind(text)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        violations.append(Violation(field, f"unknown value {text!r}; one of: {allowed}"))
        return None


def submission(request: reporting_pb2.SubmitReportRequest) -> Submission:
    """The request as a domain submission; every unreadable field is reported at once."""
    violations: list[Violation] = []
    channel = CHANNEL.get(request.channel)
    if channel is None:
        violations.append(Violation("channel", "is required"))
    situations = {_enum(SituationType, s, "situation_types", violations) for s in request.situation_types}
    facts = {_enum(Fact, f, "facts", violations) for f in request.facts}
    child_pb = request.child
    child = ChildInfo(
        name=child_pb.name or None,
        sex=known_sex_from_proto(child_pb.sex),
        birth_date=_date(child_pb.birth_date, "child.birth_date", violations),
        approximate_age=child_pb.approximate_age or None,
        identity_number=normalize_identity_number(child_pb.identity_number) or None,
        description=child_pb.description or None,
        school=child_pb.school or None,
        guardian_names=tuple(n for n in child_pb.guardian_names if n.strip()),
    )
    reporter = None
    if request.HasField("reporter"):
        r = request.reporter
        role = _enum(ReporterRole, r.role, "reporter.role", violations) if r.role else None
        agency = _enum(AgencyKind, request.agency_kind, "agency_kind", violations) if request.agency_kind else None
        reporter = Reporter(
            name=r.name or None, phone=r.phone or None, organisation=r.organisation or None, role=role, agency=agency
        )
    elif request.agency_kind:
        violations.append(Violation("reporter", "an agency share names the reporting officer"))
    occurred = request.occurred_at.ToDatetime(tzinfo=UTC) if request.HasField("occurred_at") else None
    if occurred is None:
        violations.append(Violation("occurred_at", "is required"))
    if violations:
        raise InvalidInput(violations)
    assert channel is not None and occurred is not None
    return Submission(
        channel=channel,
        child=child,
        place=Place(request.division_code, request.place_text),
        occurred_at=occurred,
        situations=frozenset(s for s in situations if s is not None),
        narrative=request.narrative,
        reporter=reporter,
        facts=frozenset(f for f in facts if f is not None),
        receipt_contact=_receipt_contact(request),
    )


def _receipt_contact(request: reporting_pb2.SubmitReportRequest) -> ReceiptContact | None:
    if not request.HasField("receipt_contact"):
        return None
    given = request.receipt_contact
    return ReceiptContact(consent=given.consent, address=given.address, locale=given.locale or "zh-CN")


def milestone(value: reporting_pb2.Milestone.ValueType) -> Milestone:
    found = MILESTONE.get(value)
    if found is None:
        raise InvalidInput.single("milestone", "is required: acknowledge, first_contact or assessment")
    return found


def optional_time(stamp: timestamp_pb2.Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


def deadline(value: Deadline, now: datetime) -> reporting_pb2.MilestoneDeadline:
    message = reporting_pb2.MilestoneDeadline(
        milestone=MILESTONE_TO_PROTO[value.milestone],
        due_at=_timestamp(value.due_at),
        breached=value.breach(now) is not None,
    )
    if value.completed_at is not None:
        message.completed_at.CopyFrom(_timestamp(value.completed_at))
    return message


def stored_report(stored: StoredReport, *, reporter: bool, details: bool) -> reporting_pb2.Report:
    """`details=False` withholds the narrative, the child's description and guardians, and the reporter."""
    message = report(stored.report, stored.reasons, stored.crisis, reporter=reporter and details)
    if not details:
        message.narrative = ""
        message.child.description = ""
        del message.child.guardian_names[:]
        message.details_withheld = True
    message.deadlines.extend(deadline(d, stored.as_of) for d in stored.deadlines)
    message.version = stored.version
    return message


def candidate(value: ChildCandidate) -> reporting_pb2.LinkCandidate:
    return reporting_pb2.LinkCandidate(
        child_id=value.child_id,
        score=value.score,
        reasons=list(value.reasons),
        name=value.name,
        sex=sex_to_proto(value.sex),
        birth_date=_proto_date(value.birth_date),
        identity_number_masked=value.identity_number_masked,
        residence_division_code=value.residence_division_code,
        school=value.school,
        provisional=value.provisional,
    )


def report(
    value: Report, reasons: tuple[str, ...] | list[str], crisis: bool, *, reporter: bool
) -> reporting_pb2.Report:
    """`reporter=False` leaves the reporter out: events and most readers never see who reported."""
    sub = value.submission
    child = sub.child
    message = reporting_pb2.Report(
        report_id=value.report_id,
        tenant=value.tenant_id,
        channel=CHANNEL_TO_PROTO[sub.channel],
        status=value.status.value,
        urgency=URGENCY[value.urgency] if value.urgency else reporting_pb2.URGENCY_UNSPECIFIED,
        child_id=value.child_id or "",
        child=reporting_pb2.ChildDescription(
            name=child.name or "",
            sex=sex_to_proto(child.sex),
            birth_date=_proto_date(child.birth_date),
            approximate_age=child.approximate_age or 0,
            description=child.description or "",
            school=child.school or "",
            guardian_names=list(child.guardian_names),
        ),
        division_code=sub.place.division_code,
        place_text=sub.place.text,
        occurred_at=_timestamp(sub.occurred_at),
        received_at=_timestamp(value.received_at),
        situation_types=sorted(s.value for s in sub.situations),
        narrative=sub.narrative,
        triage_reasons=list(reasons),
        crisis=crisis,
        facts=sorted(f.value for f in sub.facts),
        attention_reason=value.attention_reason or "",
        group_id=value.group_id or "",
        outcome_notice=value.outcome_notice or "",
        person_triage=value.person_triage.value if value.person_triage else "",
    )
    if reporter and sub.reporter is not None:
        message.reporter.CopyFrom(
            reporting_pb2.Reporter(
                name=sub.reporter.name or "",
                phone=sub.reporter.phone or "",
                organisation=sub.reporter.organisation or "",
                role=sub.reporter.role.value if sub.reporter.role else "",
            )
        )
    return message


def report_read(value: ReportRead) -> reporting_pb2.ReportRead:
    return reporting_pb2.ReportRead(
        actor=value.actor,
        role=value.role,
        purpose=value.purpose,
        saw_reporter=value.saw_reporter,
        at=_timestamp(value.at),
    )


def receipt_reply(view: ReporterView) -> reporting_pb2.LookupReceiptResponse:
    received = datetime(view.received_on.year, view.received_on.month, view.received_on.day, tzinfo=UTC)
    return reporting_pb2.LookupReceiptResponse(
        receipt_number=view.receipt,
        received_at=_timestamp(received),
        status=view.status.label,
        outcome_notice=view.outcome_notice or "",
    )


# -- events ---------------------------------------------------------------------------------------------------


def pending(tenant: str, event: events.ReportEvent) -> PendingEvent:
    """A domain event as the outbox takes it: on `reporting.report`, keyed by its report."""
    return PendingEvent(REPORTING_REPORT, tenant, "report", event.report_id, event_message(event))


def event_message(event: events.ReportEvent) -> Message:
    match event:
        case events.ReportSubmitted():
            return events_pb2.ReportSubmitted(
                summary=report_summary(event.report, event.crisis),
                awaiting_triage=event.report.person_triage is PersonTriage.AWAITING,
            )
        case events.ReportTriageConfirmed():
            return events_pb2.ReportTriageConfirmed(summary=report_summary(event.report, event.crisis))
        case events.CrisisDeclared():
            return events_pb2.CrisisDeclared(
                report_id=event.report_id,
                division_code=event.division_code,
                situation_types=sorted(s.value for s in event.situations),
                reasons=list(event.reasons),
                required_actions=[a.value for a in event.actions],
            )
        case events.ReportLinked():
            return events_pb2.ReportLinked(
                report_id=event.report_id,
                child_id=event.child_id,
                group_id=event.group_id,
                situation_types=sorted(s.value for s in event.situations),
                urgency=_urgency(event.urgency),
            )
        case events.DeadlineBreached():
            return _deadline_breached(event)


def report_summary(value: Report, crisis: bool) -> events_pb2.ReportSummary:
    """What consumers of a report's events need: ids, codes, the age and the place; nothing that names anyone."""
    sub = value.submission
    return events_pb2.ReportSummary(
        report_id=value.report_id,
        child_id=value.child_id or "",
        received_at=_timestamp(value.received_at),
        situation_types=sorted(s.value for s in sub.situations),
        facts=sorted(f.value for f in sub.facts),
        urgency=_urgency(value.urgency),
        crisis=crisis,
        approximate_age=sub.child_age() or 0,
        division_code=sub.place.division_code,
        place_text=sub.place.text,
    )


def _urgency(value: Urgency | None) -> reporting_pb2.Urgency.ValueType:
    return URGENCY[value] if value else reporting_pb2.URGENCY_UNSPECIFIED


def _deadline_breached(event: events.DeadlineBreached) -> events_pb2.DeadlineBreached:
    message = events_pb2.DeadlineBreached(
        report_id=event.report_id,
        child_id=event.child_id or "",
        milestone=MILESTONE_TO_PROTO[event.milestone],
        urgency=_urgency(event.urgency),
        due_at=_timestamp(event.due_at),
        division_code=event.division_code,
    )
    if event.completed_at is not None:
        message.completed_at.CopyFrom(_timestamp(event.completed_at))
    return message


def triage_rule(rule: TriageRule) -> reporting_pb2.TriageRuleInfo:
    return reporting_pb2.TriageRuleInfo(
        code=rule.code,
        urgency=URGENCY[rule.urgency],
        reason=rule.reason,
        any_of_situations=sorted(s.value for s in rule.any_of_situations),
        all_of_facts=sorted(f.value for f in rule.all_of_facts),
        under_age=rule.under_age or 0,
    )


def triage_rule_set(rule_set: TriageRuleSet, *, in_effect: bool) -> reporting_pb2.TriageRuleSetInfo:
    return reporting_pb2.TriageRuleSetInfo(
        version=rule_set.version,
        tenant=rule_set.tenant,
        effective_from=_timestamp(rule_set.effective_from),
        in_effect=in_effect,
        rules=[triage_rule(rule) for rule in rule_set.rules],
        built_in=rule_set is DEFAULT_RULE_SET,
    )
