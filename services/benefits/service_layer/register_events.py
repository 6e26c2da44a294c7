"""Eligibility follows the register: the registry's and referral's events, applied in the consumer's unit of
work of the child's town (the idempotent consumer commits, and drops repeats).

Each handler takes the day the change happened (Beijing calendar day of the event) as the effective date.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import select

from platform_runtime.db import Database, UnitOfWork, utcnow
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.benefits.adapters.orm import TownRecord
from services.benefits.service_layer import eligibility
from services.benefits.service_layer.applications import Applications

SYSTEM_USER = "benefits"


class RegisterFollower:
    def __init__(self, database: Database, applications: Applications, *, now: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self._applications = applications
        self._now = now

    def categories_changed(self, uow: UnitOfWork, child_id: str, categories: set[str], on: date) -> None:
        """Suspend or resume entitlements; a newly qualifying category drafts an application for the town."""
        policy = self._applications.policy(uow.tenant[:6])
        fresh = eligibility.categories_changed(uow, policy, child_id, categories, on, at=self._now())
        for code in fresh:
            self._applications.draft(
                uow,
                policy,
                child_id,
                code,
                "the register shows a qualifying category",
                f"registry:{child_id}:{code}:{on.isoformat()}",
                SYSTEM_USER,
            )

    def merged(self, uow: UnitOfWork, surviving_id: str, merged_id: str, reason: str, on: date) -> None:
        eligibility.merged(uow, surviving_id, merged_id, on, reason, at=self._now())

    def unmerged(self, uow: UnitOfWork, surviving_id: str, merged_id: str, on: date) -> None:
        eligibility.unmerged(uow, surviving_id, merged_id, on, at=self._now())

    def application_requested(
        self, uow: UnitOfWork, referral_id: str, child_id: str, benefit_hint: str, reason: str, agency: str
    ) -> None:
        """Referral's family-poverty route: a draft the town completes (child and benefit may be missing)."""
        policy = self._applications.policy(uow.tenant[:6])
        self._applications.draft(
            uow,
            policy,
            child_id,
            benefit_hint,
            f"{reason} (referral {referral_id}, {agency}, hint {benefit_hint})"[:500],
            f"referral:{referral_id}",
            SYSTEM_USER,
            strict=False,
        )

    # -- the periodic worker -------------------------------------------------------------------------------

    def towns(self) -> list[str]:
        with self._database.platform_session() as session:
            return list(session.scalars(select(TownRecord.tenant_id).order_by(TownRecord.tenant_id)))

    def age_out(self, town: str) -> int:
        """End the town's entitlements past their age limit (turning 18; the 0–3 insurance at 3)."""
        policy = self._applications.policy(town[:6])
        if policy is None:
            return 0
        today = self._now().astimezone(CHINA_STANDARD_TIME).date()
        with self._database.unit_of_work(town) as uow:
            ended = eligibility.age_out(uow, policy, today, at=self._now())
            uow.commit()
            return ended


def beijing_day(moment: datetime) -> date:
    return moment.astimezone(CHINA_STANDARD_TIME).date()
