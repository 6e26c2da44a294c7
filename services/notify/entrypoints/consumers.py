"""Kafka entrypoints: events that concern people of a town become in-app notifications.

Handlers act only inside the given unit of work; the idempotent consumer commits (and drops repeats).
"""

from __future__ import annotations

from minorprot.benefits.v1 import events_pb2 as benefits_events
from minorprot.common.v1 import common_pb2
from minorprot.referral.v1 import events_pb2 as referral_events
from minorprot.registry.v1 import events_pb2 as registry_events
from minorprot.reporting.v1 import events_pb2 as reporting_events

from platform_runtime.db import UnitOfWork
from platform_runtime.events import unpack
from platform_runtime.service import ConsumerSpec
from platform_runtime.topics import (
    BENEFITS_ENTITLEMENT,
    PLATFORM_TENANT,
    REFERRAL_REFERRAL,
    REGISTRY_CASE,
    REPORTING_REPORT,
)
from services.notify.adapters import messages
from services.notify.domain.channels import Channel
from services.notify.service_layer.directory import copy_defaults, directory_agency_saved
from services.notify.service_layer.services import NotifyService

GROUP = "notify"


def consumers(service: NotifyService) -> list[ConsumerSpec]:
    def referral_opened(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, referral_events.ReferralOpened)
        service.referral_opened(uow, envelope.event_id, messages.opened_referral(event))

    def referral_sent(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, referral_events.ReferralSent)
        service.referral_sent(uow, envelope.event_id, messages.opened_referral(event))

    def referral_escalated(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, referral_events.ReferralEscalated)
        service.referral_escalated(uow, envelope.event_id, messages.escalated_referral(event))

    def entitlement_changed(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, benefits_events.EntitlementChanged)
        service.entitlement_changed(uow, envelope.event_id, messages.changed_entitlement(event))

    def crisis_declared(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, reporting_events.CrisisDeclared)
        service.crisis_declared(uow, envelope.event_id, messages.declared_crisis(event))

    def deadline_breached(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, reporting_events.DeadlineBreached)
        service.deadline_breached(uow, envelope.event_id, messages.breached_deadline(event))

    def visit_overdue(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.VisitOverdue)
        service.visit_overdue(uow, envelope.event_id, messages.overdue_visit(event))

    def case_status_changed(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.CaseStatusChanged)
        service.case_status_changed(uow, envelope.event_id, messages.changed_case_status(event))

    def case_assigned(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.CaseAssigned)
        service.case_assigned(uow, envelope.event_id, messages.assigned_case(event))

    def agency_saved(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        """Under the district's code: the unit of work is the district's."""
        event = unpack(envelope, referral_events.DirectoryAgencySaved)
        points = {Channel.EMAIL: event.email, Channel.SMS: event.duty_phone, Channel.WEBHOOK: event.webhook}
        directory_agency_saved(uow, event.agency_code, points)

    def tenant_onboarded(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        unpack(envelope, registry_events.TenantOnboarded)
        copy_defaults(uow)

    return [
        ConsumerSpec(
            group_id=GROUP,
            topics=[REFERRAL_REFERRAL, REPORTING_REPORT, REGISTRY_CASE, PLATFORM_TENANT, BENEFITS_ENTITLEMENT],
            handlers={
                referral_events.ReferralOpened.DESCRIPTOR.full_name: referral_opened,
                referral_events.ReferralSent.DESCRIPTOR.full_name: referral_sent,
                referral_events.ReferralEscalated.DESCRIPTOR.full_name: referral_escalated,
                referral_events.DirectoryAgencySaved.DESCRIPTOR.full_name: agency_saved,
                benefits_events.EntitlementChanged.DESCRIPTOR.full_name: entitlement_changed,
                reporting_events.CrisisDeclared.DESCRIPTOR.full_name: crisis_declared,
                reporting_events.DeadlineBreached.DESCRIPTOR.full_name: deadline_breached,
                registry_events.VisitOverdue.DESCRIPTOR.full_name: visit_overdue,
                registry_events.CaseStatusChanged.DESCRIPTOR.full_name: case_status_changed,
                registry_events.CaseAssigned.DESCRIPTOR.full_name: case_assigned,
                registry_events.TenantOnboarded.DESCRIPTOR.full_name: tenant_onboarded,
            },
        )
    ]
