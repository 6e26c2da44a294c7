"""Background work of the registry process: overdue follow-up visits, and categories that move with the date."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from platform_runtime.supervisor import Worker, for_each_tenant, periodic
from platform_runtime.vocabulary import china_today
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.follow_up_visits import OVERDUE_BATCH
from services.registry.service_layer.registry import RegistryService

NAME = "registry-casework"


def casework_round(
    registry: RegistryService, casework: CaseworkService, today: Callable[[], date] = china_today
) -> Callable[[], None]:
    """One round: raise the overdue visits of every town; once a day per town, derive every child's
    categories again. Each town on its own: a town that fails is tried again next round, the others go on.

    Several replicas may run it: each overdue visit is raised once (rows are locked and marked), and
    deriving again is idempotent (one derivation per child at a time)."""
    derived_on: dict[str, date] = {}

    def raise_overdue(tenant: str) -> None:
        while casework.raise_overdue_visits(tenant) == OVERDUE_BATCH:
            pass  # a full batch: there may be more

    def derive_again(tenant: str) -> None:
        day = today()
        if derived_on.get(tenant) == day:
            return
        after = casework.rederive_categories(tenant)
        while after:
            after = casework.rederive_categories(tenant, after)
        derived_on[tenant] = day

    def run_once() -> None:
        towns = registry.tenant_codes()
        for_each_tenant(f"{NAME}.overdue-visits", towns, raise_overdue)
        for_each_tenant(f"{NAME}.derive-categories", towns, derive_again)

    return run_once


def casework_worker(
    registry: RegistryService,
    casework: CaseworkService,
    interval_seconds: float,
    today: Callable[[], date] = china_today,
) -> Worker:
    """The supervised worker: a round every `interval_seconds` (and at start)."""
    return periodic(NAME, interval_seconds, casework_round(registry, casework, today))
