"""No lost or doubled updates of reports: two people linking one report at once, edits from a stale read, and
a submission retried with the same idempotency key. Reporting and the registry over real gRPC, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import grpc
import pytest
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2
from minorprot.reporting.v1 import events_pb2, reporting_pb2

from platform_runtime.auth import Role
from platform_runtime.settings import KafkaSettings
from tests.support.infra import Secrets
from tests.support.race import race
from tests.support.reporting_stack import Stack, report_request, running_stack

pytestmark = pytest.mark.integration

LOSER_CODES = {grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION}


@pytest.fixture(scope="module")
def stack(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Stack]:
    with running_stack(postgres_url, kafka, secrets) as running:
        yield running


def register(stack: Stack, name: str) -> str:
    request = registry_pb2.RegisterChildRequest(
        legal_name=name, sex=common_pb2.SEX_MALE, birth_date=common_pb2.Date(year=2016, month=8, day=9)
    )
    return str(
        stack.registry_stub()
        .RegisterChild(request, metadata=stack.auth(Role.CASEWORKER, audience="registry"))
        .child.child_id
    )


def public_report(stack: Stack) -> reporting_pb2.Report:
    """A public report: a person links it, so it waits unlinked."""
    request = report_request(reporting_pb2.CHANNEL_PUBLIC_ANONYMOUS)
    report: reporting_pb2.Report = stack.reporting_stub().SubmitReport(request, metadata=stack.auth(Role.PUBLIC)).report
    assert report.status == "needs_attention" and report.version >= 1
    return report


def test_two_people_link_one_report_to_two_children_at_once_and_one_wins(stack: Stack) -> None:
    """The issue's case: before, both ConfirmLink calls passed and the report was linked to two children."""
    confirm = stack.reporting_stub().ConfirmLink
    for round_ in range(3):
        report = public_report(stack)
        first, second = register(stack, f"吴小{'一二三'[round_]}"), register(stack, f"郑小{'一二三'[round_]}")
        codes = race(
            *[
                partial(
                    confirm,
                    reporting_pb2.ConfirmLinkRequest(report_id=report.report_id, child_id=child),
                    metadata=stack.auth(Role.CASEWORKER, user=user),
                )
                for child, user in ((first, "li.sg"), (second, "wang.sg"))
            ]
        )
        assert codes.count(grpc.StatusCode.OK) == 1 and set(codes) - {grpc.StatusCode.OK} <= LOSER_CODES, codes
        winner = (first, second)[codes.index(grpc.StatusCode.OK)]
        stored = (
            stack.reporting_stub()
            .GetReport(reporting_pb2.GetReportRequest(report_id=report.report_id), metadata=stack.auth(Role.CASEWORKER))
            .report
        )
        assert stored.child_id == winner
        assert [event.child_id for event in stack.events(events_pb2.ReportLinked, report.report_id)] == [winner]


def test_a_link_from_a_stale_read_is_aborted_and_the_current_version_goes_through(stack: Stack) -> None:
    reporting, caseworker = stack.reporting_stub(), stack.auth(Role.CASEWORKER)
    report = public_report(stack)
    child = register(stack, "冯小雨")

    request = reporting_pb2.ConfirmLinkRequest(report_id=report.report_id, child_id=child)
    request.expected_version = report.version - 1
    with pytest.raises(grpc.RpcError) as stale:
        reporting.ConfirmLink(request, metadata=caseworker)
    assert stale.value.code() is grpc.StatusCode.ABORTED
    assert "reload" in (stale.value.details() or "")

    fresh = reporting_pb2.LinkToNewChildRequest(report_id=report.report_id, expected_version=report.version - 1)
    with pytest.raises(grpc.RpcError) as stale_new:
        reporting.LinkToNewChild(fresh, metadata=caseworker)
    assert stale_new.value.code() is grpc.StatusCode.ABORTED

    request.expected_version = report.version
    linked = reporting.ConfirmLink(request, metadata=caseworker).report
    assert (linked.child_id, linked.version) == (child, report.version + 1)
    with pytest.raises(grpc.RpcError) as again:
        reporting.ConfirmLink(request, metadata=caseworker)
    assert again.value.code() is grpc.StatusCode.ABORTED  # it read version N; the link made it N + 1


def test_a_retried_submission_with_the_same_key_is_the_same_report(stack: Stack) -> None:
    """What the gateway sends for every portal submission: the same key twice, even at once, is one report."""
    submit = stack.reporting_stub().SubmitReport
    teacher = stack.auth(Role.MANDATED_REPORTER, user="chen.teacher")
    request = report_request(reporting_pb2.CHANNEL_MANDATED_REPORTER, external_reference="form-7f3a9c")
    results: list[reporting_pb2.SubmitReportResponse] = []
    codes = race(*[lambda: results.append(submit(request, metadata=teacher))] * 2)
    assert codes == [grpc.StatusCode.OK, grpc.StatusCode.OK]
    again = submit(request, metadata=teacher)
    assert {r.report.report_id for r in results} == {again.report.report_id}
    assert sum(1 for r in (*results, again) if r.receipt_number) == 1  # the receipt is shown once

    # The same key from another person is theirs: a separate report, never the first one.
    other = submit(request, metadata=stack.auth(Role.MANDATED_REPORTER, user="liu.doctor"))
    assert other.report.report_id != again.report.report_id and other.receipt_number
