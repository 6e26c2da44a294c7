"""Services running in this test process over real loopback gRPC, on real PostgreSQL and Kafka."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from sqlalchemy import MetaData, create_engine, pool, text

from platform_runtime.consumer import IdempotentConsumer
from platform_runtime.db import Database
from platform_runtime.grpc_server import GrpcServer
from platform_runtime.migrations import upgrade
from platform_runtime.outbox import make_producer
from platform_runtime.provision import ProvisionedDatabase
from platform_runtime.service import ConsumerSpec, build
from platform_runtime.settings import EnvReader, KafkaSettings
from tests.support.infra import TOPIC_PREFIX, Secrets, fresh_database


def service_env(db: ProvisionedDatabase, kafka: KafkaSettings, secrets: Secrets, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": db.app_url,
        "OUTBOX_DATABASE_URL": db.relay_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GRPC_PORT": "0",
        "AUTH_PUBLIC_KEYS": secrets.public_keys_env,
        "PII_ENCRYPTION_KEYS": secrets.pii_keys,
        "BLIND_INDEX_KEY": secrets.blind_index_key,
        # Each test database gets its own consumer groups, so parallel stacks never steal each other's events.
        "KAFKA_CONSUMER_GROUP_PREFIX": f"{db.name}.",
        "KAFKA_TOPIC_PREFIX": TOPIC_PREFIX,
        **extra,
    }


def service_append_only_tables(service: str) -> tuple[str, ...]:
    """The tables a service's app role may only insert into (its `adapters.orm.APPEND_ONLY_TABLES`, if any)."""
    orm = importlib.import_module(f"services.{service}.adapters.orm")
    return tuple(getattr(orm, "APPEND_ONLY_TABLES", ()))


def migrated_database(
    postgres_url: str, service: str, append_only: tuple[str, ...] | None = None
) -> ProvisionedDatabase:
    """A fresh database migrated as the service's own `migrate` command would (append-only grants included)."""
    if append_only is None:
        append_only = service_append_only_tables(service)
    db = fresh_database(postgres_url, service)
    upgrade(
        f"services.{service}",
        db.owner_url,
        app_url=db.app_url,
        relay_url=db.relay_url,
        append_only_tables=append_only,
    )
    return db


@dataclass
class Running:
    server: GrpcServer
    database: ProvisionedDatabase

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target)


@contextmanager
def running_registry(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Running]:
    from services.registry import bootstrap
    from services.registry.adapters.orm import APPEND_ONLY_TABLES
    from services.registry.settings import load_settings

    db = migrated_database(postgres_url, "registry", APPEND_ONLY_TABLES)
    settings = load_settings(EnvReader(service_env(db, kafka, secrets)))
    server = build(bootstrap.definition(settings, periodic_work=False))
    server.start()
    try:
        yield Running(server, db)
    finally:
        server.stop(grace=1)


@contextmanager
def running_reporting(
    postgres_url: str, kafka: KafkaSettings, secrets: Secrets, registry_target: str
) -> Iterator[Running]:
    from services.reporting import bootstrap
    from services.reporting.settings import load_settings

    db = migrated_database(postgres_url, "reporting")
    # No notify here: nothing these tests submit asks for a receipt (tests/support/reporting_stack.py has one).
    env = service_env(
        db, kafka, secrets, REGISTRY_TARGET=registry_target, NOTIFY_TARGET=NO_NOTIFY, **reporting_keys(secrets)
    )
    settings = load_settings(EnvReader(env))
    server = build(bootstrap.definition(settings, periodic_work=False))
    server.start()
    try:
        yield Running(server, db)
    finally:
        server.stop(grace=1)


NO_NOTIFY = "127.0.0.1:1"  # NOTIFY_TARGET of a reporting service started without notify


def reporting_keys(secrets: Secrets) -> dict[str, str]:
    """Reporting calls the registry as itself, with a key of its own."""
    return {"WORKLOAD_SIGNING_KEY": secrets.signing_key_env("reporting")}


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@contextmanager
def service_database(postgres_url: str, service: str, metadata: MetaData) -> Iterator[Database]:
    """A fresh, migrated database of one service, used as its app role; dropped afterwards."""
    provisioned = migrated_database(postgres_url, service)
    database = Database.connect(provisioned.app_url, metadata)
    try:
        yield database
    finally:
        database.dispose()
        admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{provisioned.name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def consumer_under_test(spec: ConsumerSpec, database: Database, kafka: KafkaSettings) -> Iterator[IdempotentConsumer]:
    """The service's consumer, driven message by message with `process()`; one try before dead letters."""
    yield IdempotentConsumer(
        group_id=spec.group_id,
        database=database,
        dead_letters=make_producer(kafka, f"{spec.group_id}-test-dlt"),
        handlers=spec.handlers,
        topics=spec.topics,
        max_attempts=1,
        retry_delay=0,
    )
