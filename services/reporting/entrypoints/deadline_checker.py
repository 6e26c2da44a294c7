"""The periodic trigger of the time limits: a supervised worker of the service process, like the outbox relay.

Every `interval_seconds` it asks the service to announce missed deadlines (`DeadlineBreached` on
`reporting.report`), town by town: one town's failure is logged, counted and tried again next round, and
never silences the alarms of the towns after it. Nothing is marked announced unless its event is in the
outbox, in the same transaction.
"""

from __future__ import annotations

import logging

from platform_runtime.supervisor import Worker, for_each_tenant, periodic
from services.reporting.service_layer.services import ReportingService

log = logging.getLogger(__name__)

NAME = "reporting-deadlines"


def check_deadlines_once(service: ReportingService) -> None:
    def check(tenant: str) -> None:
        raised = service.raise_breaches_of(tenant)
        if raised:
            log.info("announced %d missed deadline(s) in %s", raised, tenant)

    for_each_tenant(NAME, service.tenants_with_reports(), check)


def deadline_checker(service: ReportingService, interval_seconds: float) -> Worker:
    return periodic(NAME, interval_seconds, lambda: check_deadlines_once(service))
