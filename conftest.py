"""Fixtures shared by every test folder: real PostgreSQL and Kafka, keys, tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from platform_runtime.settings import KafkaSettings
from tests.support.infra import Secrets, delete_test_topics, start_kafka, start_postgres


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return start_postgres()


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaSettings]:
    settings = start_kafka()
    yield settings
    delete_test_topics(settings)


@pytest.fixture(scope="session")
def secrets() -> Secrets:
    return Secrets.generate()
