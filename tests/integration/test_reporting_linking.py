"""Every report ends up tied to a child of the register: automatically when one child clearly matches,
otherwise by a person who confirms one of the candidates or registers a new child. Reports about one
child are grouped and all land on that child's case file. Reporting and the registry over real gRPC, on
PostgreSQL, with the registry's consumer reading reporting's events from Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import grpc
import pytest
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2
from minorprot.reporting.v1 import events_pb2, reporting_pb2
from stdnum.cn import ric

from platform_runtime.auth import Role
from platform_runtime.settings import KafkaSettings
from tests.support.infra import OTHER_TENANT, Secrets
from tests.support.reporting_stack import Stack, refused, report_request, running_stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SYSTEM = "police_system"
DENIED, MISSING = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def stack(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Stack]:
    with running_stack(postgres_url, kafka, secrets) as running:
        yield running


def identity_number(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


def register(stack: Stack, name: str, born: tuple[int, int, int], **fields: object) -> str:
    request = registry_pb2.RegisterChildRequest(
        legal_name=name,
        sex=common_pb2.SEX_FEMALE,
        birth_date=common_pb2.Date(year=born[0], month=born[1], day=born[2]),
        residence_division_code="110111008201",
        **fields,  # type: ignore[arg-type]
    )
    reply = stack.registry_stub().RegisterChild(request, metadata=stack.auth(Role.CASEWORKER, audience="registry"))
    return str(reply.child.child_id)


def test_several_possible_children_wait_for_a_person_to_confirm_one(stack: Stack) -> None:
    first = register(stack, "刘思雨", (2016, 4, 2))
    second = register(stack, "刘思雨", (2016, 4, 2), school="窦店中学")
    reporting = stack.reporting_stub()
    caseworker = stack.auth(Role.CASEWORKER)
    request = report_request(
        reporting_pb2.CHANNEL_STAFF_HOTLINE,
        child=reporting_pb2.ChildDescription(name="刘思雨", birth_date=common_pb2.Date(year=2016, month=4, day=2)),
    )
    report = reporting.SubmitReport(request, metadata=caseworker).report
    assert report.status == "needs_attention"
    assert "possible children" in report.attention_reason
    assert not report.child_id

    found = reporting.ListLinkCandidates(
        reporting_pb2.ListLinkCandidatesRequest(report_id=report.report_id), metadata=caseworker
    ).candidates
    assert {first, second} <= {c.child_id for c in found}
    shown = next(c for c in found if c.child_id == second)
    assert (shown.name, shown.school, shown.birth_date.year) == ("刘思雨", "窦店中学", 2016)
    assert shown.reasons and 0 < shown.score <= 1

    linked = reporting.ConfirmLink(
        reporting_pb2.ConfirmLinkRequest(report_id=report.report_id, child_id=second), metadata=caseworker
    ).report
    assert (linked.status, linked.child_id, linked.attention_reason) == ("linked", second, "")
    (event,) = stack.events(events_pb2.ReportLinked, report.report_id)
    assert event.child_id == second

    with pytest.raises(grpc.RpcError) as again:
        reporting.ConfirmLink(
            reporting_pb2.ConfirmLinkRequest(report_id=report.report_id, child_id=first), metadata=caseworker
        )
    assert again.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_a_public_report_is_linked_by_a_person_to_a_new_child(stack: Stack) -> None:
    reporting = stack.reporting_stub()
    public = reporting.SubmitReport(
        report_request(reporting_pb2.CHANNEL_PUBLIC_ANONYMOUS), metadata=stack.auth(Role.PUBLIC)
    )
    report_id = public.report.report_id
    assert public.report.status == "needs_attention"
    caseworker = stack.auth(Role.CASEWORKER)
    linked = reporting.LinkToNewChild(
        reporting_pb2.LinkToNewChildRequest(report_id=report_id), metadata=caseworker
    ).report
    assert linked.status == "linked" and linked.child_id
    child = stack.registry_stub().GetChild(
        registry_pb2.GetChildRequest(child_id=linked.child_id),
        metadata=stack.auth(Role.CASEWORKER, audience="registry"),
    )
    assert child.child.provisional

    # A linked report is not linked again, and registers no second child trying.
    again = reporting_pb2.LinkToNewChildRequest(report_id=report_id)
    assert refused(lambda: reporting.LinkToNewChild(again, metadata=caseworker)) is grpc.StatusCode.FAILED_PRECONDITION


def test_linking_is_for_staff_and_to_children_of_the_town(stack: Stack) -> None:
    reporting = stack.reporting_stub()
    report_id = reporting.SubmitReport(
        report_request(reporting_pb2.CHANNEL_PUBLIC_ANONYMOUS), metadata=stack.auth(Role.PUBLIC)
    ).report.report_id
    teacher = stack.auth(Role.MANDATED_REPORTER)
    candidates = reporting_pb2.ListLinkCandidatesRequest(report_id=report_id)
    new_child = reporting_pb2.LinkToNewChildRequest(report_id=report_id)
    assert refused(lambda: reporting.ListLinkCandidates(candidates, metadata=teacher)) is DENIED
    assert refused(lambda: reporting.ConfirmLink(confirm(report_id, "x"), metadata=teacher)) is DENIED
    assert refused(lambda: reporting.LinkToNewChild(new_child, metadata=teacher)) is DENIED

    # A child of another town is as absent as one that does not exist; so is this report to that town.
    other_towns_child = register_in(stack, OTHER_TENANT)
    caseworker, theirs = stack.auth(Role.CASEWORKER), stack.auth(Role.CASEWORKER, tenant=OTHER_TENANT)
    for child_id in ("no-such-child", other_towns_child):
        assert refused(partial(reporting.ConfirmLink, confirm(report_id, child_id), metadata=caseworker)) is MISSING
    assert refused(lambda: reporting.ConfirmLink(confirm(report_id, other_towns_child), metadata=theirs)) is MISSING


def confirm(report_id: str, child_id: str) -> reporting_pb2.ConfirmLinkRequest:
    return reporting_pb2.ConfirmLinkRequest(report_id=report_id, child_id=child_id)


def register_in(stack: Stack, tenant: str) -> str:
    request = registry_pb2.RegisterChildRequest(
        legal_name="周小北", sex=common_pb2.SEX_MALE, birth_date=common_pb2.Date(year=2015, month=1, day=9)
    )
    return str(
        stack.registry_stub()
        .RegisterChild(request, metadata=stack.auth(Role.CASEWORKER, tenant, "registry"))
        .child.child_id
    )


def test_reports_about_one_child_from_three_channels_end_up_on_one_case_file(stack: Stack) -> None:
    number = identity_number("11011120150309002")
    child_id = register(stack, "王晓雨", (2015, 3, 9), identity_number=number, school="良乡中心小学")
    reporting = stack.reporting_stub()
    child = reporting_pb2.ChildDescription(
        name="王晓雨",
        sex=common_pb2.SEX_FEMALE,
        birth_date=common_pb2.Date(year=2015, month=3, day=9),
        identity_number=number,
    )

    teacher = reporting.SubmitReport(
        report_request(reporting_pb2.CHANNEL_MANDATED_REPORTER, child=child),
        metadata=stack.auth(Role.MANDATED_REPORTER),
    ).report
    police = reporting.SubmitReport(
        report_request(reporting_pb2.CHANNEL_AGENCY_SHARE, child=child, external_reference="JQ-2024-0117"),
        metadata=stack.auth(Role.AGENCY_SYSTEM, user=SYSTEM, agency="police"),
    ).report
    public = reporting.SubmitReport(
        report_request(
            reporting_pb2.CHANNEL_PUBLIC_ANONYMOUS,
            child=reporting_pb2.ChildDescription(name="王晓雨", description="上小学的女孩,约9岁"),
        ),
        metadata=stack.auth(Role.PUBLIC),
    ).report
    assert (teacher.status, teacher.child_id) == ("linked", child_id)
    assert (police.status, police.child_id) == ("linked", child_id)
    assert public.status == "needs_attention"  # a public report never searches the register itself

    caseworker = stack.auth(Role.CASEWORKER)
    candidates = reporting.ListLinkCandidates(
        reporting_pb2.ListLinkCandidatesRequest(report_id=public.report_id), metadata=caseworker
    ).candidates
    assert child_id in {c.child_id for c in candidates}
    public = reporting.ConfirmLink(
        reporting_pb2.ConfirmLinkRequest(report_id=public.report_id, child_id=child_id), metadata=caseworker
    ).report

    # Grouped, not duplicated: one incident group for the child, and the register holds one child.
    assert teacher.group_id == police.group_id == public.group_id == teacher.report_id
    report_ids = {teacher.report_id, police.report_id, public.report_id}

    def on_the_case_file() -> set[str] | None:
        case_file = (
            stack.registry_stub()
            .GetCaseFile(
                registry_pb2.GetCaseFileRequest(child_id=child_id, purpose="核对报告 checking the reports"),
                metadata=stack.auth(Role.CASEWORKER, audience="registry"),
            )
            .case_file
        )
        found = {entry.reference_id for entry in case_file.timeline if entry.kind == "report"}
        return found if report_ids <= found else None

    assert eventually(on_the_case_file, what="three reports on the case file") == report_ids
