"""The periodic trigger of the referrals' time limits: a supervised worker of the service process.

Every `interval_seconds` it asks the service to escalate the referrals past their limit (ReferralEscalated on
`referral.referral`, for notify), town by town: one town's failure is logged, counted and tried again next
round, and never keeps the towns after it from their turn. The step raised is stored with its event in one
transaction, so a restarted process (or a second replica) never raises a step again.
"""

from __future__ import annotations

import logging

from platform_runtime.supervisor import Worker, for_each_tenant, periodic
from services.referral.service_layer.services import ESCALATIONS_PER_ROUND, ReferralService

log = logging.getLogger(__name__)

NAME = "referral-escalations"


def escalate_once(service: ReferralService) -> None:
    def escalate(tenant: str) -> None:
        while True:  # a full batch may leave more behind: go on until the town is done
            raised = service.escalate_overdue(tenant)
            if raised:
                log.info("escalated %d overdue referral(s) in %s", raised, tenant)
            if raised < ESCALATIONS_PER_ROUND:
                return

    for_each_tenant(NAME, service.towns_with_referrals(), escalate)


def escalation_worker(service: ReferralService, interval_seconds: float) -> Worker:
    return periodic(NAME, interval_seconds, lambda: escalate_once(service))
