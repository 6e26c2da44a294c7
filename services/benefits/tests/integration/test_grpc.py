"""The benefits service over real loopback gRPC, with signed tokens."""

from datetime import date

import grpc
import pytest
from minorprot.benefits.v1 import benefits_pb2, benefits_pb2_grpc

from platform_runtime.auth import Role, TokenVerifier
from platform_runtime.grpc_server import build_server
from services.benefits.entrypoints import grpc_api
from services.benefits.tests.integration.builders import registered
from tests.support.events import message

pytestmark = pytest.mark.integration


@pytest.fixture
def stub(services, secrets):
    server = build_server(
        port=0, verifier=TokenVerifier(secrets.public_key), register=grpc_api.register(services), bind_host="127.0.0.1"
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
