"""The registry's periodic worker: overdue visits every round, categories derived again once a day."""

import threading
from datetime import date
from typing import Any

from services.registry.entrypoints.workers import casework_worker
from services.registry.service_layer.casework import OVERDUE_BATCH


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


def run_rounds(worker: Any, rounds: int) -> None:
    stop = threading.Event()
    calls = {"n": 0}
    original_wait = stop.wait

    def wait(timeout: float | None = None) -> bool:
        calls["n"] += 1
        if calls["n"] >= rounds:
            stop.set()
        return original_wait(0)

    stop.wait = wait  # type: ignore[method-assign]
    worker(stop)


def test_every_round_raises_overdue_visits_until_a_batch_is_not_full() -> None:
    casework = FakeCasework()
    run_rounds(casework_worker(FakeRegistry(), casework, 0.01), rounds=1)  # type: ignore[arg-type]
    assert casework.overdue_calls == ["110111008", "110111008", "110111009"]


def test_categories_are_derived_again_once_a_day() -> None:
    today = {"day": date(2024, 6, 1)}
    casework = FakeCasework()
    worker = casework_worker(FakeRegistry(), casework, 0.01, today=lambda: today["day"])  # type: ignore[arg-type]
    run_rounds(worker, rounds=3)
    assert casework.rederived == [("110111008", ""), ("110111008", "child200"), ("110111009", "")]
    today["day"] = date(2024, 6, 2)
    run_rounds(worker, rounds=1)
    assert len(casework.rederived) == 6


def test_a_failing_round_does_not_stop_the_worker() -> None:
    class Broken(FakeRegistry):
        def __init__(self) -> None:
            self.calls = 0

        def tenant_codes(self) -> list[str]:
            self.calls += 1
            raise RuntimeError("database down")

    registry = Broken()
    run_rounds(casework_worker(registry, FakeCasework(), 0.01), rounds=3)  # type: ignore[arg-type]
    assert registry.calls == 3
