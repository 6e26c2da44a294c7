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
    def report_submitted(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, reporting_events.ReportSubmitted)
        service.open_referrals(uow, messages.submitted_report(event, envelope.occurred_at.ToDatetime(tzinfo=UTC)))

    def report_linked(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, reporting_events.ReportLinked)
        service.link_child(uow, event.report_id, event.child_id, envelope.occurred_at.ToDatetime(tzinfo=UTC))

    return [
        ConsumerSpec(
            group_id=GROUP,
            topics=[REPORTING_REPORT],
            handlers={
                reporting_events.ReportSubmitted.DESCRIPTOR.full_name: report_submitted,
                reporting_events.ReportLinked.DESCRIPTOR.full_name: report_linked,
            },
        )
    ]
