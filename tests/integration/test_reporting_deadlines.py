"""Time limits per urgency: the deadline checker (a worker thread of the reporting process, run as `serve`
composes it, every second here, on the test's clock) announces each missed milestone once, and notify
turns it into notifications for the town's caseworkers (and its administrator for a crisis)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from minorprot.notify.v1 import notify_pb2, notify_pb2_grpc
from minorprot.reporting.v1 import events_pb2, reporting_pb2

from platform_runtime.auth import Role
from platform_runtime.settings import KafkaSettings
from tests.support.infra import Secrets
from tests.support.reporting_stack import Stack, report_request, running_stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

M = reporting_pb2


@pytest.fixture(scope="module")
def stack(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Stack]:
    with running_stack(postgres_url, kafka, secrets, DEADLINE_CHECK_SECONDS="1") as running:
        yield running


def submit(stack: Stack, situations: list[str], facts: tuple[str, ...] = ()) -> reporting_pb2.Report:
    request = report_request(M.CHANNEL_STAFF_HOTLINE, situation_types=situations, facts=list(facts))
    report: reporting_pb2.Report = (
        stack.reporting_stub().SubmitReport(request, metadata=stack.auth(Role.CASEWORKER)).report
    )
    return report


def breaches(stack: Stack, report_id: str) -> list[events_pb2.DeadlineBreached]:
    return stack.events(events_pb2.DeadlineBreached, report_id)


def breached(stack: Stack, report_id: str, milestone: int) -> list[events_pb2.DeadlineBreached]:
    return [event for event in breaches(stack, report_id) if event.milestone == milestone]


def inbox(stack: Stack, role: Role, report_id: str) -> list[notify_pb2.Notification]:
    stub = notify_pb2_grpc.NotifyServiceStub(stack.channels["notify"])
    found = stub.ListInbox(
        notify_pb2.ListInboxRequest(page_size=200), metadata=stack.auth(role, audience="notify")
    ).notifications
    return [n for n in found if n.subject_id == report_id and n.title.startswith("办理超时")]


def test_a_missed_crisis_deadline_is_announced_once_to_caseworkers_and_the_town_admin(stack: Stack) -> None:
    report = submit(stack, ["abandoned_or_uncared"])
    assert report.urgency == M.URGENCY_CRISIS
    assert [d.milestone for d in report.deadlines] == [
        M.MILESTONE_ACKNOWLEDGE,
        M.MILESTONE_FIRST_CONTACT,
        M.MILESTONE_ASSESSMENT,
    ]
    assert report.deadlines[0].due_at.ToSeconds() - report.received_at.ToSeconds() == 15 * 60

    stack.clock.advance(minutes=16)  # acknowledging a crisis has 15 minutes
    (acknowledge,) = eventually(lambda: breached(stack, report.report_id, M.MILESTONE_ACKNOWLEDGE), what="a breach")
    assert acknowledge.urgency == M.URGENCY_CRISIS and not acknowledge.HasField("completed_at")
    assert acknowledge.due_at == report.deadlines[0].due_at

    stack.clock.advance(minutes=50)  # first contact within the hour
    eventually(lambda: breached(stack, report.report_id, M.MILESTONE_FIRST_CONTACT), what="the next breach")
    # The checker went round many times meanwhile: still one event per milestone.
    assert [e.milestone for e in breaches(stack, report.report_id)] == [
        M.MILESTONE_ACKNOWLEDGE,
        M.MILESTONE_FIRST_CONTACT,
    ]

    for role in (Role.CASEWORKER, Role.TOWN_ADMIN):
        found = eventually(partial(inbox, stack, role, report.report_id), what=f"{role} notified")
        assert {n.priority for n in found} == {notify_pb2.PRIORITY_CRISIS}
    seen = stack.reporting_stub().GetReport(
        reporting_pb2.GetReportRequest(report_id=report.report_id), metadata=stack.auth(Role.CASEWORKER)
    )
    assert [d.breached for d in seen.report.deadlines] == [True, True, False]


def test_an_urgent_report_tells_only_the_caseworkers(stack: Stack) -> None:
    report = submit(stack, ["out_of_school"], ("injured",))
    assert report.urgency == M.URGENCY_URGENT
    stack.clock.advance(hours=5)  # acknowledging an urgent report has 4 hours
    eventually(lambda: inbox(stack, Role.CASEWORKER, report.report_id), what="the caseworkers notified")
    assert {n.priority for n in inbox(stack, Role.CASEWORKER, report.report_id)} == {notify_pb2.PRIORITY_URGENT}
    assert inbox(stack, Role.TOWN_ADMIN, report.report_id) == []


def test_reached_milestones_and_closed_reports_are_never_announced(stack: Stack) -> None:
    reporting, caseworker = stack.reporting_stub(), stack.auth(Role.CASEWORKER)
    on_time = submit(stack, ["violence_injury_signs"])
    closed = submit(stack, ["violence_injury_signs"])
    watched = submit(stack, ["violence_injury_signs"])
    reporting.RecordMilestone(
        reporting_pb2.RecordMilestoneRequest(report_id=on_time.report_id, milestone=M.MILESTONE_ACKNOWLEDGE),
        metadata=caseworker,
    )
    reporting.GiveOutcomeNotice(
        reporting_pb2.GiveOutcomeNoticeRequest(report_id=closed.report_id, text="经核实,情况已由派出所处置。"),
        metadata=caseworker,
    )
    reporting.CloseReport(reporting_pb2.CloseReportRequest(report_id=closed.report_id), metadata=caseworker)

    stack.clock.advance(minutes=20)
    # Once the open report's breach is out, the checker has passed the other two in the same round.
    eventually(lambda: breached(stack, watched.report_id, M.MILESTONE_ACKNOWLEDGE), what="the open report's breach")
    assert breaches(stack, on_time.report_id) == []
    assert breaches(stack, closed.report_id) == []
