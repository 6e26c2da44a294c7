"""The notify service against a fresh PostgreSQL database: migrated as the owner, used as the app role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from platform_runtime.consumer import IdempotentConsumer
from platform_runtime.db import Database
from platform_runtime.settings import KafkaSettings
from services.notify.adapters.orm import metadata
from services.notify.entrypoints.consumers import consumers
from services.notify.service_layer.services import NotifyService
from tests.support.services import consumer_under_test, service_database


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    with service_database(postgres_url, "notify", metadata) as database:
        yield database


@pytest.fixture
def service(database: Database) -> NotifyService:
    return NotifyService(database)


@pytest.fixture
def consumer(service: NotifyService, database: Database, kafka: KafkaSettings) -> Iterator[IdempotentConsumer]:
    (spec,) = consumers(service)
    with consumer_under_test(spec, database, kafka) as consumer:
        yield consumer
