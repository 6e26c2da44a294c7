"""The triage rule sets a town's staff may read: its own versions, newest first, and the one in effect now."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.pii import BlindIndex
from platform_runtime.tenancy import acting_as
from services.reporting.domain.triage import DEFAULT_RULE_SET
from services.reporting.service_layer.services import ReportingService
from services.reporting.tests.unit import builders
from services.reporting.tests.unit.fakes import FakeChildDirectory, FakeReportStore

TOWN = builders.LIANGXIANG
ADMIN = Principal("u-admin", "李管理员", Role.TOWN_ADMIN, TOWN, TOWN[:6])


@pytest.fixture
def store() -> FakeReportStore:
    return FakeReportStore()


@pytest.fixture
def service(store: FakeReportStore) -> ReportingService:
    return ReportingService(store, BlindIndex(b"k" * 32), FakeChildDirectory(), now=lambda: builders.NOW)


@pytest.fixture(autouse=True)
def as_admin() -> Iterator[None]:
    with acting_as(ADMIN):
        yield


def test_the_built_in_set_is_in_effect_until_the_town_records_its_own(service: ReportingService) -> None:
    sets, in_effect = service.triage_rule_sets()
    assert sets == [DEFAULT_RULE_SET] and in_effect is DEFAULT_RULE_SET


def test_the_towns_versions_newest_first_and_a_future_one_not_yet_in_effect(
    service: ReportingService, store: FakeReportStore
) -> None:
    older = replace(DEFAULT_RULE_SET, tenant=TOWN, version=2, effective_from=builders.NOW - timedelta(days=30))
    current = replace(older, version=3, effective_from=builders.NOW - timedelta(days=1))
    future = replace(older, version=4, effective_from=builders.NOW + timedelta(days=7))
    store.rule_sets[TOWN] = [older, future, current]
    sets, in_effect = service.triage_rule_sets()
    assert [s.version for s in sets] == [4, 3, 2, 1]
    assert in_effect is current


def test_only_staff_read_the_rules() -> None:
    service = ReportingService(FakeReportStore(), BlindIndex(b"k" * 32), FakeChildDirectory())
    teacher = Principal("u-t", "陈老师", Role.MANDATED_REPORTER, TOWN, TOWN[:6])
    with acting_as(teacher), pytest.raises(errors.PermissionDenied):
        service.triage_rule_sets()
