"""Kafka entrypoints: the register's children and their changes (categories, merges, moves, corrected birth
dates, identity numbers, a case transferred out), and referral's benefit applications.

Handlers act only inside the given unit of work; the idempotent consumer commits (and drops repeats).
"""

from __future__ import annotations

from datetime import UTC, date

from minorprot.common.v1 import common_pb2
from minorprot.referral.v1 import events_pb2 as referral_events
from minorprot.registry.v1 import events_pb2 as registry_events

from platform_runtime.db import UnitOfWork
from platform_runtime.events import unpack
from platform_runtime.service import ConsumerSpec
from platform_runtime.topics import REFERRAL_REFERRAL, REGISTRY_CASE, REGISTRY_CHILD
from services.benefits.adapters import messages
from services.benefits.service_layer import eligibility
from services.benefits.service_layer.register_events import RegisterFollower, beijing_day
from services.benefits.service_layer.services import BenefitsService

GROUP = "benefits"
TRANSFERRED = "transferred"  # the registry's case status for a case handed to another town (已转出)


def consumers(service: BenefitsService, follower: RegisterFollower) -> list[ConsumerSpec]:
    def day(envelope: common_pb2.EventEnvelope) -> date:
        return beijing_day(envelope.occurred_at.ToDatetime(tzinfo=UTC))

    def child_registered(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.ChildRegistered)
        child = messages.registered_child(event, envelope.occurred_at.ToDatetime(tzinfo=UTC))
        eligibility.record_child(
            uow,
            child.child_id,
            birth_date=child.birth_date,
            household_division_code=child.household_division_code,
            at=service.now(),
        )
        follower.identified(uow, child.child_id, event.person_key)
        service.child_registered(uow, child)

    def child_moved(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.ChildMoved)
        residence = (event.from_residence_division_code, event.to_residence_division_code)
        on = messages.to_date(event.effective_on) or day(envelope)
        follower.moved(uow, event.child_id, residence, event.to_household_division_code, on)
        service.redecide(uow, event.child_id)

    def birth_date_corrected(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.ChildBirthDateCorrected)
        follower.birth_date_corrected(uow, event.child_id, messages.to_date(event.birth_date))
        service.redecide(uow, event.child_id)

    def identity_changed(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.ChildIdentityChanged)
        follower.identified(uow, event.child_id, event.person_key)

    def case_status_changed(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.CaseStatusChanged)
        if event.to_status == TRANSFERRED:
            follower.case_transferred(uow, event.child_id, day(envelope))

    def categories_changed(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.ChildCategoriesChanged)
        follower.categories_changed(uow, event.child_id, set(event.categories), day(envelope))

    def children_merged(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.ChildrenMerged)
        follower.merged(uow, event.surviving_child_id, event.merged_child_id, day(envelope))
        service.child_merged(uow, event.surviving_child_id, event.merged_child_id)

    def children_unmerged(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, registry_events.ChildrenUnmerged)
        follower.unmerged(uow, event.surviving_child_id, event.merged_child_id, day(envelope))

    def application_requested(envelope: common_pb2.EventEnvelope, uow: UnitOfWork) -> None:
        event = unpack(envelope, referral_events.BenefitApplicationRequested)
        follower.application_requested(
            uow, event.referral_id, event.child_id, event.benefit_code, event.reason, event.agency_code
        )

    return [
        ConsumerSpec(
            group_id=GROUP,
            topics=[REGISTRY_CHILD, REGISTRY_CASE, REFERRAL_REFERRAL],
            handlers={
                registry_events.ChildRegistered.DESCRIPTOR.full_name: child_registered,
                registry_events.ChildCategoriesChanged.DESCRIPTOR.full_name: categories_changed,
                registry_events.ChildrenMerged.DESCRIPTOR.full_name: children_merged,
                registry_events.ChildrenUnmerged.DESCRIPTOR.full_name: children_unmerged,
                registry_events.ChildMoved.DESCRIPTOR.full_name: child_moved,
                registry_events.ChildBirthDateCorrected.DESCRIPTOR.full_name: birth_date_corrected,
                registry_events.ChildIdentityChanged.DESCRIPTOR.full_name: identity_changed,
                registry_events.CaseStatusChanged.DESCRIPTOR.full_name: case_status_changed,
                referral_events.BenefitApplicationRequested.DESCRIPTOR.full_name: application_requested,
            },
        )
    ]
