"""The referral service against a fresh PostgreSQL database: migrated as the owner, used as the app role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from platform_runtime.consumer import IdempotentConsumer
from platform_runtime.db import Database
from platform_runtime.settings import KafkaSettings
from services.referral.adapters.orm import metadata
from services.referral.entrypoints.consumers import consumers
from services.referral.service_layer.services import ReferralService
from tests.support.services import consumer_under_test, service_database


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    with service_database(postgres_url, "referral", metadata) as database:
        yield database


@pytest.fixture
def service(database: Database) -> ReferralService:
    return ReferralService(database)


@pytest.fixture
def consumer(service: ReferralService, database: Database, kafka: KafkaSettings) -> Iterator[IdempotentConsumer]:
    (spec,) = consumers(service)
    with consumer_under_test(spec, database, kafka) as consumer:
        yield consumer
