"""What the use-case tests on the in-memory fakes share: the fake store and the CaseworkService over it, on a
fixed day (test_casework_use_cases.py, test_child_use_cases.py)."""

from __future__ import annotations

import pytest

from platform_runtime.pii import BlindIndex
from services.registry.service_layer.casework import CaseworkService
from services.registry.tests.unit.fakes import FakeRegistryStore
from services.registry.tests.unit.test_casework_use_cases import NOW, TODAY


@pytest.fixture
def store() -> FakeRegistryStore:
    return FakeRegistryStore()


@pytest.fixture
def casework(store: FakeRegistryStore) -> CaseworkService:
    return CaseworkService(None, BlindIndex(b"k" * 32), store=store, today=lambda: TODAY, now=lambda: NOW)
