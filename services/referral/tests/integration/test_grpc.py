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
        port=0,
        verifier=TokenVerifier(secrets.keyring(), "referral"),
        register=grpc_api.register(service),
        bind_host="127.0.0.1",
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
    assert (referral.agency_name, referral.status) == ("区教委", "sent")

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
    assert read.version == 2  # opened, then sent
    agencies = referral_pb2_grpc.AgencyServiceStub(channel)
    education = auth(secrets.token(role=Role.AGENCY_SYSTEM, agency="education"))

    accepted = agencies.AcceptReferral(
        referral_pb2.AcceptReferralRequest(referral_id=read.referral_id, expected_version=read.version),
        metadata=education,
    ).referral
    assert (accepted.status, accepted.version) == ("accepted", 3)
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
    assert (completed.status, completed.version) == ("completed", 4)


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


def test_the_whole_lifecycle_over_grpc(channel, consumer, secrets):
    consumer.process(message(submitted("report-l", ["out_of_school"]), "event-l"))
    referrals = referral_pb2_grpc.ReferralServiceStub(channel)
    agencies = referral_pb2_grpc.AgencyServiceStub(channel)
    staff = auth(secrets.token(role=Role.CASEWORKER))
    education = auth(secrets.token(role=Role.AGENCY_SYSTEM, agency="education", tenant="110111009"))

    (listed,) = agencies.ListAgencyReferrals(referral_pb2.ListAgencyReferralsRequest(), metadata=education).referrals
    referral_id = listed.referral_id
    returned = agencies.ReturnReferral(
        referral_pb2.ReturnReferralRequest(referral_id=referral_id, question="哪所学校?", idempotency_key="r1"),
        metadata=education,
    ).referral
    assert returned.status == "returned"
    answered = referrals.AnswerReferral(
        referral_pb2.AnswerReferralRequest(
            referral_id=referral_id, answer="良乡二小", expected_version=returned.version
        ),
        metadata=staff,
    ).referral
    assert (answered.status, answered.last_note) == ("sent", "良乡二小")
    accept = referral_pb2.AcceptReferralRequest(referral_id=referral_id, idempotency_key="a1")
    first = agencies.AcceptReferral(accept, metadata=education).referral
    assert agencies.AcceptReferral(accept, metadata=education).referral == first  # a retry: the same answer
    progressed = agencies.AddProgress(
        referral_pb2.AddProgressRequest(referral_id=referral_id, note="已家访", idempotency_key="p1"),
        metadata=education,
    ).referral
    assert progressed.status == "in_progress"
    agencies.CompleteReferral(
        referral_pb2.CompleteReferralRequest(referral_id=referral_id, outcome="已复学", idempotency_key="c1"),
        metadata=education,
    )
    detail = referrals.GetReferral(referral_pb2.GetReferralRequest(referral_id=referral_id), metadata=education)
    assert detail.referral.outcome == "已复学"
    assert [e.action for e in detail.entries] == ["open", "send", "return", "answer", "accept", "progress", "complete"]


def test_a_rejected_referral_reaches_the_office_which_reassigns_it_over_grpc(channel, consumer, secrets):
    consumer.process(message(submitted("report-j", ["intellectual_or_mental"]), "event-j"))
    agencies = referral_pb2_grpc.AgencyServiceStub(channel)
    referrals = referral_pb2_grpc.ReferralServiceStub(channel)
    federation = auth(secrets.token(role=Role.AGENCY_OFFICER, agency="disabled_persons_federation"))
    (listed,) = agencies.ListAgencyReferrals(referral_pb2.ListAgencyReferralsRequest(), metadata=federation).referrals
    agencies.RejectReferral(
        referral_pb2.RejectReferralRequest(referral_id=listed.referral_id, reason="已毕业"), metadata=federation
    )
    office = auth(secrets.token(role=Role.LEADING_GROUP_OFFICE))
    (escalated,) = referrals.ListDistrictReferrals(
        referral_pb2.ListDistrictReferralsRequest(escalated_only=True), metadata=office
    ).referrals
    assert (escalated.status, escalated.escalated_step) == ("rejected", 2)
    moved = referrals.ReassignReferral(
        referral_pb2.ReassignReferralRequest(referral_id=listed.referral_id, agency_code="human_resources"),
        metadata=office,
    ).referral
    assert (moved.agency_code, moved.status) == ("human_resources", "sent")


