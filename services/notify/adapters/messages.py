"""Translation between notify's views and the protobuf contracts (one place for both directions), and its
domain events as the outbox publishes them (`pending`, `emit`)."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from minorprot.benefits.v1 import events_pb2 as benefits_events
from minorprot.common.v1 import common_pb2
from minorprot.notify.v1 import events_pb2, notify_pb2
from minorprot.referral.v1 import events_pb2 as referral_events
from minorprot.registry.v1 import events_pb2 as registry_events
from minorprot.reporting.v1 import events_pb2 as reporting_events
from minorprot.reporting.v1 import reporting_pb2

from platform_runtime.events import PendingEvent
from platform_runtime.topics import NOTIFY_DELIVERY
from platform_runtime.unit_of_work import AbstractUnitOfWork
from services.notify.adapters.channels import agency_key
from services.notify.adapters.orm import AgencyContactRecord, ContactRecord, DeliveryRecord
from services.notify.domain import events, outbound
from services.notify.domain.channels import Channel
from services.notify.domain.templates import (
    AssignedCase,
    BreachedDeadline,
    ChangedCaseStatus,
    ChangedEntitlement,
    DeclaredCrisis,
    EscalatedReferral,
    NamedStaff,
    OpenedReferral,
    OverdueVisit,
    Priority,
)
from services.notify.service_layer.views import NotificationView

if TYPE_CHECKING:
    from services.notify.service_layer.crises import CrisisView
    from services.notify.service_layer.town_templates import TownTemplate

PRIORITY = {
    Priority.NORMAL: notify_pb2.PRIORITY_NORMAL,
    Priority.URGENT: notify_pb2.PRIORITY_URGENT,
    Priority.CRISIS: notify_pb2.PRIORITY_CRISIS,
}


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def opened_referral(
    event: referral_events.ReferralOpened | referral_events.ReferralSent | referral_events.ReferralEscalated,
) -> OpenedReferral:
    referral = event.referral
    return OpenedReferral(
        referral_id=referral.referral_id,
        report_id=referral.report_id,
        agency_name=referral.agency_name,
        reason=referral.reason,
        due_at=referral.due_at.ToDatetime(tzinfo=UTC),
        urgent=referral.urgent,
        agency_code=referral.agency_code,
    )


def escalated_referral(event: referral_events.ReferralEscalated) -> EscalatedReferral:
    return EscalatedReferral(opened_referral(event), event.step, event.escalated_to)


def changed_entitlement(event: benefits_events.EntitlementChanged) -> ChangedEntitlement:
    return ChangedEntitlement(
        entitlement_id=event.entitlement_id,
        child_id=event.child_id,
        benefit_code=event.benefit_code,
        change=event.change,
        effective_on=_date(event.effective_on),
        monthly_amount_fen=event.monthly_amount_fen,
    )


def declared_crisis(event: reporting_events.CrisisDeclared) -> DeclaredCrisis:
    return DeclaredCrisis(
        report_id=event.report_id,
        division_code=event.division_code,
        situation_types=tuple(event.situation_types),
        reasons=tuple(event.reasons),
        required_actions=tuple(event.required_actions),
    )


def breached_deadline(event: reporting_events.DeadlineBreached) -> BreachedDeadline:
    return BreachedDeadline(
        report_id=event.report_id,
        # MILESTONE_FIRST_CONTACT -> first_contact
        milestone=reporting_pb2.Milestone.Name(event.milestone).removeprefix("MILESTONE_").lower(),
        crisis=event.urgency == reporting_pb2.URGENCY_CRISIS,
        due_at=event.due_at.ToDatetime(tzinfo=UTC),
        completed_at=event.completed_at.ToDatetime(tzinfo=UTC) if event.HasField("completed_at") else None,
    )


def _date(value: common_pb2.Date) -> date:
    return date(value.year, value.month, value.day)  # an unset date is refused (ValueError): not applicable


def _staff(
    event: registry_events.VisitOverdue | registry_events.CaseStatusChanged | registry_events.CaseAssigned,
) -> NamedStaff:
    return NamedStaff(
        event.responsible_person,
        event.social_worker,
        event.child_director,
        event.responsible_user_id,
        event.social_worker_user_id,
        event.child_director_user_id,
    )


def overdue_visit(event: registry_events.VisitOverdue) -> OverdueVisit:
    return OverdueVisit(
        case_id=event.case_id,
        child_id=event.child_id,
        due_on=_date(event.due_on),
        days_overdue=event.days_overdue,
        risk_level=event.risk_level,
        staff=_staff(event),
    )


def changed_case_status(event: registry_events.CaseStatusChanged) -> ChangedCaseStatus:
    return ChangedCaseStatus(
        case_id=event.case_id,
        child_id=event.child_id,
        from_status=event.from_status,
        to_status=event.to_status,
        staff=_staff(event),
    )


def assigned_case(event: registry_events.CaseAssigned) -> AssignedCase:
    return AssignedCase(
        case_id=event.case_id,
        child_id=event.child_id,
        staff=_staff(event),
        previous=NamedStaff(
            event.previous_responsible_person, event.previous_social_worker, event.previous_child_director
        ),
    )


def notification(view: NotificationView) -> notify_pb2.Notification:
    message = notify_pb2.Notification(
        notification_id=view.notification_id,
        tenant=view.tenant,
        recipient_role=view.recipient_role,
        recipient_user=view.recipient_user,
        title=view.title,
        body=view.body,
        priority=PRIORITY[view.priority],
        subject_type=view.subject_type,
        subject_id=view.subject_id,
        created_at=timestamp(view.created_at),
    )
    if view.read_at is not None:
        message.read_at.CopyFrom(timestamp(view.read_at))
    if view.acknowledged_at is not None:
        message.acknowledged_at.CopyFrom(timestamp(view.acknowledged_at))
        message.acknowledged_by = view.acknowledged_by
    return message


def delivery(record: DeliveryRecord, recipient_name: str = "") -> notify_pb2.Delivery:
    message = notify_pb2.Delivery(
        recipient_name=recipient_name,
        delivery_id=record.id,
        event_type=record.event_type,
        recipient=record.recipient,
        channel=record.channel,
        status=record.status,
        attempts=record.attempts,
        last_error=record.last_error,
        title=record.title,
        subject_type=record.subject_type,
        subject_id=record.subject_id,
        created_at=timestamp(record.created_at),
    )
    if record.sent_at is not None:
        message.sent_at.CopyFrom(timestamp(record.sent_at))
    return message


def contact(record: ContactRecord) -> notify_pb2.Contact:
    return notify_pb2.Contact(
        user_id=record.user_id,
        display_name=record.display_name,
        role=record.role,
        phone=record.phone or "",
        email=record.email or "",
        channels_off=[channel for channel in (record.channels_off or "").split(",") if channel],
        quiet_from=record.quiet_from or "",
        quiet_until=record.quiet_until or "",
        locale=record.locale or "zh-CN",
    )


def subscriptions(found: list[tuple[str, str, tuple[Channel, ...]]]) -> list[notify_pb2.Subscription]:
    return [
        notify_pb2.Subscription(event_type=event_type, recipient=recipient, channels=[c.value for c in channels])
        for event_type, recipient, channels in found
    ]


def duty_day(on: date, user_id: str, display_name: str) -> notify_pb2.DutyDay:
    return notify_pb2.DutyDay(
        date=common_pb2.Date(year=on.year, month=on.month, day=on.day), user_id=user_id, display_name=display_name
    )


def agency_contact(record: AgencyContactRecord, signing_key: bytes = b"") -> notify_pb2.AgencyContact:
    message = notify_pb2.AgencyContact(agency_code=record.agency_code, channel=record.channel, address=record.address)
    if signing_key and record.channel == Channel.WEBHOOK.value:
        key = agency_key(signing_key, record.tenant_id, f"agency:{record.agency_code}")
        message.signing_key = base64.b64encode(key).decode()
    return message


def crisis(view: CrisisView) -> notify_pb2.Crisis:
    record = view.crisis
    message = notify_pb2.Crisis(
        crisis_id=record.id,
        report_id=record.report_id,
        code=record.code,
        declared_at=timestamp(record.declared_at),
        acknowledge_by=timestamp(record.declared_at + timedelta(seconds=record.limit_seconds * max(record.step, 1))),
        acknowledged_by=record.acknowledged_by,
        acknowledged_by_name=view.name(f"user:{record.acknowledged_by}") if record.acknowledged_by else "",
        acknowledged_via=record.acknowledged_via,
        steps=[
            notify_pb2.EscalationStep(
                step=step.step,
                level=step.level,
                recipients=[r for r in step.recipients.split(",") if r],
                recipient_names=[view.name(r) for r in step.recipients.split(",") if r],
                told_at=timestamp(step.told_at),
            )
            for step in view.steps
        ],
        deliveries=[delivery(found, view.names.get(found.recipient, "")) for found in view.deliveries],
    )
    if record.acknowledged_at is not None:
        message.acknowledged_at.CopyFrom(timestamp(record.acknowledged_at))
    return message


def template(found: TownTemplate) -> notify_pb2.Template:
    return notify_pb2.Template(
        event_type=found.event_type,
        locale=found.locale,
        subject=found.subject,
        text=found.text,
        overridden=found.overridden,
        variables=list(outbound.variables(found.event_type)),
    )


# -- domain events -------------------------------------------------------------------------------------------


def emit(uow: AbstractUnitOfWork, event: events.NotifyEvent) -> None:
    """Queue a domain event in the unit of work: published with its change, or not at all."""
    uow.publish(pending(uow.tenant, event))


def pending(tenant: str, event: events.NotifyEvent) -> PendingEvent:
    """A domain event as the outbox takes it, on `notify.delivery`: an in-app delivery keyed by its notification
    (it is the inbox item), another channel's by the delivery, a crisis's steps and acknowledgement by the crisis."""
    message = event_message(event, tenant=tenant)
    match event:
        case events.NotificationDelivered(channel=Channel.IN_APP):
            return PendingEvent(NOTIFY_DELIVERY, tenant, "notification", event.notification_id, message)
        case events.NotificationDelivered():
            return PendingEvent(NOTIFY_DELIVERY, tenant, "delivery", event.delivery_id, message)
        case events.CrisisEscalated() | events.CrisisAcknowledged():
            return PendingEvent(NOTIFY_DELIVERY, tenant, "crisis", event.crisis_id, message)


def event_message(event: events.NotifyEvent, *, tenant: str) -> Message:
    """The contract's message of a domain event (a notification names its town)."""
    match event:
        case events.NotificationDelivered():
            kind, _, who = event.recipient.partition(":")
            return events_pb2.NotificationDelivered(
                notification=notify_pb2.Notification(
                    notification_id=event.notification_id,
                    tenant=tenant,
                    recipient_role=who if kind == "role" else "",
                    recipient_user=who if kind == "user" else "",
                    title=event.title,
                    body=event.body,
                    priority=PRIORITY[event.priority],
                    subject_type=event.subject_type,
                    subject_id=event.subject_id,
                    created_at=timestamp(event.created_at),
                ),
                channel=event.channel.value,
                delivery_id=event.delivery_id,
                status=event.status.value,
                recipient=event.recipient,
                attempts=event.attempts,
            )
        case events.CrisisEscalated():
            return events_pb2.CrisisEscalated(
                crisis_id=event.crisis_id,
                report_id=event.report_id,
                step=event.step,
                level=event.level,
                recipients=list(event.recipients),
                at=timestamp(event.at),
                recipient_names=list(event.recipient_names),
            )
        case events.CrisisAcknowledged():
            return events_pb2.CrisisAcknowledged(
                crisis_id=event.crisis_id,
                report_id=event.report_id,
                acknowledged_by=event.acknowledged_by,
                via=event.via,
                at=timestamp(event.at),
                acknowledged_by_name=event.acknowledged_by_name,
            )
