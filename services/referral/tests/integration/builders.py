"""Events and callers of the referral integration tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from minorprot.reporting.v1 import events_pb2 as reporting_events
from minorprot.reporting.v1 import reporting_pb2

from platform_runtime.auth import Principal, Role
from platform_runtime.events import PendingEvent
from platform_runtime.topics import REPORTING_REPORT
from tests.support.infra import OTHER_TENANT, PILOT_TENANT

__all__ = [
    "CHILD_NAME",
    "OTHER_TENANT",
    "PILOT_TENANT",
    "RECEIVED",
    "caller",
    "linked",
    "submitted",
    "submitted_before_summaries",
    "triage_confirmed",
]

RECEIVED = datetime(2024, 5, 6, 1, 0, tzinfo=UTC)
CHILD_NAME = "张小明"


def summary(
    report_id: str,
    situations: list[str],
    *,
    tenant: str = PILOT_TENANT,
    urgency: reporting_pb2.Urgency.ValueType = reporting_pb2.URGENCY_NORMAL,
    crisis: bool = False,
    facts: tuple[str, ...] = (),
    age: int = 0,
) -> reporting_events.ReportSummary:
    received = timestamp_pb2.Timestamp()
    received.FromDatetime(RECEIVED)
    return reporting_events.ReportSummary(
        report_id=report_id,
        urgency=urgency,
        approximate_age=age,
        division_code=f"{tenant}001",
        received_at=received,
        situation_types=situations,
        facts=facts,
        crisis=crisis,
    )


def submitted(
    report_id: str,
    situations: list[str],
    *,
    tenant: str = PILOT_TENANT,
    awaiting_triage: bool = False,
    **facts: Any,
) -> PendingEvent:
    event = reporting_events.ReportSubmitted(
        summary=summary(report_id, situations, tenant=tenant, **facts), awaiting_triage=awaiting_triage
    )
    return PendingEvent(REPORTING_REPORT, tenant, "report", report_id, event)


def triage_confirmed(
    report_id: str, situations: list[str], *, tenant: str = PILOT_TENANT, **facts: Any
) -> PendingEvent:
    event = reporting_events.ReportTriageConfirmed(summary=summary(report_id, situations, tenant=tenant, **facts))
    return PendingEvent(REPORTING_REPORT, tenant, "report", report_id, event)


def submitted_before_summaries(report_id: str, situations: list[str], *, tenant: str = PILOT_TENANT) -> PendingEvent:
    """A ReportSubmitted as reporting wrote them before the summary: the whole report, the child's name too."""
    short = summary(report_id, situations, tenant=tenant)
    report = reporting_pb2.Report(
        report_id=report_id,
        tenant=tenant,
        status="triaged",
        urgency=short.urgency,
        child=reporting_pb2.ChildDescription(name=CHILD_NAME, description="八岁男孩 boy of about eight"),
        division_code=short.division_code,
        received_at=short.received_at,
        situation_types=situations,
        narrative="他在车站乞讨 begging at the station",
    )
    return PendingEvent(REPORTING_REPORT, tenant, "report", report_id, reporting_events.ReportSubmitted(report=report))


def linked(report_id: str, child_id: str, *, tenant: str = PILOT_TENANT, at: datetime | None = None) -> PendingEvent:
    return PendingEvent(
        REPORTING_REPORT,
        tenant,
        "report",
        report_id,
        reporting_events.ReportLinked(report_id=report_id, child_id=child_id, group_id=report_id),
        occurred_at=at or datetime.now(UTC),
    )


def caller(role: Role, *, tenant: str = PILOT_TENANT, agency: str = "") -> Principal:
    return Principal(
        user_id=f"{role.value}@{tenant}",
        display_name=role.value,
        role=role,
        tenant=tenant,
        district=tenant[:6],
        agency=agency,
    )
