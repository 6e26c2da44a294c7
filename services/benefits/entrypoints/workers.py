"""The benefits process's periodic work: entitlements that end with age, babies old enough for the insurance
(`benefits-eligibility`), and entitlements whose periodic review (复核) has come (`benefits-reviews`).

Each town on its own (one town's failure is retried next round, the others go on). Every step is
idempotent, so several replicas may run them.
"""

from __future__ import annotations

from platform_runtime.supervisor import Worker, for_each_tenant, periodic
from services.benefits.service_layer.register_events import RegisterFollower
from services.benefits.service_layer.services import BenefitsService

NAME = "benefits-eligibility"
REVIEWS = "benefits-reviews"


def eligibility_round(service: BenefitsService, follower: RegisterFollower) -> None:
    def town(tenant: str) -> None:
        follower.age_out(tenant)
        service.redecide_too_young(tenant)

    for_each_tenant(NAME, follower.towns(), town)


def reviews_round(follower: RegisterFollower) -> None:
    for_each_tenant(REVIEWS, follower.towns(), follower.reviews_due)


def eligibility_worker(service: BenefitsService, follower: RegisterFollower, interval_seconds: float) -> Worker:
    return periodic(NAME, interval_seconds, lambda: eligibility_round(service, follower))


def reviews_worker(follower: RegisterFollower, interval_seconds: float) -> Worker:
    return periodic(REVIEWS, interval_seconds, lambda: reviews_round(follower))
