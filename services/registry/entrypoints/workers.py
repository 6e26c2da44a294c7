"""Background work of the registry process: overdue follow-up visits, and categories that move with the date."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date

from services.registry.service_layer.casework import OVERDUE_BATCH, CaseworkService
from services.registry.service_layer.services import RegistryService

log = logging.getLogger(__name__)


def casework_worker(
    registry: RegistryService,
    casework: CaseworkService,
    interval_seconds: float,
    today: Callable[[], date] = date.today,
) -> Callable[[threading.Event], None]:
    """A worker for GrpcServer.workers. Every `interval_seconds` (and at start) it raises the overdue
    visits of every town; once a day it derives every child's categories again.

    Several replicas may run it: each overdue visit is raised once (rows are locked and marked), and
    deriving again is idempotent (one derivation per child at a time)."""
    derived_on: date | None = None

    def run_once() -> None:
        nonlocal derived_on
        towns = registry.tenant_codes()
        for tenant in towns:
            while casework.raise_overdue_visits(tenant) == OVERDUE_BATCH:
                pass  # a full batch: there may be more
        if derived_on != today():
            for tenant in towns:
                after = casework.rederive_categories(tenant)
                while after:
                    after = casework.rederive_categories(tenant, after)
            derived_on = today()

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                run_once()
            except Exception:
                # The next round tries again: nothing is marked done before it is done.
                log.exception("periodic case work failed")
            stop.wait(interval_seconds)

    run.__qualname__ = "casework_worker"
    return run
