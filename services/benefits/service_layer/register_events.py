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
from services.benefits.domain.insurance import is_local
from services.benefits.domain.policy import Kind
from services.benefits.service_layer import eligibility, roster_links
from services.benefits.service_layer.applications import Applications

SYSTEM_USER = "benefits"
# What moving out does to an entitlement: the district pays children living in it, so leaving it ends them
# (a return is a new application); a case transferred out is suspended until the receiving town takes it up.
MOVED_OUT = "moved out of the district"
TRANSFERRED = "case transferred out, pending the transfer"
INSURANCE_AGES = (30, 3)  # minimum days, maximum years, when the district's policy names no insurance


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

    def merged(self, uow: UnitOfWork, surviving_id: str, merged_id: str, on: date) -> None:
        eligibility.merged(uow, surviving_id, merged_id, on, at=self._now())
        roster_links.merged(uow, surviving_id, merged_id, self._today())

    def identified(self, uow: UnitOfWork, child_id: str, person_key: str) -> None:
        """A child registered with an identity number, or given one later: linked to the roster's entry of the
        same person."""
        roster_links.link_child(uow, child_id, person_key)

    def moved(self, uow: UnitOfWork, child_id: str, residence: tuple[str, str], household: str, on: date) -> None:
        """Residence (from, to) leaving the district ends the entitlements from `on`; the household
        registration is kept (the insurance is decided on it) and a move out of the district takes the
        child off the insurance roster."""
        child = eligibility.beneficiary(uow, child_id)
        if child is None:
            return
        district = uow.tenant[:6]
        left, arrived = residence
        if arrived and not is_local(arrived, district) and (not left or is_local(left, district)):
            why = f"{MOVED_OUT} (residence now {arrived})"
            eligibility.moved_out(uow, child_id, on, eligibility.ENDED, why, at=self._now(), stopped_by="moved")
        if household and household != child.household_division_code:
            child.household_division_code, child.facts_changed_at = household, self._now()
            roster_links.household_moved(uow, child_id, household, self._today())

    def case_transferred(self, uow: UnitOfWork, child_id: str, on: date) -> None:
        """The case's reason is free text (it may name people): the entitlement's reason says only what happened."""
        eligibility.moved_out(
            uow, child_id, on, eligibility.SUSPENDED, TRANSFERRED, at=self._now(), stopped_by="transfer"
        )

    def birth_date_corrected(self, uow: UnitOfWork, child_id: str, birth_date: date | None) -> None:
        """The age limits (3, 18) and the roster's cover from the corrected date."""
        policy = self._applications.policy(uow.tenant[:6])
        today = self._today()
        eligibility.birth_date_corrected(uow, policy, child_id, birth_date, today, at=self._now())
        insurance = [rule for rule in (policy.rules if policy else ()) if rule.kind is Kind.INSURANCE]
        ages = (insurance[0].min_age_days, insurance[0].max_age_years or 3) if insurance else INSURANCE_AGES
        roster_links.birth_date_corrected(uow, child_id, birth_date, today, ages)

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

    def reviews_due(self, town: str) -> int:
        """Mark the town's entitlements due for review and tell their caseworker (once per due date)."""
        policy = self._applications.policy(town[:6])
        if policy is None:
            return 0
        with self._database.unit_of_work(town) as uow:
            marked = eligibility.mark_reviews_due(uow, policy, self._today(), at=self._now())
            uow.commit()
            return marked

    def age_out(self, town: str) -> int:
        """End the town's entitlements past their age limit (turning 18; the 0–3 insurance at 3)."""
        policy = self._applications.policy(town[:6])
        if policy is None:
            return 0
        with self._database.unit_of_work(town) as uow:
            ended = eligibility.age_out(uow, policy, self._today(), at=self._now())
            uow.commit()
            return ended

    def _today(self) -> date:
        return beijing_day(self._now())


def beijing_day(moment: datetime) -> date:
    return moment.astimezone(CHINA_STANDARD_TIME).date()
