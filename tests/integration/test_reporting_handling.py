"""Handling a report after intake, over real gRPC on PostgreSQL: staff record milestones (one reached late
announces its breach at once), give the reporter the outcome notice the law requires and close the report;
the reporter's receipt lookup shows status and notice and nothing else, and is rate-limited.

The deadline checker is idle here (it runs once at start, then hourly): every breach below comes from
RecordMilestone itself."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import partial

import grpc
import pytest
from minorprot.common.v1 import common_pb2
from minorprot.reporting.v1 import events_pb2, reporting_pb2
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from platform_runtime.auth import Role
from platform_runtime.settings import KafkaSettings
from tests.support.infra import PILOT_TENANT, Secrets
from tests.support.reporting_stack import Stack, refused, report_request, running_stack, timestamp

pytestmark = pytest.mark.integration

M = reporting_pb2
NOTICE = "您反映的情况已由乡镇工作人员跟进处理,感谢您的报告。"


@pytest.fixture(scope="module")
def stack(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Stack]:
    with running_stack(postgres_url, kafka, secrets, DEADLINE_CHECK_SECONDS="3600") as running:
        yield running


def crisis_report(stack: Stack) -> reporting_pb2.Report:
    request = report_request(M.CHANNEL_STAFF_WALK_IN, situation_types=["abandoned_or_uncared"])
    report: reporting_pb2.Report = (
        stack.reporting_stub().SubmitReport(request, metadata=stack.auth(Role.CASEWORKER)).report
    )
    return report


def record(stack: Stack, report_id: str, milestone: int, at: dt.datetime | None = None, role: Role = Role.CASEWORKER):
    request = reporting_pb2.RecordMilestoneRequest(report_id=report_id, milestone=milestone)  # type: ignore[arg-type]
    if at is not None:
        request.completed_at.CopyFrom(timestamp(at))
    return stack.reporting_stub().RecordMilestone(request, metadata=stack.auth(role)).report


def lookup(stack: Stack, receipt: str, address: str) -> reporting_pb2.LookupReceiptResponse:
    request = reporting_pb2.LookupReceiptRequest(receipt_number=receipt)
    reply: reporting_pb2.LookupReceiptResponse = stack.reporting_stub().LookupReceipt(
        request, metadata=(("x-forwarded-for", address),)
    )
    return reply


# -- milestones -------------------------------------------------------------------------------------------


def test_a_milestone_reached_late_announces_its_breach_at_once(stack: Stack) -> None:
    report = crisis_report(stack)
    received = report.received_at.ToDatetime(tzinfo=dt.UTC)
    assert report.status == "linked"
    stack.clock.advance(minutes=30)

    # First contact 20 minutes in: on time (1 hour); the acknowledgement it implies came 5 minutes late.
    handled = record(stack, report.report_id, M.MILESTONE_FIRST_CONTACT, received + dt.timedelta(minutes=20))
    assert handled.status == "in_progress"
    acknowledge, contact, assessment = handled.deadlines
    assert acknowledge.completed_at == contact.completed_at == timestamp(received + dt.timedelta(minutes=20))
    assert (acknowledge.breached, contact.breached, assessment.breached) == (True, False, False)
    (breach,) = stack.events(events_pb2.DeadlineBreached, report.report_id)
    assert breach.milestone == M.MILESTONE_ACKNOWLEDGE
    assert breach.completed_at == acknowledge.completed_at and breach.due_at == acknowledge.due_at

    # Recording again changes nothing and announces nothing more.
    again = record(stack, report.report_id, M.MILESTONE_ACKNOWLEDGE)
    assert again.deadlines[0].completed_at == acknowledge.completed_at
    assert len(stack.events(events_pb2.DeadlineBreached, report.report_id)) == 1


def test_impossible_milestones_are_refused_field_by_field(stack: Stack) -> None:
    report = crisis_report(stack)
    received = report.received_at.ToDatetime(tzinfo=dt.UTC)
    for milestone, at, field in (
        (M.MILESTONE_UNSPECIFIED, None, "milestone"),
        (M.MILESTONE_ACKNOWLEDGE, received - dt.timedelta(minutes=1), "completed_at"),
        (M.MILESTONE_ACKNOWLEDGE, received + dt.timedelta(hours=1), "completed_at"),
    ):
        with pytest.raises(grpc.RpcError) as invalid:
            record(stack, report.report_id, milestone, at)
        assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert field.encode() in dict(invalid.value.trailing_metadata() or ())["x-field-violations-bin"]
    assert refused(lambda: record(stack, report.report_id, M.MILESTONE_ACKNOWLEDGE, role=Role.MANDATED_REPORTER)) is (
        grpc.StatusCode.PERMISSION_DENIED
    )


# -- outcome notice and closing ---------------------------------------------------------------------------


def test_a_report_closes_only_after_the_reporter_is_given_the_outcome(stack: Stack) -> None:
    reporting, caseworker = stack.reporting_stub(), stack.auth(Role.CASEWORKER)
    report_id = crisis_report(stack).report_id
    close = reporting_pb2.CloseReportRequest(report_id=report_id)
    assert refused(lambda: reporting.CloseReport(close, metadata=caseworker)) is grpc.StatusCode.FAILED_PRECONDITION
    empty = reporting_pb2.GiveOutcomeNoticeRequest(report_id=report_id, text="  ")
    assert refused(lambda: reporting.GiveOutcomeNotice(empty, metadata=caseworker)) is grpc.StatusCode.INVALID_ARGUMENT
    notice = reporting_pb2.GiveOutcomeNoticeRequest(report_id=report_id, text=NOTICE)
    teacher = stack.auth(Role.MANDATED_REPORTER)
    assert refused(lambda: reporting.GiveOutcomeNotice(notice, metadata=teacher)) is grpc.StatusCode.PERMISSION_DENIED

    assert reporting.GiveOutcomeNotice(notice, metadata=caseworker).report.outcome_notice == NOTICE
    closed = reporting.CloseReport(close, metadata=caseworker).report
    assert closed.status == "closed"
    assert (
        refused(lambda: reporting.GiveOutcomeNotice(notice, metadata=caseworker)) is grpc.StatusCode.FAILED_PRECONDITION
    )
    assert refused(lambda: record(stack, report_id, M.MILESTONE_ASSESSMENT)) is grpc.StatusCode.FAILED_PRECONDITION
    other_town = stack.auth(Role.CASEWORKER, tenant="110111009")
    assert refused(lambda: reporting.CloseReport(close, metadata=other_town)) is grpc.StatusCode.NOT_FOUND


# -- what a reporter sees ---------------------------------------------------------------------------------

SECRETS_OF_THE_REPORT = {
    "child name": "林可欣",
    "child description": "左臂有烫伤疤痕",
    "school": "长阳第二小学",
    "guardian": "林大海",
    "place": "长阳镇某小区3号楼",
    "narrative": "班主任发现孩子连续一周带伤上学",
    "reporter name": "陈老师",
    "reporter phone": "13900000004",
    "reporter organisation": "良乡中心小学",
}


def test_a_receipt_lookup_shows_status_and_notice_and_nothing_else(stack: Stack) -> None:
    request = report_request(
        M.CHANNEL_MANDATED_REPORTER,
        child=reporting_pb2.ChildDescription(
            name="林可欣",
            sex=common_pb2.SEX_FEMALE,
            approximate_age=9,
            description="左臂有烫伤疤痕",
            school="长阳第二小学",
            guardian_names=["林大海"],
        ),
        place_text="长阳镇某小区3号楼",
        narrative="班主任发现孩子连续一周带伤上学,询问时孩子不敢说话。",
        situation_types=["violence_injury_signs"],
    )
    submitted = stack.reporting_stub().SubmitReport(request, metadata=stack.auth(Role.MANDATED_REPORTER))
    report_id, receipt = submitted.report.report_id, submitted.receipt_number

    before = lookup(stack, receipt, "198.51.100.1")
    assert (before.receipt_number, before.status, before.outcome_notice) == (receipt, "处理中", "")
    caseworker = stack.auth(Role.CASEWORKER)
    stack.reporting_stub().GiveOutcomeNotice(
        reporting_pb2.GiveOutcomeNoticeRequest(report_id=report_id, text=NOTICE), metadata=caseworker
    )
    stack.reporting_stub().CloseReport(reporting_pb2.CloseReportRequest(report_id=report_id), metadata=caseworker)
    after = lookup(stack, receipt.lower().replace("-", " "), "198.51.100.1")  # as a person might type it
    assert (after.status, after.outcome_notice) == ("已办结", NOTICE)

    for shown in (before, after):
        assert {field.name for field, _ in shown.ListFields()} <= {
            "receipt_number",
            "received_at",
            "status",
            "outcome_notice",
        }
        text, wire = str(shown), shown.SerializeToString()
        for what, secret in SECRETS_OF_THE_REPORT.items():
            assert secret not in text and secret.encode() not in wire, f"the lookup shows the {what}"
        assert report_id not in text


def test_receipt_lookups_are_rate_limited_per_address_guesses_included(stack: Stack) -> None:
    receipt = (
        stack.reporting_stub()
        .SubmitReport(report_request(M.CHANNEL_PUBLIC_ANONYMOUS), metadata=stack.auth(Role.PUBLIC))
        .receipt_number
    )
    guesser, other = "203.0.113.9", "203.0.113.10"
    for guess in ("R-0000000-0000000-0000000", "R-AAAAAAA-AAAAAAA-AAAAAAA") * 4:
        assert refused(partial(lookup, stack, guess, guesser)) in (
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.NOT_FOUND,
        )
    assert lookup(stack, receipt, guesser).status == "处理中"
    assert lookup(stack, receipt, guesser).status == "处理中"  # the tenth lookup this minute
    assert refused(lambda: lookup(stack, receipt, guesser)) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert lookup(stack, receipt, other).status == "处理中"


# -- reading the details ------------------------------------------------------------------------------------


def test_details_come_only_with_a_purpose_and_every_such_read_is_kept_for_good(stack: Stack) -> None:
    report_id = crisis_report(stack).report_id
    stub = stack.reporting_stub()
    plain = stub.GetReport(M.GetReportRequest(report_id=report_id), metadata=stack.auth(Role.CASEWORKER)).report
    assert plain.details_withheld and not plain.narrative and not plain.HasField("reporter")
    listed = stub.ListReports(M.ListReportsRequest(page_size=50), metadata=stack.auth(Role.CASEWORKER)).reports
    assert all(r.details_withheld and not r.narrative for r in listed)

    bad = M.GetReportRequest(report_id=report_id, purpose=" 看 ")
    assert (
        refused(lambda: stub.GetReport(bad, metadata=stack.auth(Role.CASEWORKER))) is grpc.StatusCode.INVALID_ARGUMENT
    )
    opened = M.GetReportRequest(report_id=report_id, purpose="首次联系前核实情况")
    full = stub.GetReport(opened, metadata=stack.auth(Role.CASEWORKER)).report
    assert full.narrative and not full.details_withheld and full.HasField("reporter")

    caseworker_reads = M.ListReportReadsRequest(report_id=report_id)
    assert refused(lambda: stub.ListReportReads(caseworker_reads, metadata=stack.auth(Role.CASEWORKER))) is (
        grpc.StatusCode.PERMISSION_DENIED
    )
    reads = stub.ListReportReads(caseworker_reads, metadata=stack.auth(Role.TOWN_ADMIN)).reads
    assert [(r.role, r.purpose, r.saw_reporter) for r in reads] == [("caseworker", "首次联系前核实情况", True)]
    other_town = stack.auth(Role.TOWN_ADMIN, tenant="110111009")
    assert refused(lambda: stub.ListReportReads(caseworker_reads, metadata=other_town)) is grpc.StatusCode.NOT_FOUND

    # The read log is append-only for the service's own role: no one erases who looked.
    engine = create_engine(stack.reporting.database.app_url)
    try:
        with pytest.raises(ProgrammingError), engine.begin() as connection:
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
            connection.execute(text("DELETE FROM report_reads"))
    finally:
        engine.dispose()
