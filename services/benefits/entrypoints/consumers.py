"""Kafka entrypoints: a newly registered child is considered for the 0–3 insurance.

Handlers act only inside the given unit of work; the idempotent consumer commits (and drops repeats).
"""

from __future__ import annotations

from datetime import UTC

from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import events_pb2 as registry_events

from platform_runtime.db import UnitOfWork
from platform_runtime.events import unpack
from platform_runtime.service import ConsumerSpec
from platform_runtime.topics import REGISTRY_CHILD
from services.benefits.adapters import messages
from services.benefits.service_layer.services import BenefitsService

GROUP = "benefits"


def consumers(service: BenefitsService) -> list[ConsumerSpec]:
    def child_registered(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.ChildRegistered)
        service.child_registered(uow, messages.registered_child(event, envelope.occurred_at.ToDatetime(tzinfo=UTC)))

    return [
        ConsumerSpec(
            group_id=GROUP,
            topics=[REGISTRY_CHILD],
            handlers={registry_events.ChildRegistered.DESCRIPTOR.full_name: child_registered},
        )
    ]