def test_another_district_s_agency_and_office_are_refused(channel, consumer, secrets):
    consumer.process(message(submitted("report-d", ["out_of_school"]), "event-d"))
    staff = auth(secrets.token(role=Role.CASEWORKER))
    (referral,) = (
        referral_pb2_grpc.ReferralServiceStub(channel)
        .ListReferrals(referral_pb2.ListReferralsRequest(), metadata=staff)
        .referrals
    )
    elsewhere = auth(secrets.token(role=Role.AGENCY_SYSTEM, agency="education", tenant="110112001"))
    agencies = referral_pb2_grpc.AgencyServiceStub(channel)
    assert not agencies.ListAgencyReferrals(referral_pb2.ListAgencyReferralsRequest(), metadata=elsewhere).referrals
    with pytest.raises(grpc.RpcError) as refused:
        agencies.AcceptReferral(
            referral_pb2.AcceptReferralRequest(referral_id=referral.referral_id), metadata=elsewhere
        )
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as refused:
        referral_pb2_grpc.ReferralServiceStub(channel).GetReferral(
            referral_pb2.GetReferralRequest(referral_id=referral.referral_id),
            metadata=auth(secrets.token(role=Role.LEADING_GROUP_OFFICE, tenant="110112001")),
        )
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND


def test_the_district_administrator_keeps_the_directory_and_rules_over_grpc(channel, secrets):
    from minorprot.referral.v1 import routing_pb2, routing_pb2_grpc

    admin_stub = routing_pb2_grpc.RoutingAdminServiceStub(channel)
    admin = auth(secrets.token(role=Role.DISTRICT_ADMIN))
    agencies = admin_stub.ListAgencies(routing_pb2.ListAgenciesRequest(), metadata=admin).agencies
    health = next(agency for agency in agencies if agency.code == "health")
    health.duty_phone = "010-1234"
    saved = admin_stub.SaveAgency(routing_pb2.SaveAgencyRequest(agency=health), metadata=admin).agency
    assert saved.duty_phone == "010-1234"

    (plan,) = admin_stub.ListRuleSets(routing_pb2.ListRuleSetsRequest(), metadata=admin).rule_sets
    added = admin_stub.AddRuleSet(
        routing_pb2.AddRuleSetRequest(rules=plan.rules, note="从计划开始"), metadata=admin
    ).rule_set
    assert (added.version, len(added.rules)) == (1, len(plan.rules))
    escort = next(rule for rule in plan.rules if rule.code == "ESCORT_SECOND_CENTRE")
    assert escort.min_age == 6
    preview = admin_stub.PreviewRouting(
        routing_pb2.PreviewRoutingRequest(
            situation_types=["wandering"],
            facts=["child_alone", "minor_offences"],
            approximate_age=7,
            draft_rules=[escort],
        ),
        metadata=admin,
    )
    assert [(route.agency_code, route.rule_code) for route in preview.routes] == [("police", "ESCORT_SECOND_CENTRE")]
    assert preview.version == -1

    with pytest.raises(grpc.RpcError) as invalid:
        admin_stub.AddRuleSet(
            routing_pb2.AddRuleSetRequest(effective_from="2001-01-01", rules=plan.rules), metadata=admin
        )
    assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    for role in (Role.CASEWORKER, Role.AGENCY_SYSTEM):
        with pytest.raises(grpc.RpcError) as denied:
            admin_stub.AddRuleSet(
                routing_pb2.AddRuleSetRequest(rules=plan.rules), metadata=auth(secrets.token(role=role))
            )
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    elsewhere = auth(secrets.token(role=Role.DISTRICT_ADMIN, tenant="110112001"))
    assert [
        s.version for s in admin_stub.ListRuleSets(routing_pb2.ListRuleSetsRequest(), metadata=elsewhere).rule_sets
    ] == [0]
