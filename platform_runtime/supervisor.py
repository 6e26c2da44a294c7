"""Supervision of a process's background workers: the outbox relay, the Kafka consumers, periodic work.

Each worker runs in its own thread. If it raises, or returns while the process is not stopping, it is
logged, counted and started again after a back-off that grows to `max_backoff`. A worker also reports, as it
goes, whether its work is succeeding (`WorkerContext.healthy` / `failed`): a consumer that keeps retrying a
message because the database is away never raises, yet it is down. A worker that has been down longer than
`down_after` turns the whole process NOT_SERVING on the standard health service, so Kubernetes restarts it
and an operator sees which worker and why in the log and in `minorprot_worker_up`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from platform_runtime import metrics

log = logging.getLogger(__name__)


class Backoff:
    """Exponential back-off with jitter: `initial`, doubling up to `maximum`; `reset` after a success."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        self._initial = initial
        self._maximum = maximum
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._maximum)
        return delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        self._next = self._initial


@dataclass
class WorkerState:
    """What the supervisor knows of one worker; read by health checks, tests and logs."""

    name: str
    down_since: float | None = None  # monotonic time of the first failure since the worker was last well
    last_error: str = ""
    failures: int = 0
    restarts: int = 0
    announced_down: bool = False  # its being down past the limit is in the log (once per time down)

    def down_for(self, now: float) -> float:
        return 0.0 if self.down_since is None else now - self.down_since


class WorkerContext:
    """Handed to a running worker: the stop signal and the way to say how its work is going."""

    def __init__(self, state: WorkerState, stop: threading.Event) -> None:
        self._state = state
        self.stop = stop
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._state.name

    def healthy(self) -> None:
        """The work is succeeding (a message applied, a round done, a batch published)."""
        with self._lock:
            if self._state.down_since is not None:
                log.info("worker %s is well again after %.1fs", self.name, time.monotonic() - self._state.down_since)
            self._state.down_since = None
            self._state.last_error = ""
            self._state.announced_down = False
        metrics.WORKER_UP.labels(self.name).set(1)

    def failed(self, error: BaseException | str) -> None:
        """The work failed and will be tried again; the worker counts as down until `healthy` is called."""
        with self._lock:
            if self._state.down_since is None:
                self._state.down_since = time.monotonic()
            self._state.last_error = _describe(error)
            self._state.failures += 1
        metrics.WORKER_UP.labels(self.name).set(0)
        metrics.WORKER_FAILURES.labels(self.name).inc()

    def wait(self, seconds: float) -> bool:
        """Sleep unless stopped; True when the process is stopping."""
        return self.stop.wait(seconds)


Work = Callable[[WorkerContext], None]


@dataclass(frozen=True)
class Worker:
    """A named piece of background work. `run` loops until `context.stop` is set."""

    name: str
    run: Work


def periodic(name: str, interval_seconds: float, round_of_work: Callable[[], object]) -> Worker:
    """A worker that does one round every `interval_seconds` (and at start). A round that raises is retried
    by the supervisor with back-off; the worker counts as down until a round succeeds."""

    def run(context: WorkerContext) -> None:
        while not context.stop.is_set():
            round_of_work()
            context.healthy()
            context.wait(interval_seconds)

    return Worker(name, run)


class EveryTenantFailed(Exception):
    """A round of periodic work failed for every town: most likely not the towns' data but the worker."""


def for_each_tenant(worker: str, tenants: Iterable[str], work: Callable[[str], object]) -> list[str]:
    """Run `work` for each town on its own: one town's failure is logged, counted and retried at the next
    round, and never keeps the towns after it from their turn. Returns the towns that failed; raises
    EveryTenantFailed when all did (then the worker itself counts as failing)."""
    failed: list[str] = []
    count = 0
    for tenant in tenants:
        count += 1
        try:
            work(tenant)
        except Exception:
            log.exception(
                "%s failed for town %s; the other towns go on, this one is tried again next round", worker, tenant
            )
            metrics.TENANT_ROUND_FAILURES.labels(worker, tenant).inc()
            failed.append(tenant)
    if count and len(failed) == count:
        raise EveryTenantFailed(f"{worker} failed for every town ({count})")
    return failed


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    return f"{type(error).__name__}: {error}"[:500]


@dataclass
class Supervisor:
    """Runs workers, restarts them when they fail, and says whether every worker is well enough to serve."""

    workers: list[Worker]
    down_after: float = 120.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    on_health_change: Callable[[bool], None] = lambda _serving: None
    stop_event: threading.Event = field(default_factory=threading.Event)
    states: dict[str, WorkerState] = field(init=False, default_factory=dict)
    _threads: list[threading.Thread] = field(init=False, default_factory=list)
    _serving: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        names = [worker.name for worker in self.workers]
        if len(set(names)) != len(names):
            raise ValueError(f"worker names must be unique: {names}")
        self.states = {name: WorkerState(name) for name in names}

    def start(self) -> None:
        for worker in self.workers:
            metrics.WORKER_UP.labels(worker.name).set(1)
            thread = threading.Thread(target=self._keep_running, args=(worker,), daemon=True, name=worker.name)
            thread.start()
            self._threads.append(thread)
        watchdog = threading.Thread(target=self._watch, daemon=True, name="supervisor-watchdog")
        watchdog.start()
        self._threads.append(watchdog)

    def stop(self, timeout: float) -> None:
        """Ask every worker to stop and wait for them, `timeout` seconds in all (never longer)."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        late = [thread.name for thread in self._threads if thread.is_alive()]
        if late:
            log.warning("workers still running at shutdown: %s", ", ".join(late))

    def down_workers(self) -> list[WorkerState]:
        """The workers that have been failing for longer than `down_after`."""
        now = time.monotonic()
        return [state for state in self.states.values() if state.down_for(now) > self.down_after]

    def _keep_running(self, worker: Worker) -> None:
        state = self.states[worker.name]
        context = WorkerContext(state, self.stop_event)
        backoff = Backoff(self.initial_backoff, self.max_backoff)
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                worker.run(context)
                if self.stop_event.is_set():
                    return
                context.failed("returned while the process was still running")
                log.error("worker %s returned while the process was still running; restarting it", worker.name)
            except Exception as error:
                context.failed(error)
                log.exception("worker %s failed; restarting it", worker.name)
            if time.monotonic() - started > self.max_backoff * 2:
                backoff.reset()  # it ran well for a while: this is a new failure, not the same one again
            if self.stop_event.wait(backoff.next()):
                return
            state.restarts += 1
            metrics.WORKER_RESTARTS.labels(worker.name).inc()

    def _watch(self) -> None:
        """Once a second: export how long each worker has been down and flip health when that crosses the limit."""
        while not self.stop_event.wait(1.0):
            now = time.monotonic()
            for state in self.states.values():
                metrics.WORKER_DOWN_SECONDS.labels(state.name).set(state.down_for(now))
            down = self.down_workers()
            # Each worker once per time down, even when another had already turned the service NOT_SERVING:
            # an operator reading the log must see every worker that is down, not only the first.
            for state in down:
                if not state.announced_down:
                    state.announced_down = True
                    log.error(
                        "worker %s down for %.0fs (limit %.0fs): %s; reporting NOT_SERVING",
                        state.name,
                        state.down_for(now),
                        self.down_after,
                        state.last_error,
                    )
            serving = not down
            if serving != self._serving:
                self._serving = serving
                if serving:
                    log.info("every worker is well again; reporting SERVING")
                self.on_health_change(serving)
