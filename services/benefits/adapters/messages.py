"""Translation between the benefits views and the protobuf contracts (one place for both directions)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from google.protobuf import timestamp_pb2
from minorprot.benefits.v1 import benefits_pb2
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import events_pb2 as registry_events

from services.benefits.service_layer.views import EnrolmentView, RegisteredChild


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def to_date(value: common_pb2.Date) -> date | None:
    if not value.year:
        return None
    try:
        return date(value.year, value.month, value.day)
    except ValueError:
        return None  # an impossible date is an unknown one: the child is recorded as not decidable


def from_date(value: date | None) -> common_pb2.Date:
    return common_pb2.Date(year=value.year, month=value.month, day=value.day) if value else common_pb2.Date()


def registered_child(event: registry_events.ChildRegistered, occurred_at: datetime) -> RegisteredChild:
    """Only what the insurance rule needs; names and identity numbers in the event are not kept."""
    child = event.child
    return RegisteredChild(
        child_id=child.child_id,
        birth_date=to_date(child.birth_date),
        household_division_code=child.household_division_code,
        registered_at=child.created_at.ToDatetime(tzinfo=UTC) if child.HasField("created_at") else occurred_at,
    )


def enrolment(view: EnrolmentView) -> benefits_pb2.InsuranceEnrolment:
    return benefits_pb2.InsuranceEnrolment(
        enrolment_id=view.enrolment_id,
        tenant=view.tenant,
        child_id=view.child_id,
        covered_until=from_date(view.covered_until),
        enrolled_at=timestamp(view.decided_at),
    )
