"""The benefits process's periodic work: entitlements that end with age, babies old enough for the insurance.

Each town on its own (one town's failure is retried next round, the others go on). Both steps are
idempotent, so several replicas may run them.
"""

from __future__ import annotations

from platform_runtime.supervisor import Worker, for_each_tenant, periodic
from services.benefits.service_layer.register_events import RegisterFollower
from services.benefits.service_layer.services import BenefitsService

NAME = "benefits-eligibility"


def eligibility_round(service: BenefitsService, follower: RegisterFollower) -> None:
    def town(tenant: str) -> None:
        follower.age_out(tenant)
        service.redecide_too_young(tenant)

    for_each_tenant(NAME, follower.towns(), town)


def eligibility_worker(service: BenefitsService, follower: RegisterFollower, interval_seconds: float) -> Worker:
    return periodic(NAME, interval_seconds, lambda: eligibility_round(service, follower))
