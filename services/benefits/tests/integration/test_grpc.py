"""The benefits service over real loopback gRPC, with signed tokens."""

from datetime import date

import grpc
import pytest
from minorprot.benefits.v1 import benefits_pb2, benefits_pb2_grpc
from minorprot.common.v1 import common_pb2

from platform_runtime.auth import Role, TokenVerifier
from platform_runtime.grpc_server import build_server
from services.benefits.entrypoints import grpc_api
from services.benefits.tests.integration.builders import registered
from tests.support.events import message

pytestmark = pytest.mark.integration


@pytest.fixture
def stub(services, secrets):
    server = build_server(
        port=0,
        verifier=TokenVerifier(secrets.keyring(), "benefits"),
        register=grpc_api.register(services),
        bind_host="127.0.0.1",
    )
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield benefits_pb2_grpc.BenefitsServiceStub(channel)
    server.stop(grace=0)


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.mark.parametrize("role", [Role.CASEWORKER, Role.FINANCE_AUDITOR])
def test_staff_list_the_towns_enrolments(stub, consumer, secrets, role):
    consumer.process(message(registered("child1", date(2024, 1, 10)), "event1"))
    reply = stub.ListInsuranceEnrolments(
        benefits_pb2.ListInsuranceEnrolmentsRequest(child_id="child1"), metadata=auth(secrets.token(role=role))
    )
    (enrolment,) = reply.enrolments
    assert enrolment.child_id == "child1"
    assert (enrolment.covered_until.year, enrolment.covered_until.month, enrolment.covered_until.day) == (2027, 1, 9)


def test_an_agency_is_denied(stub, secrets):
    with pytest.raises(grpc.RpcError) as denied:
        stub.ListInsuranceEnrolments(
            benefits_pb2.ListInsuranceEnrolmentsRequest(),
            metadata=auth(secrets.token(role=Role.AGENCY_OFFICER, agency="education")),
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer not-a-token"),)])
def test_a_caller_without_a_valid_token_is_unauthenticated(stub, metadata):
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListInsuranceEnrolments(benefits_pb2.ListInsuranceEnrolmentsRequest(), metadata=metadata)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_the_run_and_policy_calls_over_grpc_with_their_refusals(stub, secrets):
    admin = auth(secrets.token(role=Role.DISTRICT_ADMIN, user="admin"))
    loaded = stub.LoadSamplePolicy(benefits_pb2.LoadSamplePolicyRequest(), metadata=admin)
    assert loaded.version.sample and loaded.version.version == 1
    assert not stub.LoadSamplePolicy(benefits_pb2.LoadSamplePolicyRequest(), metadata=admin).HasField("version")
    (version,) = stub.ListPolicyVersions(benefits_pb2.ListPolicyVersionsRequest(), metadata=admin).versions
    orphan = next(rule for rule in version.rules if rule.code == "BLA_ORPHAN")
    assert (orphan.amount_fen, orphan.kind, orphan.combine) == (144_000, "base", "higher")

    bad = benefits_pb2.PolicyVersion()
    bad.CopyFrom(version)
    bad.version = 0
    bad.rules[0].amount_fen = -5
    with pytest.raises(grpc.RpcError) as refused:
        stub.SavePolicyVersion(benefits_pb2.SavePolicyVersionRequest(version=bad), metadata=admin)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    officer = auth(secrets.token(role=Role.DISTRICT_OFFICER, user="maker"))
    period = benefits_pb2.OpenRunRequest(period=common_pb2.Date(year=2024, month=5, day=1))
    run = stub.OpenRun(period, metadata=officer).run
    assert run.status == "draft"
    computed = stub.AdvanceRun(benefits_pb2.AdvanceRunRequest(run_id=run.run_id, step="compute"), metadata=officer).run
    assert computed.status == "computed"
    for step, code in (("launch", grpc.StatusCode.INVALID_ARGUMENT), ("check", grpc.StatusCode.PERMISSION_DENIED)):
        with pytest.raises(grpc.RpcError) as refused:
            stub.AdvanceRun(benefits_pb2.AdvanceRunRequest(run_id=run.run_id, step=step), metadata=officer)
        assert refused.value.code() is code
    with pytest.raises(grpc.RpcError) as refused:
        stub.OpenRun(period, metadata=auth(secrets.token(role=Role.CASEWORKER)))
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    stranger = auth(secrets.token(tenant="110112001", role=Role.DISTRICT_OFFICER))
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetRun(benefits_pb2.GetRunRequest(run_id=run.run_id), metadata=stranger)
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
