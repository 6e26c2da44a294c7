"""The registry's periodic worker: overdue visits every round, categories derived again once a day."""

from datetime import date
from typing import Any

import pytest

from platform_runtime.metrics import TENANT_ROUND_FAILURES
from platform_runtime.supervisor import EveryTenantFailed
from services.registry.entrypoints.workers import casework_round
from services.registry.service_layer.follow_up_visits import OVERDUE_BATCH


class FakeRegistry:
    def tenant_codes(self) -> list[str]:
        return ["110111008", "110111009"]


class FakeCasework:
    def __init__(self) -> None:
        self.overdue_calls: list[str] = []
        self.rederived: list[tuple[str, str]] = []
        self.full_batches = 1  # the first town has one full batch of overdue visits, then a partial one

    def raise_overdue_visits(self, tenant: str) -> int:
        self.overdue_calls.append(tenant)
        if tenant == "110111008" and self.full_batches:
            self.full_batches -= 1
            return OVERDUE_BATCH
        return 0

    def rederive_categories(self, tenant: str, after_child_id: str = "") -> str:
        self.rederived.append((tenant, after_child_id))
        return "child200" if not after_child_id and tenant == "110111008" else ""


def run_rounds(round_of_work: Any, rounds: int) -> None:
    for _ in range(rounds):
        round_of_work()


def test_every_round_raises_overdue_visits_until_a_batch_is_not_full() -> None:
    casework = FakeCasework()
    run_rounds(casework_round(FakeRegistry(), casework), rounds=1)  # type: ignore[arg-type]
    assert casework.overdue_calls == ["110111008", "110111008", "110111009"]


def test_categories_are_derived_again_once_a_day() -> None:
    today = {"day": date(2024, 6, 1)}
    casework = FakeCasework()
    round_of_work = casework_round(FakeRegistry(), casework, today=lambda: today["day"])  # type: ignore[arg-type]
    run_rounds(round_of_work, rounds=3)
    assert casework.rederived == [("110111008", ""), ("110111008", "child200"), ("110111009", "")]
    today["day"] = date(2024, 6, 2)
    run_rounds(round_of_work, rounds=1)
    assert len(casework.rederived) == 6


def test_one_towns_failure_never_keeps_the_other_towns_from_their_turn() -> None:
    class OneTownBroken(FakeCasework):
        def raise_overdue_visits(self, tenant: str) -> int:
            if tenant == "110111008":
                raise RuntimeError("a bad row in this town")
            return super().raise_overdue_visits(tenant)

        def rederive_categories(self, tenant: str, after_child_id: str = "") -> str:
            if tenant == "110111008":
                raise RuntimeError("a bad row in this town")
            return super().rederive_categories(tenant, after_child_id)

    casework = OneTownBroken()
    failures = TENANT_ROUND_FAILURES.labels("registry-casework.overdue-visits", "110111008")
    before = failures._value.get()
    run_rounds(casework_round(FakeRegistry(), casework), rounds=2)  # type: ignore[arg-type]
    assert casework.overdue_calls == ["110111009", "110111009"]
    assert casework.rederived == [("110111009", "")]  # once a day; the broken town is tried every round
    assert failures._value.get() == before + 2


def test_a_round_that_fails_for_every_town_fails_the_worker() -> None:
    class Broken(FakeCasework):
        def raise_overdue_visits(self, tenant: str) -> int:
            raise RuntimeError("database down")

    with pytest.raises(EveryTenantFailed):
        casework_round(FakeRegistry(), Broken())()  # type: ignore[arg-type]
