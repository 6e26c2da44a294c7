"""The benefits service against a fresh PostgreSQL database: migrated as the owner, used as the app role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, pool, text

from platform_runtime.consumer import IdempotentConsumer
from platform_runtime.db import Database
from platform_runtime.pii import BlindIndex
from platform_runtime.provision import ProvisionedDatabase
from platform_runtime.settings import KafkaSettings
from services.benefits.adapters.orm import APPEND_ONLY_TABLES, metadata
from services.benefits.bootstrap import Services, build_services
from services.benefits.entrypoints.consumers import consumers
from services.benefits.service_layer.services import BenefitsService
from tests.support.services import consumer_under_test, migrated_database


@pytest.fixture
def provisioned(postgres_url: str) -> Iterator[ProvisionedDatabase]:
    db = migrated_database(postgres_url, "benefits", APPEND_ONLY_TABLES)
    yield db
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{db.name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database(provisioned: ProvisionedDatabase) -> Iterator[Database]:
    database = Database.connect(provisioned.app_url, metadata)
    yield database
    database.dispose()


@pytest.fixture
def services(database: Database) -> Services:
    return build_services(database, BlindIndex(b"k" * 32), chunk_size=2)


@pytest.fixture
def service(services: Services) -> BenefitsService:
    return services.insurance


@pytest.fixture
def consumer(services: Services, database: Database, kafka: KafkaSettings) -> Iterator[IdempotentConsumer]:
    (spec,) = consumers(services.insurance, services.follower)
    with consumer_under_test(spec, database, kafka) as consumer:
        yield consumer
