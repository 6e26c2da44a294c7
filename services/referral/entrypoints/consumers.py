"""Kafka entrypoints: discovery reports become referrals. Handlers act only inside the given unit of work."""

from __future__ import annotations

from datetime import UTC

from minorprot.common.v1 import common_pb2
from minorprot.reporting.v1 import events_pb2 as reporting_events

from platform_runtime.db import UnitOfWork
from platform_runtime.events import unpack
from platform_runtime.service import ConsumerSpec
from platform_runtime.topics import REPORTING_REPORT
from services.referral.adapters import messages
from services.referral.service_layer.services import ReferralService

GROUP = "referral"


def consumers(service: ReferralService) -> list[ConsumerSpec]:
    def open_referrals(
        summary: reporting_events.ReportSummary, envelope: common_pb2.EventEnvelope, uow: UnitOfWork
    ) -> None:
        service.open_referrals(uow, messages.submitted_report(summary, envelope.occurred_at.ToDatetime(tzinfo=UTC)))

    def report_submitted(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, reporting_events.ReportSubmitted)
        if event.awaiting_triage:
            return  # a report from the public: agencies act on it once a person confirms it (below)
        open_referrals(messages.summary_of(event), envelope, uow)

    def triage_confirmed(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        open_referrals(unpack(envelope, reporting_events.ReportTriageConfirmed).summary, envelope, uow)

    def report_linked(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, reporting_events.ReportLinked)
        service.link_child(uow, event.report_id, event.child_id, envelope.occurred_at.ToDatetime(tzinfo=UTC))

    return [
        ConsumerSpec(
            group_id=GROUP,
            topics=[REPORTING_REPORT],
            handlers={
                reporting_events.ReportSubmitted.DESCRIPTOR.full_name: report_submitted,
                reporting_events.ReportTriageConfirmed.DESCRIPTOR.full_name: triage_confirmed,
                reporting_events.ReportLinked.DESCRIPTOR.full_name: report_linked,
            },
        )
    ]
