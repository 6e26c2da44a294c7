"""Fixtures shared by every test folder: real PostgreSQL and Kafka, keys, tokens."""

from __future__ import annotations

import pytest

from platform_runtime.settings import KafkaSettings
from tests.support.infra import Secrets, start_kafka, start_postgres


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return start_postgres()


@pytest.fixture(scope="session")
def kafka() -> KafkaSettings:
    return start_kafka()


@pytest.fixture(scope="session")
def secrets() -> Secrets:
    return Secrets.generate()
