"""Events and callers of the notify integration tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

from google.protobuf import timestamp_pb2
from minorprot.common.v1 import common_pb2
from minorprot.referral.v1 import events_pb2 as referral_events
from minorprot.referral.v1 import referral_pb2
from minorprot.registry.v1 import events_pb2 as registry_events
from minorprot.reporting.v1 import events_pb2 as reporting_events
from minorprot.reporting.v1 import reporting_pb2

from platform_runtime.auth import Principal, Role
from platform_runtime.events import PendingEvent
from platform_runtime.topics import REFERRAL_REFERRAL, REGISTRY_CASE, REPORTING_REPORT
from tests.support.infra import OTHER_TENANT, PILOT_TENANT

__all__ = [
    "OTHER_TENANT",
    "PILOT_TENANT",
    "STAFF",
    "caller",
    "case_assigned",
    "case_status_changed",
    "crisis_declared",
    "deadline_breached",
    "referral_opened",
    "referral_sent",
    "visit_overdue",
]

DUE = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)


def referral_opened(referral_id: str, *, tenant: str = PILOT_TENANT, urgent: bool = False) -> PendingEvent:
    due = timestamp_pb2.Timestamp()
    due.FromDatetime(DUE)
    referral = referral_pb2.Referral(
        referral_id=referral_id,
        tenant=tenant,
        report_id="report1",
        agency_code="education",
        agency_name="区教委",
        status="opened",
        reason="失学辍学 out of school",
        rule_code="SCHOOLING_EDUCATION",
        due_at=due,
        urgent=urgent,
    )
    return PendingEvent(
        REFERRAL_REFERRAL, tenant, "referral", referral_id, referral_events.ReferralOpened(referral=referral)
    )


def referral_sent(referral_id: str, *, tenant: str = PILOT_TENANT) -> PendingEvent:
    """The same referral as `referral_opened`, once it reached the agency."""
    opened = referral_opened(referral_id, tenant=tenant).payload
    assert isinstance(opened, referral_events.ReferralOpened)
    return PendingEvent(
        REFERRAL_REFERRAL, tenant, "referral", referral_id, referral_events.ReferralSent(referral=opened.referral)
    )


def crisis_declared(report_id: str, *, tenant: str = PILOT_TENANT) -> PendingEvent:
    return PendingEvent(
        REPORTING_REPORT,
        tenant,
        "report",
        report_id,
        reporting_events.CrisisDeclared(
            report_id=report_id,
            child_id="",
            division_code=f"{tenant}001",
            situation_types=["abandoned_or_uncared"],
            reasons=["abandoned or long without care"],
            required_actions=["notify_township_duty_officer", "notify_police", "arrange_emergency_shelter"],
        ),
    )


def deadline_breached(report_id: str, *, crisis: bool = False, tenant: str = PILOT_TENANT) -> PendingEvent:
    due = timestamp_pb2.Timestamp()
    due.FromDatetime(DUE)
    return PendingEvent(
        REPORTING_REPORT,
        tenant,
        "report",
        report_id,
        reporting_events.DeadlineBreached(
            report_id=report_id,
            milestone=reporting_pb2.MILESTONE_ACKNOWLEDGE,
            urgency=reporting_pb2.URGENCY_CRISIS if crisis else reporting_pb2.URGENCY_URGENT,
            due_at=due,
            division_code=f"{tenant}001",
        ),
    )


# The named staff of a case as the registry keeps them (free text).
STAFF = {"responsible_person": "王专人", "social_worker": "李社工", "child_director": "张儿童主任"}


def visit_overdue(
    child_id: str, due: date = date(2024, 5, 6), *, tenant: str = PILOT_TENANT, days: int = 13, **staff: str
) -> PendingEvent:
    return PendingEvent(
        REGISTRY_CASE,
        tenant,
        "child",
        child_id,
        registry_events.VisitOverdue(
            case_id=f"case-{child_id}",
            child_id=child_id,
            due_on=common_pb2.Date(year=due.year, month=due.month, day=due.day),
            days_overdue=days,
            risk_level="high",
            **(STAFF | staff),
        ),
    )


def case_status_changed(
    child_id: str, from_status: str, to_status: str, *, tenant: str = PILOT_TENANT, **staff: str
) -> PendingEvent:
    return PendingEvent(
        REGISTRY_CASE,
        tenant,
        "child",
        child_id,
        registry_events.CaseStatusChanged(
            case_id=f"case-{child_id}",
            child_id=child_id,
            from_status=from_status,
            to_status=to_status,
            **(STAFF | staff),
        ),
    )


def case_assigned(child_id: str, *, tenant: str = PILOT_TENANT, **previous: str) -> PendingEvent:
    """STAFF named on the case, replacing `previous` (responsible_person=..., ...; nobody by default)."""
    return PendingEvent(
        REGISTRY_CASE,
        tenant,
        "child",
        child_id,
        registry_events.CaseAssigned(
            case_id=f"case-{child_id}",
            child_id=child_id,
            **STAFF,
            **{f"previous_{name}": value for name, value in previous.items()},
        ),
    )


def caller(role: Role, *, tenant: str = PILOT_TENANT, user: str = "") -> Principal:
    return Principal(
        user_id=user or f"{role.value}@{tenant}",
        display_name=role.value,
        role=role,
        tenant=tenant,
        district=tenant[:6],
    )
