"""What the use-case tests on the in-memory fakes share: the fake store, and the CaseworkService and
RegistryService over it, on a fixed day (test_casework_use_cases.py, test_child_use_cases.py,
test_update_child.py, test_merges.py)."""

from __future__ import annotations

import pytest

from platform_runtime.pii import BlindIndex, FieldCipher
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.registry import RegistryService
from services.registry.tests.unit.fakes import FakeRegistryStore
from services.registry.tests.unit.test_casework_use_cases import NOW, TODAY

CIPHER = FieldCipher({"k1": b"c" * 32})
BLIND_INDEX = BlindIndex(b"k" * 32)


@pytest.fixture
def store() -> FakeRegistryStore:
    return FakeRegistryStore()


@pytest.fixture
def casework(store: FakeRegistryStore) -> CaseworkService:
    return CaseworkService(None, BLIND_INDEX, store=store, today=lambda: TODAY, now=lambda: NOW)


@pytest.fixture
def registry(store: FakeRegistryStore) -> RegistryService:
    return RegistryService(None, CIPHER, BLIND_INDEX, store=store, today=lambda: TODAY, now=lambda: NOW)
