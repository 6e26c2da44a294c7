"""A town never sees another town's reports: not through gRPC, not through SQL as the service's role."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.protobuf import timestamp_pb2
from minorprot.common.v1 import common_pb2
from minorprot.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from platform_runtime.auth import Role
from tests.support.infra import OTHER_TENANT, PILOT_TENANT, Secrets
from tests.support.services import Running, bearer

pytestmark = pytest.mark.integration


def submit_request(
    narrative: str = "孩子独自在村口徘徊，衣着单薄，家中无人照看。",
) -> reporting_pb2.SubmitReportRequest:
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    return reporting_pb2.SubmitReportRequest(
        channel=reporting_pb2.CHANNEL_STAFF_HOTLINE,
        child=reporting_pb2.ChildDescription(
            name="王小明", sex=common_pb2.SEX_MALE, birth_date=common_pb2.Date(year=2015, month=3, day=14)
        ),
        division_code=PILOT_TENANT + "201",
        place_text="良乡镇某村村口",
        occurred_at=occurred,
        situation_types=["de_facto_unattended"],
        narrative=narrative,
    )


def test_a_report_of_one_town_is_invisible_to_another_through_grpc(reporting: Running, secrets: Secrets) -> None:
    with reporting.channel() as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        mine = bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER, audience="reporting"))
        theirs = bearer(secrets.token(OTHER_TENANT, Role.CASEWORKER, audience="reporting"))
        submitted = stub.SubmitReport(submit_request(), metadata=mine)
        report_id = submitted.report.report_id

        assert stub.GetReport(reporting_pb2.GetReportRequest(report_id=report_id), metadata=mine).report.report_id
        with pytest.raises(grpc.RpcError) as denied:
            stub.GetReport(reporting_pb2.GetReportRequest(report_id=report_id), metadata=theirs)
        assert denied.value.code() is grpc.StatusCode.NOT_FOUND
        listed = stub.ListReports(reporting_pb2.ListReportsRequest(page_size=200), metadata=theirs)
        assert report_id not in {r.report_id for r in listed.reports}


def test_the_service_role_reads_no_other_town_through_sql(reporting: Running, secrets: Secrets) -> None:
    with reporting.channel() as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        report_id = stub.SubmitReport(
            submit_request(), metadata=bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER, audience="reporting"))
        ).report.report_id

    engine = create_engine(reporting.database.app_url)
    try:
        with engine.begin() as connection:
            # Without a tenant, nothing at all is visible.
            assert connection.execute(text("SELECT count(*) FROM reports")).scalar_one() == 0
        with engine.begin() as connection:
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": OTHER_TENANT})
            rows = connection.execute(text("SELECT id FROM reports WHERE id = :id"), {"id": report_id}).all()
            assert rows == []
            # Nor can it write into the other town's rows, or plant rows in another town.
            changed = connection.execute(text("UPDATE reports SET status = 'closed' WHERE id = :id"), {"id": report_id})
            assert changed.rowcount == 0
        with engine.begin() as connection:
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
            assert (
                connection.execute(text("SELECT count(*) FROM reports WHERE id = :id"), {"id": report_id}).scalar_one()
                == 1
            )
        with pytest.raises(ProgrammingError), engine.begin() as connection:
            # The app role cannot switch row-level security off for itself.
            connection.execute(text("ALTER TABLE reports DISABLE ROW LEVEL SECURITY"))
    finally:
        engine.dispose()

    owner = create_engine(reporting.database.owner_url)
    try:
        with owner.begin() as connection:
            # FORCE ROW LEVEL SECURITY: even the table owner sees nothing without the tenant.
            assert connection.execute(text("SELECT count(*) FROM reports")).scalar_one() == 0
    finally:
        owner.dispose()


def test_calls_without_a_valid_token_are_refused(reporting: Running, secrets: Secrets) -> None:
    from platform_runtime.auth import Principal, TokenIssuer, generate_keypair

    forger_key, _ = generate_keypair()
    principal = Principal("mallory", "mallory", Role.CASEWORKER, PILOT_TENANT, PILOT_TENANT[:6])
    expired = secrets.issuer().issue(principal, "reporting", now=1_000_000, lifetime=60)
    forged = TokenIssuer({"gateway-test1": forger_key}).issue(principal, "reporting")
    with reporting.channel() as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        for metadata in ((), bearer(expired), bearer(forged), bearer("not-a-token")):
            with pytest.raises(grpc.RpcError) as refused:
                stub.ListReports(reporting_pb2.ListReportsRequest(), metadata=metadata)
            assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_invalid_input_lists_every_field_and_leaks_no_trace(reporting: Running, secrets: Secrets) -> None:
    request = submit_request(narrative="短")
    request.division_code = "12"
    del request.situation_types[:]
    with reporting.channel() as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as invalid:
            stub.SubmitReport(
                request, metadata=bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER, audience="reporting"))
            )
    assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = invalid.value.details() or ""
    for field in ("division_code", "situation", "narrative"):
        assert field in details
    assert "Traceback" not in details
    trailers = dict(invalid.value.trailing_metadata() or ())
    assert b"narrative" in trailers["x-field-violations-bin"]


def test_a_public_caller_looks_up_a_receipt_without_a_token(reporting: Running, secrets: Secrets) -> None:
    with reporting.channel() as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        submitted = stub.SubmitReport(
            submit_request(), metadata=bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER, audience="reporting"))
        )
        found = stub.LookupReceipt(reporting_pb2.LookupReceiptRequest(receipt_number=submitted.receipt_number))
    assert found.status in {"已受理", "处理中"}
    assert "王小明" not in str(found)
