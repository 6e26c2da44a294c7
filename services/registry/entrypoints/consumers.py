"""Kafka entrypoints: events of other services that change the register (case timelines: reports, referrals,
benefits; plan actions)."""

from __future__ import annotations

from datetime import UTC

from minorprot.benefits.v1 import events_pb2 as benefits_events
from minorprot.common.v1 import common_pb2
from minorprot.referral.v1 import events_pb2 as referral_events
from minorprot.reporting.v1 import events_pb2 as reporting_events

from platform_runtime.consumer import Handler
from platform_runtime.db import UnitOfWork
from platform_runtime.events import unpack
from platform_runtime.service import ConsumerSpec
from platform_runtime.topics import BENEFITS_ENTITLEMENT, REFERRAL_REFERRAL, REPORTING_REPORT
from services.registry.domain.plans import ReferralProgress
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.registry import RegistryService

GROUP = "registry"

# What each referral event means for a plan action carried out through that referral.
_PROGRESS = {
    "referral_accepted": ReferralProgress.ACCEPTED,
    "referral_completed": ReferralProgress.COMPLETED,
}


def consumers(service: RegistryService, casework: CaseworkService) -> list[ConsumerSpec]:
    def report_linked(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, reporting_events.ReportLinked)
        situations = "、".join(event.situation_types) or "—"
        service.link_report(
            uow,
            child_id=event.child_id,
            report_id=event.report_id,
            summary=f"发现报告 discovery report ({situations})",
            at=envelope.occurred_at.ToDatetime(tzinfo=UTC),
        )

    def referral_changed(kind: str) -> Handler:
        def handle(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
            message_type = {
                "referral_opened": referral_events.ReferralOpened,
                "referral_linked": referral_events.ReferralLinkedToChild,
                "referral_accepted": referral_events.ReferralAccepted,
                "referral_completed": referral_events.ReferralCompleted,
            }[kind]
            event = unpack(envelope, message_type)
            referral = event.referral  # type: ignore[attr-defined]
            if referral.child_id:
                service.record_on_timeline(
                    uow,
                    child_id=referral.child_id,
                    kind=kind,
                    summary=f"转介 referral to {referral.agency_name}: {referral.status}",
                    source="referral",
                    reference_id=referral.referral_id,
                    at=envelope.occurred_at.ToDatetime(tzinfo=UTC),
                )
            if kind in _PROGRESS:
                outcome = event.outcome if isinstance(event, referral_events.ReferralCompleted) else ""
                casework.apply_referral_progress(
                    uow, referral_id=referral.referral_id, progress=_PROGRESS[kind], outcome=outcome
                )

        return handle

    def insurance_enrolled(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, benefits_events.InsuranceEnrolled)
        enrolment = event.enrolment
        until = enrolment.covered_until
        service.record_on_timeline(
            uow,
            child_id=enrolment.child_id,
            kind="insurance_enrolled",
            summary=f"参保 0–3岁重大疾病和意外伤害保险 insured until {until.year:04d}-{until.month:02d}-{until.day:02d}",
            source="benefits",
            reference_id=enrolment.enrolment_id,
            at=envelope.occurred_at.ToDatetime(tzinfo=UTC),
        )

    return [
        ConsumerSpec(
            group_id=GROUP,
            topics=[REPORTING_REPORT, REFERRAL_REFERRAL, BENEFITS_ENTITLEMENT],
            handlers={
                reporting_events.ReportLinked.DESCRIPTOR.full_name: report_linked,
                referral_events.ReferralOpened.DESCRIPTOR.full_name: referral_changed("referral_opened"),
                # Opened before the report named the child: on the child's timeline from the link on.
                referral_events.ReferralLinkedToChild.DESCRIPTOR.full_name: referral_changed("referral_linked"),
                referral_events.ReferralAccepted.DESCRIPTOR.full_name: referral_changed("referral_accepted"),
                referral_events.ReferralCompleted.DESCRIPTOR.full_name: referral_changed("referral_completed"),
                benefits_events.InsuranceEnrolled.DESCRIPTOR.full_name: insurance_enrolled,
            },
        )
    ]
