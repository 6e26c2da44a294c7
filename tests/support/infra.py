"""Real infrastructure for the tests: the local PostgreSQL and Kafka, started if they are not running."""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from platform_runtime.auth import Principal, Role, TokenIssuer, generate_keypair
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


def fresh_database(superuser_url: str, service: str) -> ProvisionedDatabase:
    """A new database with the owner / app / relay roles, unique to this test run."""
    return provision(superuser_url, f"t_{service}_{uuid.uuid4().hex[:8]}")


@dataclass(frozen=True)
class Secrets:
    private_key: str
    public_key: str
    pii_keys: str
    blind_index_key: str

    @classmethod
    def generate(cls) -> Secrets:
        private, public = generate_keypair()
        return cls(
            private_key=private,
            public_key=public,
            pii_keys="k1:" + base64.b64encode(os.urandom(32)).decode(),
            blind_index_key=base64.b64encode(os.urandom(32)).decode(),
        )

    def token(self, tenant: str = PILOT_TENANT, role: Role = Role.CASEWORKER, user: str = "", **extra: str) -> str:
        principal = Principal(
            user_id=user or f"{role.value}@{tenant}",
            display_name=user or role.value,
            role=role,
            tenant=tenant,
            district=tenant[:6],
            agency=extra.get("agency", ""),
        )
        return TokenIssuer(self.private_key).issue(principal)

    def principal(self, tenant: str = PILOT_TENANT, role: Role = Role.CASEWORKER) -> Principal:
        from platform_runtime.auth import TokenVerifier

        return TokenVerifier(self.public_key).verify(self.token(tenant, role))


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
