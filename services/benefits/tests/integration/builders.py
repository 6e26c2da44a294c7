"""Events and callers of the benefits integration tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

from google.protobuf import timestamp_pb2
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import events_pb2 as registry_events
from minorprot.registry.v1 import registry_pb2

from platform_runtime.auth import Principal, Role
from platform_runtime.events import PendingEvent
from platform_runtime.topics import REGISTRY_CHILD
from tests.support.infra import OTHER_TENANT, PILOT_TENANT

__all__ = [
    "CHILD_NAME",
    "OTHER_TENANT",
    "PILOT_TENANT",
    "REGISTERED",
    "caller",
    "registered",
    "registered_before_trimming",
]

REGISTERED = datetime(2024, 5, 6, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
CHILD_NAME = "王小花"


def registered(
    child_id: str,
    birth_date: date,
    *,
    household: str = "110111008001",
    tenant: str = PILOT_TENANT,
    at: datetime = REGISTERED,
) -> PendingEvent:
    created = timestamp_pb2.Timestamp()
    created.FromDatetime(at)
    event = registry_events.ChildRegistered(
        child_id=child_id,
        birth_date=common_pb2.Date(year=birth_date.year, month=birth_date.month, day=birth_date.day),
        household_division_code=household,
        registered_at=created,
    )
    return PendingEvent(REGISTRY_CHILD, tenant, "child", child_id, event)


def registered_before_trimming(child_id: str, birth_date: date, *, tenant: str = PILOT_TENANT) -> PendingEvent:
    """ChildRegistered as the registry wrote it before it was trimmed: the whole Child, name and all."""
    created = timestamp_pb2.Timestamp()
    created.FromDatetime(REGISTERED)
    child = registry_pb2.Child(
        child_id=child_id,
        tenant=tenant,
        legal_name=CHILD_NAME,
        birth_date=common_pb2.Date(year=birth_date.year, month=birth_date.month, day=birth_date.day),
        identity_number_masked="*****************4",
        household_division_code="110111008001",
        created_at=created,
    )
    return PendingEvent(REGISTRY_CHILD, tenant, "child", child_id, registry_events.ChildRegistered(child=child))


def caller(role: Role, *, tenant: str = PILOT_TENANT) -> Principal:
    return Principal(
        user_id=f"{role.value}@{tenant}", display_name=role.value, role=role, tenant=tenant, district=tenant[:6]
    )
