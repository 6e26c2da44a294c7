"""Translation between the referral service's views and the protobuf contracts (one place for both directions)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2
from minorprot.referral.v1 import referral_pb2
from minorprot.reporting.v1 import events_pb2 as reporting_events
from minorprot.reporting.v1 import reporting_pb2

from services.referral.domain.routing import ReportFacts, Urgency
from services.referral.service_layer.credentials import CredentialView
from services.referral.service_layer.views import EntryView, ReferralView, SubmittedReport

URGENCY = {
    reporting_pb2.URGENCY_NORMAL: Urgency.NORMAL,
    reporting_pb2.URGENCY_URGENT: Urgency.URGENT,
    reporting_pb2.URGENCY_CRISIS: Urgency.CRISIS,
}


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def submitted_report(summary: reporting_events.ReportSummary, occurred_at: datetime) -> SubmittedReport:
    """A report's summary as routing takes it (`ReportSubmitted` and `ReportTriageConfirmed` carry it)."""
    received_at = summary.received_at.ToDatetime(tzinfo=UTC) if summary.HasField("received_at") else occurred_at
    return SubmittedReport(
        report_id=summary.report_id,
        child_id=summary.child_id,
        received_at=received_at,
        facts=ReportFacts(
            situations=frozenset(summary.situation_types),
            facts=frozenset(summary.facts),
            urgency=URGENCY.get(summary.urgency, Urgency.NORMAL),
            crisis=summary.crisis,
            age=summary.approximate_age or None,  # 0 is "not known" in the contract
        ),
        division_code=summary.division_code,
        place_text=summary.place_text[:200],
    )


def summary_of(event: reporting_events.ReportSubmitted) -> reporting_events.ReportSummary:
    """The event's summary; an event written before the summary existed carried the whole (deprecated) report,
    of which only the summary's fields are read."""
    if event.HasField("summary"):
        return event.summary
    report = event.report
    return reporting_events.ReportSummary(
        report_id=report.report_id,
        child_id=report.child_id,
        received_at=report.received_at if report.HasField("received_at") else None,
        situation_types=report.situation_types,
        facts=report.facts,
        urgency=report.urgency,
        crisis=report.crisis,
        approximate_age=report.child.approximate_age,
        division_code=report.division_code,
        place_text=report.place_text,
    )


def referral(view: ReferralView) -> referral_pb2.Referral:
    return referral_pb2.Referral(
        referral_id=view.referral_id,
        tenant=view.tenant,
        report_id=view.report_id,
        child_id=view.child_id,
        agency_code=view.agency_code,
        agency_name=view.agency_name,
        status=view.status.value,
        reason=view.reason,
        rule_code=view.rule_code,
        opened_at=timestamp(view.opened_at),
        due_at=timestamp(view.due_at),
        urgent=view.urgent,
        version=view.version,
        escalated_step=view.escalated_step,
        last_note=view.last_note,
        outcome=view.outcome,
        updated_at=timestamp(view.updated_at) if view.updated_at else None,
        case_facts=referral_pb2.CaseFacts(**view.case_facts) if view.case_facts else None,
    )


def referral_event(view: ReferralView) -> referral_pb2.Referral:
    """The referral as its Kafka events carry it: without the free text (last note, outcome, case facts), where
    anyone may have written a phone or an address. No consumer needs it; the agency and the referrer read it
    with GetReferral (docs/data-protection.md)."""
    message = referral(view)
    for field in ("last_note", "outcome", "case_facts"):
        message.ClearField(field)
    return message


def entry(view: EntryView) -> referral_pb2.ReferralEntry:
    return referral_pb2.ReferralEntry(
        action=view.action,
        at=timestamp(view.at),
        by=view.by,
        agency_code=view.agency_code,
        text=view.text,
        status=view.status,
        version=view.version,
    )


def credential(view: CredentialView) -> referral_pb2.AgencyCredential:
    return referral_pb2.AgencyCredential(
        credential_id=view.credential_id,
        agency_code=view.agency_code,
        name=view.name,
        issued_at=timestamp(view.issued_at),
        issued_by=view.issued_by,
        expires_at=timestamp(view.expires_at),
        revoked_at=timestamp(view.revoked_at) if view.revoked_at else None,
        revoked_by=view.revoked_by,
    )
