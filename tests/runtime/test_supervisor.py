"""The supervisor restarts failing workers and turns the process NOT_SERVING while one stays down."""

from __future__ import annotations

import threading
import time

import pytest

from platform_runtime.metrics import WORKER_RESTARTS, WORKER_UP
from platform_runtime.supervisor import Backoff, Supervisor, Worker, WorkerContext, periodic
from tests.support.waiting import eventually


def test_a_worker_that_raises_is_restarted_and_counted() -> None:
    runs: list[int] = []

    def flaky(context: WorkerContext) -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("broker away")
        context.healthy()
        context.stop.wait()

    supervisor = Supervisor([Worker("flaky", flaky)], initial_backoff=0.01, max_backoff=0.05)
    restarts_before = WORKER_RESTARTS.labels("flaky")._value.get()
    supervisor.start()
    try:
        eventually(lambda: len(runs) == 3 and supervisor.states["flaky"].down_since is None)
        assert supervisor.states["flaky"].restarts == 2
        assert supervisor.states["flaky"].failures == 2
        assert WORKER_RESTARTS.labels("flaky")._value.get() == restarts_before + 2
        assert WORKER_UP.labels("flaky")._value.get() == 1
    finally:
        supervisor.stop(5)


def test_a_worker_that_returns_early_is_restarted_too() -> None:
    runs: list[int] = []

    def returns(context: WorkerContext) -> None:
        runs.append(1)

    supervisor = Supervisor([Worker("returns", returns)], initial_backoff=0.01, max_backoff=0.02)
    supervisor.start()
    try:
        eventually(lambda: len(runs) >= 3)
        assert "returned" in supervisor.states["returns"].last_error
    finally:
        supervisor.stop(5)


def test_a_worker_failing_longer_than_the_limit_turns_health_off_and_back_on() -> None:
    healthy = threading.Event()
    changes: list[bool] = []

    def keeps_failing(context: WorkerContext) -> None:
        while not context.stop.is_set():
            if healthy.is_set():
                context.healthy()
            else:
                context.failed(ConnectionError("database unavailable"))
            context.wait(0.05)

    supervisor = Supervisor([Worker("stuck", keeps_failing)], down_after=0.5, on_health_change=changes.append)
    supervisor.start()
    try:
        eventually(lambda: changes == [False])
        assert [state.name for state in supervisor.down_workers()] == ["stuck"]
        assert "database unavailable" in supervisor.states["stuck"].last_error
        healthy.set()
        eventually(lambda: changes == [False, True])
        assert supervisor.down_workers() == []
    finally:
        supervisor.stop(5)


def test_every_worker_down_is_logged_even_when_the_service_is_already_not_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    second_fails = threading.Event()

    def relay(context: WorkerContext) -> None:
        while not context.stop.is_set():
            context.failed(ConnectionError("broker away"))
            context.wait(0.05)

    def consumer(context: WorkerContext) -> None:
        while not context.stop.is_set():
            if second_fails.is_set():
                context.failed(ConnectionError("out of its group"))
            else:
                context.healthy()
            context.wait(0.05)

    changes: list[bool] = []
    workers = [Worker("relay", relay), Worker("consumer", consumer)]
    supervisor = Supervisor(workers, down_after=0.3, on_health_change=changes.append)
    caplog.set_level("ERROR", logger="platform_runtime.supervisor")
    supervisor.start()
    try:
        eventually(lambda: changes == [False])
        second_fails.set()  # the service is NOT_SERVING already: the second worker must still be seen in the log
        eventually(lambda: "worker consumer down for" in caplog.text)
        assert caplog.text.count("worker relay down for") == 1  # once per time down, not every second
        assert "out of its group" in caplog.text
    finally:
        supervisor.stop(5)


def test_periodic_work_runs_rounds_and_its_failures_are_retried() -> None:
    rounds: list[int] = []

    def round_of_work() -> None:
        rounds.append(1)
        if len(rounds) == 2:
            raise RuntimeError("one bad round")

    supervisor = Supervisor([periodic("rounds", 0.01, round_of_work)], initial_backoff=0.01, max_backoff=0.02)
    supervisor.start()
    try:
        eventually(lambda: len(rounds) >= 5)
        assert supervisor.states["rounds"].failures == 1
        assert supervisor.states["rounds"].down_since is None
    finally:
        supervisor.stop(5)


def test_stopping_waits_no_longer_than_its_budget() -> None:
    def ignores_stop(context: WorkerContext) -> None:
        time.sleep(3)

    supervisor = Supervisor([Worker("slow", ignores_stop)])
    supervisor.start()
    started = time.monotonic()
    supervisor.stop(0.2)
    assert time.monotonic() - started < 2


def test_back_off_grows_to_its_limit_and_resets() -> None:
    backoff = Backoff(1, 8)
    delays = [backoff.next() for _ in range(6)]
    assert delays[0] == pytest.approx(1, rel=0.25)
    assert delays[-1] == pytest.approx(8, rel=0.25)
    backoff.reset()
    assert backoff.next() == pytest.approx(1, rel=0.25)


def test_worker_names_are_unique() -> None:
    with pytest.raises(ValueError):
        Supervisor([Worker("a", lambda _: None), Worker("a", lambda _: None)])
