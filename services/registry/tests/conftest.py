"""The tokens of these tests are meant for the registry service (tests/support/infra.py mints them all)."""

import pytest

from tests.support.infra import Secrets


@pytest.fixture(scope="session")
def secrets(secrets: Secrets) -> Secrets:
    return secrets.for_audience("registry")
