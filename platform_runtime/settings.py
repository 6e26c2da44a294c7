"""Typed settings read once from the environment, failing fast with every problem listed.

Each service composes these readers into its own frozen settings dataclass in `services/<name>/settings.py`.
No secret has a default: a missing key stops the process at start, never at the first request.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from platform_runtime.auth import Keyring, read_keys, signing_key_problem

T = TypeVar("T")


class SettingsError(Exception):
    """Raised once with every missing or invalid setting, so an operator fixes them all in one go."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass
class EnvReader:
    """Collects problems instead of stopping at the first one; call `done()` after reading everything."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    problems: list[str] = field(default_factory=list)

    def _raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        return value if value not in (None, "") else None

    def required(self, name: str) -> str:
        value = self._raw(name)
        if value is None:
            self.problems.append(f"{name} is required")
            return ""
        return value

    def optional(self, name: str, default: str = "") -> str:
        value = self._raw(name)
        return default if value is None else value

    def parsed(self, name: str, parse: Callable[[str], T], default: T, *, required: bool = False) -> T:
        value = self._raw(name)
        if value is None:
            if required:
                self.problems.append(f"{name} is required")
            return default
        try:
            return parse(value)
        except (ValueError, binascii.Error) as exc:
            self.problems.append(f"{name} is invalid: {exc}")
            return default

    def integer(self, name: str, default: int, *, minimum: int = 0, maximum: int = 2**31) -> int:
        def parse(text: str) -> int:
            number = int(text)
            if not minimum <= number <= maximum:
                raise ValueError(f"must be between {minimum} and {maximum}")
            return number

        return self.parsed(name, parse, default)

    def done(self) -> None:
        if self.problems:
            raise SettingsError(self.problems)


def decode_key(text: str, *, length: int = 32) -> bytes:
    """A base64 key of exactly `length` bytes (keys are generated, never typed by hand)."""
    key = base64.b64decode(text, validate=True)
    if len(key) != length:
        raise ValueError(f"key must decode to {length} bytes, got {len(key)}")
    return key


def decode_keyring(text: str) -> dict[str, bytes]:
    """`kid:base64,kid:base64`: the first key encrypts, every key decrypts (rotation without downtime)."""
    ring: dict[str, bytes] = {}
    for item in text.split(","):
        kid, sep, encoded = item.strip().partition(":")
        if not sep or not kid:
            raise ValueError("expected kid:base64key[,kid:base64key...]")
        if kid in ring:
            raise ValueError(f"key id {kid} appears twice")
        ring[kid] = decode_key(encoded)
    return ring


def pem_or_file(text: str) -> str:
    """A PEM given inline, or a path to a file holding it (how Kubernetes secrets are mounted)."""
    if "-----BEGIN" in text:
        return text
    with open(text, encoding="ascii") as handle:
        pem = handle.read()
    if "-----BEGIN" not in pem:
        raise ValueError(f"{text} does not hold a PEM key")
    return pem


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = ""

    def client_config(self) -> dict[str, str | int | float | bool]:
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config |= {
                "sasl.mechanism": self.sasl_mechanism,
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password,
            }
        return config


@dataclass(frozen=True)
class GrpcTls:
    """TLS of the internal gRPC (ADR 0020): the certificate chain and key a service serves with, and the CA its
    calls to other services trust. Empty: plaintext, as the local stack and the tests run."""

    certificate: bytes = b""
    private_key: bytes = b""
    ca: bytes = b""
    # A plaintext port serving only grpc.health.v1, for the kubelet's native gRPC probes (they cannot do TLS).
    health_port: int = 0


def _pem_file(env: EnvReader, name: str) -> bytes:
    path = env.optional(name)
    if not path:
        return b""
    try:
        with open(path, "rb") as handle:
            pem = handle.read()
    except OSError as exc:
        env.problems.append(f"{name} cannot be read: {exc.strerror} ({path})")
        return b""
    if b"-----BEGIN" not in pem:
        env.problems.append(f"{name}: {path} does not hold a PEM")
        return b""
    return pem


def read_grpc_tls(env: EnvReader) -> GrpcTls:
    """GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE (serving), GRPC_TLS_CA_FILE (calling), GRPC_HEALTH_PORT: files,
    as Kubernetes mounts a Secret; read once at start so a missing one stops the process there."""
    tls = GrpcTls(
        certificate=_pem_file(env, "GRPC_TLS_CERT_FILE"),
        private_key=_pem_file(env, "GRPC_TLS_KEY_FILE"),
        ca=_pem_file(env, "GRPC_TLS_CA_FILE"),
        health_port=env.integer("GRPC_HEALTH_PORT", 0, minimum=0, maximum=65535),
    )
    if bool(env.optional("GRPC_TLS_CERT_FILE")) != bool(env.optional("GRPC_TLS_KEY_FILE")):
        env.problems.append("GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE go together")
    return tls


@dataclass(frozen=True)
class CommonSettings:
    """What every gRPC service needs; services add their own fields beside it."""

    service_name: str
    database_url: str
    kafka: KafkaSettings
    grpc_port: int
    # Key id -> PEM Ed25519 public key: the keys tokens are accepted from (AUTH_PUBLIC_KEYS, `auth.read_keys`).
    auth_public_keys: dict[str, str]
    log_level: str
    # The outbox relay reads every tenant's rows: on PostgreSQL it connects as a role that bypasses RLS.
    outbox_database_url: str
    # Lets several deployments (or test runs) share one Kafka cluster without sharing consumer groups.
    consumer_group_prefix: str = ""
    # Topic names are prefixed on the wire (relay and consumers), for environments sharing one cluster.
    topic_prefix: str = ""
    # After turning NOT_SERVING on SIGTERM, keep serving this long so load balancers notice, then drain.
    shutdown_drain_seconds: float = 5.0
    # The whole stop fits in this; keep it under the pod's terminationGracePeriodSeconds (30).
    shutdown_seconds: float = 25.0
    # A background worker failing for longer than this turns the service NOT_SERVING (and so restarted).
    worker_down_seconds: float = 120.0
    # Prometheus metrics on this port (0: not served).
    metrics_port: int = 0
    # Housekeeping: published outbox rows (a plaintext copy of each event) kept this long, inbox rows
    # (the redelivery guard) this many days.
    outbox_retention_seconds: int = 3600
    inbox_retention_days: int = 30
    housekeeping_interval_seconds: float = 600.0
    # The service's own signing key ({kid: PEM}, WORKLOAD_SIGNING_KEY) for calls it makes to another service
    # on its own account; empty for a service that calls no other.
    workload_signing_key: dict[str, str] = field(default_factory=dict)
    grpc_tls: GrpcTls = field(default_factory=GrpcTls)


def read_kafka(env: EnvReader) -> KafkaSettings:
    kafka = KafkaSettings(
        bootstrap_servers=env.required("KAFKA_BOOTSTRAP_SERVERS"),
        security_protocol=env.optional("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
        sasl_mechanism=env.optional("KAFKA_SASL_MECHANISM"),
        sasl_username=env.optional("KAFKA_SASL_USERNAME"),
        sasl_password=env.optional("KAFKA_SASL_PASSWORD"),
    )
    if kafka.sasl_mechanism and not (kafka.sasl_username and kafka.sasl_password):
        env.problems.append("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with KAFKA_SASL_MECHANISM")
    return kafka


def read_common(env: EnvReader, service_name: str, default_port: int) -> CommonSettings:
    database_url = env.required("DATABASE_URL")
    outbox_url = env.optional("OUTBOX_DATABASE_URL", database_url)
    if database_url.startswith("postgresql") and outbox_url == database_url:
        env.problems.append("OUTBOX_DATABASE_URL is required on PostgreSQL (the relay role bypasses RLS)")
    kafka = read_kafka(env)
    common = CommonSettings(
        service_name=service_name,
        database_url=database_url,
        kafka=kafka,
        grpc_port=env.integer("GRPC_PORT", default_port, minimum=0, maximum=65535),  # 0: any free port (tests)
        auth_public_keys=env.parsed("AUTH_PUBLIC_KEYS", read_keys, {}, required=True),
        log_level=env.optional("LOG_LEVEL", "INFO").upper(),
        outbox_database_url=outbox_url,
        consumer_group_prefix=env.optional("KAFKA_CONSUMER_GROUP_PREFIX"),
        topic_prefix=env.optional("KAFKA_TOPIC_PREFIX"),
        shutdown_drain_seconds=env.integer("SHUTDOWN_DRAIN_SECONDS", 5, minimum=0, maximum=120),
        shutdown_seconds=env.integer("SHUTDOWN_SECONDS", 25, minimum=1, maximum=600),
        worker_down_seconds=env.integer("WORKER_DOWN_SECONDS", 120, minimum=1, maximum=86400),
        metrics_port=env.integer("METRICS_PORT", 0, minimum=0, maximum=65535),
        # Nothing reads a published row again (the relay sends only unpublished ones, consumers dedupe by
        # event id in their inbox): it is kept only for an operator looking at what just went out.
        outbox_retention_seconds=env.integer("OUTBOX_RETENTION_SECONDS", 3600, minimum=60, maximum=30 * 86400),
        # Longer than Kafka keeps events (7 days by default): a redelivery must still find its inbox row.
        inbox_retention_days=env.integer("INBOX_RETENTION_DAYS", 30, minimum=8, maximum=3650),
        housekeeping_interval_seconds=env.integer("HOUSEKEEPING_INTERVAL_SECONDS", 600, minimum=1, maximum=86400),
        workload_signing_key=env.parsed("WORKLOAD_SIGNING_KEY", read_keys, {}),
        grpc_tls=read_grpc_tls(env),
    )
    keyring = keyring_problems(env, common.auth_public_keys)
    if keyring is not None and common.workload_signing_key:
        problem = signing_key_problem("WORKLOAD_SIGNING_KEY", common.workload_signing_key, keyring, service_name)
        env.problems.extend([problem] if problem else [])
    return common


def keyring_problems(env: EnvReader, public_keys: dict[str, str]) -> Keyring | None:
    """The keyring AUTH_PUBLIC_KEYS describes, or None (and a problem noted) if a key in it is unusable."""
    if not public_keys:
        return None
    try:
        return Keyring(public_keys)
    except (ValueError, TypeError) as exc:
        env.problems.append(f"AUTH_PUBLIC_KEYS is invalid: {exc}")
        return None
