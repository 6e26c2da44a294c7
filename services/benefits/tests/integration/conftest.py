"""The benefits service against a fresh PostgreSQL database: migrated as the owner, used as the app role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, pool, text

from platform_runtime.consumer import IdempotentConsumer, make_consumer
from platform_runtime.db import Database
from platform_runtime.migrations import upgrade
from platform_runtime.outbox import make_producer
from platform_runtime.settings import KafkaSettings
from services.benefits.adapters.orm import metadata
from services.benefits.entrypoints.consumers import consumers
from services.benefits.service_layer.services import BenefitsService
from tests.support.infra import fresh_database


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    provisioned = fresh_database(postgres_url, "benefits")
    upgrade("services.benefits", provisioned.owner_url, app_url=provisioned.app_url, relay_url=provisioned.relay_url)
    database = Database.connect(provisioned.app_url, metadata)
    yield database
    database.dispose()
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{provisioned.name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def service(database: Database) -> BenefitsService:
    return BenefitsService(database)


@pytest.fixture
def consumer(service: BenefitsService, database: Database, kafka: KafkaSettings) -> Iterator[IdempotentConsumer]:
    (spec,) = consumers(service)
    kafka_consumer = make_consumer(kafka.client_config(), spec.group_id)
    yield IdempotentConsumer(
        group_id=spec.group_id,
        database=database,
        consumer=kafka_consumer,
        dead_letters=make_producer(kafka, "benefits-test-dlt"),
        handlers=spec.handlers,
        topics=spec.topics,
        max_attempts=1,
        retry_delay=0,
    )
    kafka_consumer.close()
