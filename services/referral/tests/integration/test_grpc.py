"""The referral service over real loopback gRPC, with signed tokens."""

from functools import partial

import grpc
import pytest
from minorprot.referral.v1 import referral_pb2, referral_pb2_grpc

from platform_runtime.auth import Role, TokenVerifier
from platform_runtime.grpc_server import build_server
from services.referral.entrypoints import grpc_api
from services.referral.tests.integration.builders import submitted
from tests.support.events import message
from tests.support.race import race

pytestmark = pytest.mark.integration


@pytest.fixture
def channel(service, secrets):
    server = build_server(
        port=0, verifier=TokenVerifier(secrets.public_key), register=grpc_api.register(service), bind_host="127.0.0.1"
    )
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel
    server.stop(grace=0)


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def test_staff_read_and_the_agency_moves_its_referral(channel, consumer, secrets):
    consumer.process(message(submitted("report1", ["out_of_school"]), "event1"))
    referrals = referral_pb2_grpc.ReferralServiceStub(channel)
    agencies = referral_pb2_grpc.AgencyServiceStub(channel)
    staff = auth(secrets.token(role=Role.CASEWORKER))

    listed = referrals.ListReferrals(referral_pb2.ListReferralsRequest(report_id="report1"), metadata=staff)
    (referral,) = listed.referrals
    assert (referral.agency_name, referral.status) == ("区教委", "opened")

    education = auth(secrets.token(role=Role.AGENCY_SYSTEM, agency="education"))
    accepted = agencies.AcceptReferral(
        referral_pb2.AcceptReferralRequest(referral_id=referral.referral_id), metadata=education
    )
    assert accepted.referral.status == "accepted"
    completed = agencies.CompleteReferral(
        referral_pb2.CompleteReferralRequest(referral_id=referral.referral_id, outcome="已复学"), metadata=education
    )
    assert completed.referral.status == "completed"
    fetched = referrals.GetReferral(referral_pb2.GetReferralRequest(referral_id=referral.referral_id), metadata=staff)
    assert fetched.referral.status == "completed"

    with pytest.raises(grpc.RpcError) as again:
        agencies.CompleteReferral(
            referral_pb2.CompleteReferralRequest(referral_id=referral.referral_id, outcome="x"), metadata=education
        )
    assert again.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_another_agency_and_the_wrong_roles_are_denied(channel, consumer, secrets):
    consumer.process(message(submitted("report1", ["out_of_school"]), "event1"))
    staff = auth(secrets.token(role=Role.CASEWORKER))
    (referral,) = (
        referral_pb2_grpc.ReferralServiceStub(channel)
        .ListReferrals(referral_pb2.ListReferralsRequest(), metadata=staff)
        .referrals
    )
    accept = referral_pb2.AcceptReferralRequest(referral_id=referral.referral_id)
    agencies = referral_pb2_grpc.AgencyServiceStub(channel)

    for metadata in (
        auth(secrets.token(role=Role.AGENCY_OFFICER, agency="police")),
        staff,
    ):
        with pytest.raises(grpc.RpcError) as denied:
            agencies.AcceptReferral(accept, metadata=metadata)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED

    with pytest.raises(grpc.RpcError) as denied:
        referral_pb2_grpc.ReferralServiceStub(channel).ListReferrals(
            referral_pb2.ListReferralsRequest(),
            metadata=auth(secrets.token(role=Role.AGENCY_OFFICER, agency="education")),
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer not-a-token"),)])
def test_a_caller_without_a_valid_token_is_unauthenticated(channel, metadata):
    with pytest.raises(grpc.RpcError) as refused:
        referral_pb2_grpc.ReferralServiceStub(channel).ListReferrals(
            referral_pb2.ListReferralsRequest(), metadata=metadata
        )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_an_agency_moving_a_referral_it_read_before_a_change_is_aborted(channel, consumer, secrets):
    consumer.process(message(submitted("report-v", ["out_of_school"]), "event-v"))
    staff = auth(secrets.token(role=Role.CASEWORKER))
    listed = referral_pb2_grpc.ReferralServiceStub(channel).ListReferrals(
        referral_pb2.ListReferralsRequest(report_id="report-v"), metadata=staff
    )
    (read,) = listed.referrals
    assert read.version == 1
    agencies = referral_pb2_grpc.AgencyServiceStub(channel)
    education = auth(secrets.token(role=Role.AGENCY_SYSTEM, agency="education"))

    accepted = agencies.AcceptReferral(
        referral_pb2.AcceptReferralRequest(referral_id=read.referral_id, expected_version=read.version),
        metadata=education,
    ).referral
    assert (accepted.status, accepted.version) == ("accepted", 2)
    with pytest.raises(grpc.RpcError) as stale:
        agencies.CompleteReferral(
            referral_pb2.CompleteReferralRequest(
                referral_id=read.referral_id, outcome="已复学", expected_version=read.version
            ),
            metadata=education,
        )
    assert stale.value.code() is grpc.StatusCode.ABORTED
    completed = agencies.CompleteReferral(
        referral_pb2.CompleteReferralRequest(
            referral_id=read.referral_id, outcome="已复学", expected_version=accepted.version
        ),
        metadata=education,
    ).referral
    assert (completed.status, completed.version) == ("completed", 3)


def test_two_accepts_at_once_move_the_referral_once(channel, consumer, secrets):
    consumer.process(message(submitted("report-r", ["out_of_school"]), "event-r"))
    staff = auth(secrets.token(role=Role.CASEWORKER))
    (read,) = (
        referral_pb2_grpc.ReferralServiceStub(channel)
        .ListReferrals(referral_pb2.ListReferralsRequest(report_id="report-r"), metadata=staff)
        .referrals
    )
    accept = partial(
        referral_pb2_grpc.AgencyServiceStub(channel).AcceptReferral,
        referral_pb2.AcceptReferralRequest(referral_id=read.referral_id, expected_version=read.version),
        metadata=auth(secrets.token(role=Role.AGENCY_SYSTEM, agency="education")),
    )
    codes = race(accept, accept)
    assert sorted(code.name for code in codes) == ["ABORTED", "OK"]
