"""TLS on the internal gRPC (ADR 0020, issue 15), over real loopback: the registry as its `serve` builds it from
GRPC_TLS_CERT_FILE / GRPC_TLS_KEY_FILE, called by the runtime's own channels (reporting's child directory and the
gateway's bearer channel) with GRPC_TLS_CA_FILE. A certificate authority and the service's certificate, named
for the host the callers dial, are made here, as the operator's PKI makes them for the chart."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc

from platform_runtime.auth import Principal, Role, ServiceTokens, TokenIssuer, workload_principal
from platform_runtime.grpc_client import bearer_channel
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, GrpcTls, KafkaSettings, SettingsError, read_grpc_tls
from platform_runtime.tenancy import acting_as
from services.registry import bootstrap
from services.registry.settings import load_settings
from services.reporting.adapters.registry_client import GrpcChildDirectory
from services.reporting.domain.model import ChildInfo, Place
from tests.support.infra import PILOT_TENANT, Secrets
from tests.support.services import migrated_database, service_env

pytestmark = pytest.mark.integration

HOST = "localhost"  # the name the callers dial and the certificate carries (in the chart: the Service's name)
CASEWORKER = Principal("caseworker@pilot", "王社工", Role.CASEWORKER, PILOT_TENANT, PILOT_TENANT[:6])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey, ca: bool
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@dataclass(frozen=True)
class Pki:
    """The files the chart mounts from the operator's Secret: tls.crt, tls.key and ca.crt."""

    cert_file: Path
    key_file: Path
    ca_file: Path

    def serving_env(self, health_port: int) -> dict[str, str]:
        return {
            "GRPC_TLS_CERT_FILE": str(self.cert_file),
            "GRPC_TLS_KEY_FILE": str(self.key_file),
            "GRPC_HEALTH_PORT": str(health_port),
        }

    def client_tls(self) -> GrpcTls:
        env = EnvReader({"GRPC_TLS_CA_FILE": str(self.ca_file)})
        tls = read_grpc_tls(env)
        env.done()
        return tls


def make_pki(directory: Path, host: str = HOST) -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minorprot test CA")])
    ca = _certificate("minorprot test CA", ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(host, server_key, ca_name, ca_key, ca=False)
    pki = Pki(directory / "tls.crt", directory / "tls.key", directory / "ca.crt")
    pki.cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(_pem(server_key))
    pki.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return pki


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class TlsRegistry:
    pki: Pki
    port: int
    health_port: int

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"


@pytest.fixture(scope="module")
def tls_registry(
    postgres_url: str, kafka: KafkaSettings, secrets: Secrets, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsRegistry]:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    health_port = free_port()
    db = migrated_database(postgres_url, "registry")
    settings = load_settings(EnvReader(service_env(db, kafka, secrets, **pki.serving_env(health_port))))
    server = build(bootstrap.definition(settings, periodic_work=False))
    server.start()
    try:
        yield TlsRegistry(pki, server.port, health_port)
    finally:
        server.stop(grace=1)


def list_children(channel: grpc.Channel, token: str = "") -> grpc.StatusCode:
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    try:
        registry_pb2_grpc.RegistryServiceStub(channel).ListChildren(
            registry_pb2.ListChildrenRequest(page_size=1), timeout=5, metadata=metadata
        )
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_the_gateways_channel_with_the_ca_calls_a_tls_service(tls_registry: TlsRegistry, secrets: Secrets) -> None:
    token = secrets.issuer().issue(CASEWORKER, "registry")
    channel = bearer_channel(tls_registry.target, lambda: token, tls_registry.pki.client_tls())
    with channel:
        assert list_children(channel) is grpc.StatusCode.OK


def test_reporting_asks_a_tls_registry_as_itself(tls_registry: TlsRegistry, secrets: Secrets) -> None:
    tokens = ServiceTokens(TokenIssuer(secrets.workload_keys["reporting"]))
    directory = GrpcChildDirectory(tls_registry.target, tokens, tls_registry.pki.client_tls())
    with acting_as(workload_principal("reporting", PILOT_TENANT)):
        candidates = directory.match(ChildInfo(name="无此人"), Place(division_code=PILOT_TENANT, text="良乡镇"))
    assert candidates == []


def test_a_client_without_the_ca_is_refused(tls_registry: TlsRegistry, secrets: Secrets, tmp_path: Path) -> None:
    token = secrets.issuer().issue(CASEWORKER, "registry")
    # TLS trusting the system's roots only, and TLS trusting another CA: the handshake fails, no call is made.
    with grpc.secure_channel(tls_registry.target, grpc.ssl_channel_credentials()) as channel:
        assert list_children(channel, token) is grpc.StatusCode.UNAVAILABLE
    with bearer_channel(tls_registry.target, lambda: token, make_pki(tmp_path).client_tls()) as channel:
        assert list_children(channel) is grpc.StatusCode.UNAVAILABLE


def test_a_certificate_for_another_name_is_refused(tls_registry: TlsRegistry, secrets: Secrets) -> None:
    token = secrets.issuer().issue(CASEWORKER, "registry")
    # The right CA, dialled by an address the certificate does not name (127.0.0.1, not localhost).
    target = f"127.0.0.1:{tls_registry.port}"
    with bearer_channel(target, lambda: token, tls_registry.pki.client_tls()) as channel:
        assert list_children(channel) is grpc.StatusCode.UNAVAILABLE


def test_plaintext_is_refused(tls_registry: TlsRegistry, secrets: Secrets) -> None:
    token = secrets.issuer().issue(CASEWORKER, "registry")
    with bearer_channel(tls_registry.target, lambda: token) as channel:
        assert list_children(channel) is grpc.StatusCode.UNAVAILABLE


def test_the_health_port_answers_in_plaintext_and_serves_nothing_else(tls_registry: TlsRegistry) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{tls_registry.health_port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert list_children(channel) is grpc.StatusCode.UNIMPLEMENTED


def test_tls_settings_fail_at_start(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    env = EnvReader({"GRPC_TLS_CERT_FILE": str(pki.cert_file), "GRPC_TLS_CA_FILE": str(tmp_path / "missing.crt")})
    read_grpc_tls(env)
    with pytest.raises(SettingsError) as raised:
        env.done()
    assert any("GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE go together" in p for p in raised.value.problems)
    assert any(p.startswith("GRPC_TLS_CA_FILE cannot be read") for p in raised.value.problems)
