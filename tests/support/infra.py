"""Real infrastructure for the tests: the local PostgreSQL and Kafka, started if they are not running."""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from platform_runtime.auth import (
    Keyring,
    Principal,
    Role,
    TokenIssuer,
    TokenVerifier,
    generate_keypair,
    keys_json,
    public_pem_of,
)
from platform_runtime.provision import ProvisionedDatabase, provision
from platform_runtime.settings import KafkaSettings
from platform_runtime.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[2]
PILOT_TENANT = "110111008"  # 良乡
OTHER_TENANT = "110111009"  # 周口店
DISTRICT = "110111"


def _run(*args: str) -> str:
    return subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def start_postgres() -> str:
    """Superuser URL of the local test cluster (scripts/postgres.sh starts it if needed)."""
    if url := os.environ.get("TEST_POSTGRES_URL"):
        return url
    _run("scripts/postgres.sh", "start")
    return _run("scripts/postgres.sh", "url")


# This test run's own topics: tests never read or write the unprefixed topics a `make up` uses.
TOPIC_PREFIX = f"t{uuid.uuid4().hex[:10]}."
# Every prefix this test process created topics under, deleted when the session ends (`delete_test_topics`):
# a broker keeping every run's partitions loads them all at each restart and ran out of heap.
_CREATED_PREFIXES: list[str] = [TOPIC_PREFIX]


def start_kafka() -> KafkaSettings:
    servers = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS", "")
    if not servers:
        _run("scripts/kafka.sh", "start")
        servers = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
    settings = KafkaSettings(bootstrap_servers=servers)
    ensure_topics(settings, prefix=TOPIC_PREFIX)
    return settings


# Every database this test process made, by name (the PII scan after the end-to-end suite dumps them all).
CREATED_DATABASES: list[str] = []


def fresh_database(superuser_url: str, service: str) -> ProvisionedDatabase:
    """A new database with the owner / app / relay roles, unique to this test run."""
    CREATED_DATABASES.append(f"t_{service}_{uuid.uuid4().hex[:8]}")
    return provision(superuser_url, CREATED_DATABASES[-1])


# The services that call another on their own account, each with a signing key of its own (a workload identity).
WORKLOAD_SERVICES = ("reporting",)


@dataclass(frozen=True)
class Secrets:
    """One test session's keys. Tokens are minted here and only here: `token` signs as the gateway does, for
    one service (`audience`; each service's tests bind theirs with `for_audience` in their conftest)."""

    signing_key: dict[str, str]  # the gateway's {kid: private PEM}
    workload_keys: dict[str, dict[str, str]]  # service -> its {kid: private PEM}
    public_keys: dict[str, str]  # the keyring every component gets (AUTH_PUBLIC_KEYS)
    pii_keys: str
    blind_index_key: str
    audience: str = ""

    @classmethod
    def generate(cls) -> Secrets:
        signing = {"gateway-test1": generate_keypair()[0]}
        workload = {name: {f"{name}-test1": generate_keypair()[0]} for name in WORKLOAD_SERVICES}
        private = signing | {kid: pem for key in workload.values() for kid, pem in key.items()}
        return cls(
            signing_key=signing,
            workload_keys=workload,
            public_keys={kid: public_pem_of(pem) for kid, pem in private.items()},
            pii_keys="k1:" + base64.b64encode(os.urandom(32)).decode(),
            blind_index_key=base64.b64encode(os.urandom(32)).decode(),
        )

    def for_audience(self, service: str) -> Secrets:
        return replace(self, audience=service)

    @property
    def public_keys_env(self) -> str:
        """AUTH_PUBLIC_KEYS as the services read it."""
        return keys_json(self.public_keys)

    def signing_key_env(self, component: str = "gateway") -> str:
        """AUTH_SIGNING_KEY (the gateway) or WORKLOAD_SIGNING_KEY (a service calling another as itself)."""
        return keys_json(self.signing_key if component == "gateway" else self.workload_keys[component])

    def keyring(self) -> Keyring:
        return Keyring(self.public_keys)

    def issuer(self) -> TokenIssuer:
        return TokenIssuer(self.signing_key)

    def token(
        self,
        tenant: str = PILOT_TENANT,
        role: Role = Role.CASEWORKER,
        user: str = "",
        *,
        audience: str = "",
        agency: str = "",
        villages: tuple[str, ...] = (),
    ) -> str:
        principal = Principal(
            user_id=user or f"{role.value}@{tenant}",
            display_name=user or role.value,
            role=role,
            tenant=tenant,
            district=tenant[:6],
            agency=agency,
            villages=villages,
        )
        for_service = audience or self.audience
        if not for_service:
            raise ValueError("say which service the token is for (audience=, or Secrets.for_audience)")
        return self.issuer().issue(principal, for_service)

    def principal(self, tenant: str = PILOT_TENANT, role: Role = Role.CASEWORKER, *, audience: str = "") -> Principal:
        for_service = audience or self.audience
        return TokenVerifier(self.keyring(), for_service).verify(self.token(tenant, role, audience=for_service))


def isolated_kafka_env(kafka: KafkaSettings) -> dict[str, str]:
    """Topics and consumer groups of their own for one test stack, so it neither replays the broker's
    history nor takes events meant for another stack."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    _CREATED_PREFIXES.append(prefix)
    ensure_topics(kafka, prefix=prefix)
    return {"KAFKA_TOPIC_PREFIX": prefix, "KAFKA_CONSUMER_GROUP_PREFIX": prefix}


def delete_test_topics(kafka: KafkaSettings) -> int:
    """Delete the topics this test process created (best effort: a broker already stopped is fine)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    try:
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(tuple(_CREATED_PREFIXES))]
    except Exception:  # clean-up must never fail a test run
        return 0
    for start in range(0, len(names), 200):
        for future in admin.delete_topics(names[start : start + 200], operation_timeout=30).values():
            try:
                future.result(timeout=60)
            except Exception:  # noqa: S112 - already gone, or the broker is away
                continue
    return len(names)
