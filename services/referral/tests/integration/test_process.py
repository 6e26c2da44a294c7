"""The whole referral process as `serve` builds it from its environment: the internal server, the consumers, the
escalation worker and the agency edge with TLS, its certificate and key given as PEM like the chart gives them."""

from __future__ import annotations

import socket

import grpc
import pytest
from minorprot.referral.v1 import referral_pb2, referral_pb2_grpc

from platform_runtime.auth import Role, generate_keypair
from platform_runtime.service import build
from platform_runtime.settings import EnvReader
from services.referral import bootstrap
from services.referral.adapters.orm import APPEND_ONLY_TABLES
from services.referral.settings import load_settings
from services.referral.tests.integration.test_agency_api import self_signed
from tests.support.services import migrated_database, service_env

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_starts_the_agency_edge_with_tls(postgres_url, kafka, secrets):
    db = migrated_database(postgres_url, "referral", APPEND_ONLY_TABLES)
    certificate, key = self_signed()
    edge_port = free_port()
    env = service_env(
        db,
        kafka,
        secrets,
        AGENCY_GRPC_PORT=str(edge_port),
        AGENCY_TOKEN_PRIVATE_KEY=generate_keypair()[0],
        AGENCY_TLS_CERT=certificate.decode(),
        AGENCY_TLS_KEY=key.decode(),
        ESCALATION_CHECK_SECONDS="1",
    )
    server = build(bootstrap.definition(load_settings(EnvReader(env))))
    assert {worker.name for worker in server.workers} >= {"referral-escalations", "referral-agency-edge"}
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as internal:
            issued = referral_pb2_grpc.AgencyCredentialServiceStub(internal).IssueCredential(
                referral_pb2.IssueCredentialRequest(agency_code="police", name="接处警"),
                metadata=(("authorization", f"Bearer {secrets.token(role=Role.DISTRICT_ADMIN)}"),),
            )
        tls = grpc.ssl_channel_credentials(root_certificates=certificate)
        with grpc.secure_channel(f"localhost:{edge_port}", tls) as edge:
            grpc.channel_ready_future(edge).result(timeout=15)
            listed = referral_pb2_grpc.AgencyServiceStub(edge).ListAgencyReferrals(
                referral_pb2.ListAgencyReferralsRequest(), metadata=(("authorization", f"Bearer {issued.token}"),)
            )
        assert list(listed.referrals) == []
    finally:
        server.stop(grace=1)


def test_tls_needs_both_its_certificate_and_its_key(postgres_url, kafka, secrets):
    env = {
        "DATABASE_URL": "sqlite:///unused.db",
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "AUTH_PUBLIC_KEYS": secrets.public_keys_env,
        "AGENCY_TLS_CERT": self_signed()[0].decode(),
    }
    with pytest.raises(Exception, match="AGENCY_TLS_KEY go together"):
        load_settings(EnvReader(env))
