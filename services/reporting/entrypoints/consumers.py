"""Kafka entrypoints of reporting: notify's crisis escalation steps, for the report's timeline.

Handlers act only inside the given unit of work; the runtime's idempotent consumer commits (and drops repeats).
"""

from __future__ import annotations

from datetime import UTC

from minorprot.common.v1 import common_pb2
from minorprot.notify.v1 import events_pb2 as notify_events

from platform_runtime.db import UnitOfWork
from platform_runtime.events import unpack
from platform_runtime.service import ConsumerSpec
from platform_runtime.topics import NOTIFY_DELIVERY
from services.reporting.service_layer import crisis_steps
from services.reporting.service_layer.crisis_steps import ACKNOWLEDGED, ALERTED, ESCALATED, CrisisStep

GROUP = "reporting"


def escalated(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
    event = unpack(envelope, notify_events.CrisisEscalated)
    names = list(event.recipient_names) + [""] * (len(event.recipients) - len(event.recipient_names))
    crisis_steps.record(
        uow,
        CrisisStep(
            crisis_id=event.crisis_id,
            report_id=event.report_id,
            kind=ALERTED if event.step == 1 else ESCALATED,
            step=event.step,
            level=event.level,
            people=tuple(zip(event.recipients, names, strict=False)),
            via="",
            at=event.at.ToDatetime(tzinfo=UTC),
        ),
    )


def acknowledged(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
    event = unpack(envelope, notify_events.CrisisAcknowledged)
    crisis_steps.record(
        uow,
        CrisisStep(
            crisis_id=event.crisis_id,
            report_id=event.report_id,
            kind=ACKNOWLEDGED,
            step=0,
            level="",
            people=((f"user:{event.acknowledged_by}", event.acknowledged_by_name),),
            via=event.via,
            at=event.at.ToDatetime(tzinfo=UTC),
        ),
    )


def consumers() -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            group_id=GROUP,
            topics=[NOTIFY_DELIVERY],
            handlers={
                notify_events.CrisisEscalated.DESCRIPTOR.full_name: escalated,
                notify_events.CrisisAcknowledged.DESCRIPTOR.full_name: acknowledged,
            },
        )
    ]
