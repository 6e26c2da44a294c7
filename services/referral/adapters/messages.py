"""Translation between the referral service's views and events and the protobuf contracts (one place for both
directions): each domain event goes out as its `minorprot.referral.v1` message, on its topic, keyed by its
aggregate (`pending`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from minorprot.referral.v1 import events_pb2, referral_pb2
from minorprot.reporting.v1 import events_pb2 as reporting_events
from minorprot.reporting.v1 import reporting_pb2

from platform_runtime.events import PendingEvent
from platform_runtime.topics import REFERRAL_REFERRAL
from services.referral.domain import events
from services.referral.domain.routing import ReportFacts, Urgency
from services.referral.service_layer.views import EntryView, ReferralView, SubmittedReport

if TYPE_CHECKING:  # only its type: credentials.py imports routing_config.py, which publishes through this module
    from services.referral.service_layer.credentials import CredentialView

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


# -- events ---------------------------------------------------------------------------------------------------


def pending(tenant: str, event: events.ReferralEvent) -> PendingEvent:
    """A domain event as the outbox takes it: on `referral.referral`, keyed by its referral; a directory unit's
    contact points keyed by the unit's code (the tenant is then the district)."""
    message = event_message(event)
    match event:
        case events.DirectoryAgencySaved():
            return PendingEvent(REFERRAL_REFERRAL, tenant, "directory_agency", event.agency_code, message)
        case events.BenefitApplicationRequested():
            return PendingEvent(REFERRAL_REFERRAL, tenant, "referral", event.referral_id, message)
        case _:
            return PendingEvent(REFERRAL_REFERRAL, tenant, "referral", event.referral.referral_id, message)


# The events that carry only the referral, by their message.
_REFERRAL_ONLY: dict[type[events.ReferralEvent], type[Message]] = {
    events.ReferralOpened: events_pb2.ReferralOpened,
    events.ReferralSent: events_pb2.ReferralSent,
    events.ReferralAccepted: events_pb2.ReferralAccepted,
    events.ReferralRejected: events_pb2.ReferralRejected,
    events.ReferralReturned: events_pb2.ReferralReturned,
    events.ReferralProgressed: events_pb2.ReferralProgressed,
    events.ReferralCancelled: events_pb2.ReferralCancelled,
    events.ReferralLinkedToChild: events_pb2.ReferralLinkedToChild,
}


def event_message(event: events.ReferralEvent) -> Message:
    match event:
        case events.ReferralCompleted():
            return events_pb2.ReferralCompleted(referral=referral_event(event.referral), outcome=event.outcome)
        case events.ReferralReassigned():
            return events_pb2.ReferralReassigned(
                referral=referral_event(event.referral), previous_agency_code=event.previous_agency_code
            )
        case events.ReferralEscalated():
            return events_pb2.ReferralEscalated(
                referral=referral_event(event.referral),
                step=event.step,
                escalated_to=event.escalated_to,
                reason=event.reason,
            )
        case events.BenefitApplicationRequested():
            return events_pb2.BenefitApplicationRequested(
                referral_id=event.referral_id,
                report_id=event.report_id,
                child_id=event.child_id,
                benefit_code=event.benefit_code,
                reason=event.reason,
                agency_code=event.agency_code,
            )
        case events.DirectoryAgencySaved():
            return events_pb2.DirectoryAgencySaved(
                agency_code=event.agency_code,
                duty_phone=event.duty_phone,
                email=event.email,
                webhook=event.webhook,
                contact_user_ids=list(event.contact_user_ids),
            )
        case _:
            return _REFERRAL_ONLY[type(event)](referral=referral_event(event.referral))
