"""The agency API over real gRPC with TLS: credentials issued and revoked by the district administrator, an agency
system that sees and moves only what is addressed to it in its district, and a stream of changes that resumes
from a cursor after a drop, losing and repeating nothing."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from minorprot.referral.v1 import referral_pb2, referral_pb2_grpc

from platform_runtime import errors
from platform_runtime.auth import Principal, Role, TokenVerifier, generate_keypair
from platform_runtime.grpc_server import build_server
from platform_runtime.tenancy import acting_as
from services.referral.entrypoints import grpc_api
from services.referral.entrypoints.agency_edge import AgencyEdge
from services.referral.service_layer.credentials import UNNAMED_KEY_ID, AgencyCredentials, agency_signing_key
from services.referral.tests.integration.builders import submitted
from tests.support.events import message
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


@dataclass
class Stack:
    internal: grpc.Channel
    edge_target: str
    certificate: bytes

    def edge(self) -> grpc.Channel:
        credentials = grpc.ssl_channel_credentials(root_certificates=self.certificate)
        return grpc.secure_channel(self.edge_target, credentials)


@contextmanager
def agency_edge(service, credentials) -> Iterator[tuple[str, bytes]]:
    """The agency edge over TLS with these credentials: (its address, its certificate)."""
    certificate, key = self_signed()
    edge = AgencyEdge(service, credentials, port=0, tls=(certificate, key), bind_host="localhost", poll_seconds=0.05)
    edge.start()
    try:
        yield f"localhost:{edge.port}", certificate
    finally:
        edge.stop(0)


@pytest.fixture
def stack(service, database, secrets) -> Iterator[Stack]:
    credentials = AgencyCredentials(database, {"referral-agency-1": generate_keypair()[0]}, service.config)
    internal = build_server(
        port=0,
        verifier=TokenVerifier(secrets.keyring(), "referral"),
        register=grpc_api.register(service, credentials),
        bind_host="127.0.0.1",
    )
    internal.start()
    with (
        agency_edge(service, credentials) as (target, certificate),
        grpc.insecure_channel(f"127.0.0.1:{internal.port}") as channel,
    ):
        yield Stack(channel, target, certificate)
    internal.server.stop(0)


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def issue(stack: Stack, secrets, agency: str, *, tenant: str = "110111008") -> tuple[str, str]:
    admin = auth(secrets.token(tenant=tenant, role=Role.DISTRICT_ADMIN))
    issued = referral_pb2_grpc.AgencyCredentialServiceStub(stack.internal).IssueCredential(
        referral_pb2.IssueCredentialRequest(agency_code=agency, name=f"{agency} 业务系统"), metadata=admin
    )
    return issued.credential.credential_id, issued.token


def test_an_agency_system_works_its_referrals_through_the_edge(stack, consumer, secrets):
    consumer.process(message(submitted("report-a", ["out_of_school"]), "event-a"))
    _, token = issue(stack, secrets, "education")
    with stack.edge() as channel:
        agency = referral_pb2_grpc.AgencyServiceStub(channel)
        (referral,) = agency.ListAgencyReferrals(
            referral_pb2.ListAgencyReferralsRequest(), metadata=auth(token)
        ).referrals
        # The minimum the agency needs to act, never the child's name.
        assert list(referral.case_facts.situation_types) == ["out_of_school"]
        assert referral.case_facts.division_code == "110111008001"
        assert "张小明" not in str(referral)
        accept = referral_pb2.AcceptReferralRequest(referral_id=referral.referral_id, idempotency_key="edu-1")
        first = agency.AcceptReferral(accept, metadata=auth(token)).referral
        assert agency.AcceptReferral(accept, metadata=auth(token)).referral == first  # a retry changes nothing
        done = agency.CompleteReferral(
            referral_pb2.CompleteReferralRequest(
                referral_id=referral.referral_id, outcome="已复学", idempotency_key="edu-2"
            ),
            metadata=auth(token),
        ).referral
    assert (done.status, done.outcome) == ("completed", "已复学")


def test_a_revoked_credential_is_refused_at_once_and_its_open_stream_ends(stack, consumer, secrets):
    consumer.process(message(submitted("report-r", ["out_of_school"]), "event-r"))
    credential_id, token = issue(stack, secrets, "education")
    with stack.edge() as channel:
        agency = referral_pb2_grpc.AgencyServiceStub(channel)
        stream = agency.StreamReferralChanges(referral_pb2.StreamReferralChangesRequest(), metadata=auth(token))
        assert next(stream).referral.agency_code == "education"
        admin = auth(secrets.token(role=Role.DISTRICT_ADMIN))
        revoked = referral_pb2_grpc.AgencyCredentialServiceStub(stack.internal).RevokeCredential(
            referral_pb2.RevokeCredentialRequest(credential_id=credential_id), metadata=admin
        )
        assert revoked.credential.revoked_by == "district_admin@110111008"
        with pytest.raises(grpc.RpcError) as refused:
            agency.ListAgencyReferrals(referral_pb2.ListAgencyReferralsRequest(), metadata=auth(token))
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as ended:
            for _ in stream:
                pass
        assert ended.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_tokens_open_only_their_own_door(stack, secrets):
    _, token = issue(stack, secrets, "education")
    gateway_token = secrets.token(role=Role.AGENCY_SYSTEM, agency="education")
    with stack.edge() as channel:
        with pytest.raises(grpc.RpcError) as refused:
            referral_pb2_grpc.AgencyServiceStub(channel).ListAgencyReferrals(
                referral_pb2.ListAgencyReferralsRequest(), metadata=auth(gateway_token)
            )
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as refused:
        referral_pb2_grpc.AgencyServiceStub(stack.internal).ListAgencyReferrals(
            referral_pb2.ListAgencyReferralsRequest(), metadata=auth(token)
        )
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    # Without TLS the edge does not answer at all.
    with grpc.insecure_channel(stack.edge_target) as plain:
        with pytest.raises(grpc.RpcError) as no_tls:
            referral_pb2_grpc.AgencyServiceStub(plain).ListAgencyReferrals(
                referral_pb2.ListAgencyReferralsRequest(), metadata=auth(token), timeout=3
            )
        assert no_tls.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_only_the_district_administrator_issues_credentials(stack, secrets):
    for role in (Role.CASEWORKER, Role.LEADING_GROUP_OFFICE, Role.AGENCY_OFFICER):
        with pytest.raises(grpc.RpcError) as denied:
            referral_pb2_grpc.AgencyCredentialServiceStub(stack.internal).IssueCredential(
                referral_pb2.IssueCredentialRequest(agency_code="police", name="x"),
                metadata=auth(secrets.token(role=role, agency="police")),
            )
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    credential_id, _ = issue(stack, secrets, "police")
    with pytest.raises(grpc.RpcError) as elsewhere:
        referral_pb2_grpc.AgencyCredentialServiceStub(stack.internal).RevokeCredential(
            referral_pb2.RevokeCredentialRequest(credential_id=credential_id),
            metadata=auth(secrets.token(tenant="110112001", role=Role.DISTRICT_ADMIN)),
        )
    assert elsewhere.value.code() is grpc.StatusCode.NOT_FOUND


def test_another_agency_s_and_another_district_s_referrals_are_refused(stack, consumer, secrets):
    consumer.process(message(submitted("report-o", ["out_of_school"]), "event-o"))
    _, education = issue(stack, secrets, "education")
    _, police = issue(stack, secrets, "police")
    _, far_education = issue(stack, secrets, "education", tenant="110112001")
    with stack.edge() as channel:
        agency = referral_pb2_grpc.AgencyServiceStub(channel)
        (referral,) = agency.ListAgencyReferrals(
            referral_pb2.ListAgencyReferralsRequest(), metadata=auth(education)
        ).referrals
        accept = referral_pb2.AcceptReferralRequest(referral_id=referral.referral_id)
        assert not agency.ListAgencyReferrals(
            referral_pb2.ListAgencyReferralsRequest(), metadata=auth(police)
        ).referrals
        with pytest.raises(grpc.RpcError) as other_agency:
            agency.AcceptReferral(accept, metadata=auth(police))
        assert other_agency.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert not agency.ListAgencyReferrals(
            referral_pb2.ListAgencyReferralsRequest(), metadata=auth(far_education)
        ).referrals
        with pytest.raises(grpc.RpcError) as other_district:
            agency.AcceptReferral(accept, metadata=auth(far_education))
        assert other_district.value.code() is grpc.StatusCode.NOT_FOUND
        police_stream = agency.StreamReferralChanges(
            referral_pb2.StreamReferralChangesRequest(), metadata=auth(police), timeout=1
        )
        with pytest.raises(grpc.RpcError) as nothing:
            next(police_stream)
        assert nothing.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


def test_a_dropped_stream_resumes_from_its_cursor_losing_and_repeating_nothing(stack, consumer, secrets):
    _, token = issue(stack, secrets, "education")
    for number in range(3):
        consumer.process(message(submitted(f"report-s{number}", ["out_of_school"]), f"event-s{number}"))
    received: list[referral_pb2.StreamReferralChangesResponse] = []
    with stack.edge() as channel:
        agency = referral_pb2_grpc.AgencyServiceStub(channel)
        stream = agency.StreamReferralChanges(referral_pb2.StreamReferralChangesRequest(), metadata=auth(token))
        for change in stream:
            received.append(change)
            if len(received) == 2:
                break
        stream.cancel()  # the connection drops
    # Meanwhile: another report, and the agency accepts the first referral from its other system.
    consumer.process(message(submitted("report-s3", ["out_of_school"]), "event-s3"))
    with stack.edge() as channel:
        referral_pb2_grpc.AgencyServiceStub(channel).AcceptReferral(
            referral_pb2.AcceptReferralRequest(referral_id=received[0].referral.referral_id), metadata=auth(token)
        )
    with stack.edge() as channel:
        agency = referral_pb2_grpc.AgencyServiceStub(channel)
        resumed = agency.StreamReferralChanges(
            referral_pb2.StreamReferralChangesRequest(after_cursor=received[-1].cursor), metadata=auth(token)
        )
        rest: list[referral_pb2.StreamReferralChangesResponse] = []
        done = threading.Event()

        def read() -> None:
            for change in resumed:
                rest.append(change)
                if len(rest) == 3:
                    done.set()
                    return

        reader = threading.Thread(target=read)
        reader.start()
        eventually(done.is_set, timeout=10, what="the rest of the changes")
        resumed.cancel()
        reader.join(5)
    seen = [(c.referral.report_id, c.referral.status) for c in received + rest]
    assert seen == [
        ("report-s0", "sent"),
        ("report-s1", "sent"),
        ("report-s2", "sent"),
        ("report-s3", "sent"),
        ("report-s0", "accepted"),
    ]
    cursors = [int(c.cursor) for c in received + rest]
    assert cursors == sorted(set(cursors))


def test_the_district_administrator_s_command_line_issues_lists_and_revokes(
    database, service, secrets, kafka, monkeypatch, capsys
):
    from services.referral.__main__ import main

    private_key, _ = generate_keypair()
    url = database.engine.url.render_as_string(hide_password=False)
    for name, value in {
        "DATABASE_URL": url,
        "OUTBOX_DATABASE_URL": url + "?application_name=relay",
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "AUTH_PUBLIC_KEYS": secrets.public_keys_env,
        "AGENCY_TOKEN_PRIVATE_KEY": private_key,
    }.items():
        monkeypatch.setenv(name, value)
    district = ["--district", "110111", "--by", "admin.wang"]
    assert main(["issue-agency-credential", *district, "--agency", "health", "--name", "医院HIS"]) == 0
    token = capsys.readouterr().out.strip()
    credentials = AgencyCredentials(database, agency_signing_key(private_key), service.config)
    principal = credentials.verify(token)
    assert (principal.agency, principal.district, principal.role) == ("health", "110111", Role.AGENCY_SYSTEM)

    assert main(["list-agency-credentials", *district]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    credential_id, agency, name, state = line.split("\t")
    assert (agency, name) == ("health", "医院HIS") and state.startswith("valid until")
    assert main(["revoke-agency-credential", *district, "--id", credential_id]) == 0
    with pytest.raises(errors.Unauthenticated, match="revoked"):
        credentials.verify(token)


def test_hostile_input_is_refused_plainly(stack, consumer, secrets):
    consumer.process(message(submitted("report-h", ["out_of_school"]), "event-h"))
    _, token = issue(stack, secrets, "education")
    with stack.edge() as channel:
        agency = referral_pb2_grpc.AgencyServiceStub(channel)
        (referral,) = agency.ListAgencyReferrals(
            referral_pb2.ListAgencyReferralsRequest(), metadata=auth(token)
        ).referrals
        for request, call in (
            (referral_pb2.StreamReferralChangesRequest(after_cursor="1; DROP TABLE"), agency.StreamReferralChanges),
            (referral_pb2.ListAgencyReferralsRequest(page_size=10_000), agency.ListAgencyReferrals),
            (referral_pb2.ListAgencyReferralsRequest(due="yesterday"), agency.ListAgencyReferrals),
            (
                referral_pb2.AcceptReferralRequest(referral_id=referral.referral_id, idempotency_key="k" * 101),
                agency.AcceptReferral,
            ),
            (referral_pb2.RejectReferralRequest(referral_id=referral.referral_id, reason=" "), agency.RejectReferral),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                result = call(request, metadata=auth(token))
                if isinstance(request, referral_pb2.StreamReferralChangesRequest):
                    next(result)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, request
        with pytest.raises(grpc.RpcError) as absent:
            agency.AcceptReferral(referral_pb2.AcceptReferralRequest(referral_id="x" * 40), metadata=auth(token))
        assert absent.value.code() is grpc.StatusCode.NOT_FOUND


def test_the_same_key_sent_twice_at_once_changes_the_referral_once(stack, consumer, secrets, database):
    from minorprot.referral.v1 import events_pb2 as referral_events

    from services.referral.tests.integration.builders import PILOT_TENANT
    from tests.support.events import events_of
    from tests.support.race import race

    consumer.process(message(submitted("report-k", ["out_of_school"]), "event-k"))
    _, token = issue(stack, secrets, "education")
    with stack.edge() as channel:
        agency = referral_pb2_grpc.AgencyServiceStub(channel)
        (referral,) = agency.ListAgencyReferrals(
            referral_pb2.ListAgencyReferralsRequest(), metadata=auth(token)
        ).referrals
        accept = referral_pb2.AcceptReferralRequest(referral_id=referral.referral_id, idempotency_key="once")

        def send() -> object:
            return agency.AcceptReferral(accept, metadata=auth(token))

        assert race(send, send) == [grpc.StatusCode.OK, grpc.StatusCode.OK]
    assert len(events_of(database, PILOT_TENANT, referral_events.ReferralAccepted)) == 1


DISTRICT_ADMIN = Principal("admin.wang", "admin.wang", Role.DISTRICT_ADMIN, tenant="110111000", district="110111")


def test_the_signing_key_rotates_with_old_and_new_credentials_working_side_by_side(service, database, consumer):
    """Rotation (ADR 0014): referral signs with a new key while the old one is still accepted, so credentials of
    both keys open the edge side by side; the old one revoked is refused at once; once the old key is retired,
    whatever it signed is refused too."""
    consumer.process(message(submitted("report-k", ["out_of_school"]), "event-k"))
    (old_private, old_public), (new_private, _) = generate_keypair(), generate_keypair()
    before = AgencyCredentials(database, {"referral-agency-2026": old_private}, service.config)
    rotated = AgencyCredentials(
        database,
        {"referral-agency-2027": new_private},
        service.config,
        accepted_keys={"referral-agency-2026": old_public},
    )
    retired = AgencyCredentials(database, {"referral-agency-2027": new_private}, service.config)
    with acting_as(DISTRICT_ADMIN):
        old = before.issue("education", "教委业务系统 旧密钥")
        forgotten = before.issue("education", "教委业务系统 未吊销")
        new = rotated.issue("education", "教委业务系统 新密钥")
    assert jwt.get_unverified_header(old.token)["kid"] == "referral-agency-2026"
    assert jwt.get_unverified_header(new.token)["kid"] == "referral-agency-2027"

    def referrals(target: str, certificate: bytes, token: str) -> list[str]:
        tls = grpc.ssl_channel_credentials(root_certificates=certificate)
        with grpc.secure_channel(target, tls) as channel:
            reply = referral_pb2_grpc.AgencyServiceStub(channel).ListAgencyReferrals(
                referral_pb2.ListAgencyReferralsRequest(), metadata=auth(token)
            )
        return [referral.agency_code for referral in reply.referrals]

    def refused(target: str, certificate: bytes, token: str) -> str:
        with pytest.raises(grpc.RpcError) as raised:
            referrals(target, certificate, token)
        assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
        return str(raised.value.details())

    with agency_edge(service, rotated) as edge:
        assert referrals(*edge, old.token) == referrals(*edge, new.token) == ["education"]
        with acting_as(DISTRICT_ADMIN):
            rotated.revoke(old.credential.credential_id)
        assert "revoked" in refused(*edge, old.token)
        assert referrals(*edge, new.token) == ["education"]
    with agency_edge(service, retired) as edge:
        assert "unknown key" in refused(*edge, forgotten.token)
        assert referrals(*edge, new.token) == ["education"]


def test_a_credential_issued_before_key_ids_is_verified_by_the_unnamed_key(service, database):
    """A credential without `kid` (issued before key ids, with the key then configured as a bare PEM) keeps
    working while that key is accepted as UNNAMED_KEY_ID, and not once it is retired."""
    private_key, public_key = generate_keypair()
    legacy = AgencyCredentials(database, agency_signing_key(private_key), service.config)
    with acting_as(DISTRICT_ADMIN):
        issued = legacy.issue("police", "公安接处警系统")
    assert jwt.get_unverified_header(issued.token)["kid"] == UNNAMED_KEY_ID
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    without_kid = jwt.encode(claims, private_key, algorithm="EdDSA")
    assert "kid" not in jwt.get_unverified_header(without_kid)

    new_key = {"referral-agency-2027": generate_keypair()[0]}
    accepting = AgencyCredentials(database, new_key, service.config, accepted_keys={UNNAMED_KEY_ID: public_key})
    assert accepting.verify(without_kid).agency == "police"
    with pytest.raises(errors.Unauthenticated, match="unknown key"):
        AgencyCredentials(database, new_key, service.config).verify(without_kid)
