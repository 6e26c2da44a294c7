"""The benefits use cases: the 0–3 insurance enrolment of newly registered children, and reading it.

The consumer calls `child_registered` inside its unit of work (it commits). A child is decided once:
enrolled (and `InsuranceEnrolled` published through the outbox) or recorded as not eligible, with why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import select

from platform_runtime import paging
from platform_runtime.auth import Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.tenancy import require_role
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.benefits.adapters import messages
from services.benefits.adapters.orm import BeneficiaryRecord, InsuranceEnrolmentRecord
from services.benefits.domain.events import InsuranceEnrolled
from services.benefits.domain.insurance import (
    INSURANCE_POLICIES,
    Child,
    Ineligible,
    InsurancePolicy,
    decide,
)
from services.benefits.service_layer.views import EnrolmentView, RegisteredChild

READER_ROLES = (Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_OFFICER, Role.FINANCE_AUDITOR)
ENROLLED = "enrolled"
INELIGIBLE = "ineligible"
MERGED = "merged"  # a duplicate record merged into another: not insured twice


class BenefitsService:
    def __init__(
        self,
        database: Database,
        *,
        policies: Iterable[InsurancePolicy] = INSURANCE_POLICIES,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._policies = tuple(policies)
        self._now = now

    # -- events from the registry --------------------------------------------------------------------------

    def child_registered(self, uow: UnitOfWork, child: RegisteredChild) -> EnrolmentView | None:
        """Decide the child's insurance once; None when the child was decided before."""
        decided = uow.session.scalar(
            select(InsuranceEnrolmentRecord.id).where(
                InsuranceEnrolmentRecord.tenant_id == uow.tenant, InsuranceEnrolmentRecord.child_id == child.child_id
            )
        )
        if decided is not None:
            return None
        day = child.registered_at.astimezone(CHINA_STANDARD_TIME).date()
        decision = decide(Child(child.birth_date, child.household_division_code), uow.tenant, day, self._policies)
        record = InsuranceEnrolmentRecord(
            id=new_id(),
            tenant_id=uow.tenant,
            child_id=child.child_id,
            status=ENROLLED if decision.eligible else INELIGIBLE,
            policy_code=decision.policy_code,
            covered_until=decision.covered_until,
            ineligible_reason=decision.ineligible.value if decision.ineligible else None,
            decided_on=day,
            decided_at=self._now(),
        )
        uow.session.add(record)
        view = _view(record)
        if view.enrolled:
            self._announce(uow, record)
        return view

    def now(self) -> datetime:
        return self._now()

    def child_merged(self, uow: UnitOfWork, surviving_id: str, merged_id: str) -> None:
        """A merged duplicate is not insured a second time: its enrolment ends (the surviving record keeps its own)."""
        record = self._decision(uow, merged_id)
        if record is not None and record.status == ENROLLED:
            record.status = MERGED
            record.ineligible_reason = f"merged into {surviving_id}"[:60]

    def redecide(self, uow: UnitOfWork, child_id: str) -> None:
        """Decide the child's insurance again, today, from its facts as they now are (a corrected birth date, a
        household registration moved): a baby "too young" on a wrong date may be insured now, an insured child
        whose corrected date or new household rules it out is not any more, a changed end of cover is kept."""
        record = self._decision(uow, child_id)
        child = uow.session.scalar(
            select(BeneficiaryRecord).where(
                BeneficiaryRecord.tenant_id == uow.tenant, BeneficiaryRecord.child_id == child_id
            )
        )
        if record is None or child is None or record.status == MERGED:
            return
        today = self._now().astimezone(CHINA_STANDARD_TIME).date()
        decision = decide(Child(child.birth_date, child.household_division_code), uow.tenant, today, self._policies)
        was = (record.status, record.covered_until)
        record.status = ENROLLED if decision.eligible else INELIGIBLE
        record.covered_until = decision.covered_until
        record.ineligible_reason = decision.ineligible.value if decision.ineligible else None
        if (record.status, record.covered_until) == was:
            return
        record.decided_on, record.decided_at = today, self._now()
        if decision.eligible:
            self._announce(uow, record)

    def redecide_too_young(self, tenant: str) -> int:
        """Babies registered before the minimum age are decided again once they reach it (run periodically)."""
        today = self._now().astimezone(CHINA_STANDARD_TIME).date()
        enrolled = 0
        with self._database.unit_of_work(tenant) as uow:
            waiting = uow.session.execute(
                select(InsuranceEnrolmentRecord, BeneficiaryRecord)
                .join(
                    BeneficiaryRecord,
                    (BeneficiaryRecord.tenant_id == InsuranceEnrolmentRecord.tenant_id)
                    & (BeneficiaryRecord.child_id == InsuranceEnrolmentRecord.child_id),
                )
                .where(
                    InsuranceEnrolmentRecord.tenant_id == tenant,
                    InsuranceEnrolmentRecord.ineligible_reason == Ineligible.TOO_YOUNG.value,
                    BeneficiaryRecord.merged_into.is_(None),
                )
            ).all()
            for record, child in waiting:
                decision = decide(Child(child.birth_date, child.household_division_code), tenant, today, self._policies)
                if not decision.eligible:
                    continue
                record.status, record.ineligible_reason = ENROLLED, None
                record.covered_until, record.decided_on, record.decided_at = decision.covered_until, today, self._now()
                self._announce(uow, record)
                enrolled += 1
            uow.commit()
        return enrolled

    def _decision(self, uow: UnitOfWork, child_id: str) -> InsuranceEnrolmentRecord | None:
        return uow.session.scalar(
            select(InsuranceEnrolmentRecord).where(
                InsuranceEnrolmentRecord.tenant_id == uow.tenant, InsuranceEnrolmentRecord.child_id == child_id
            )
        )

    def _announce(self, uow: UnitOfWork, record: InsuranceEnrolmentRecord) -> None:
        event = InsuranceEnrolled(record.id, record.tenant_id, record.child_id, record.covered_until, record.decided_at)
        uow.publish(messages.pending(uow.tenant, event))

    # -- reading -------------------------------------------------------------------------------------------

    def list_enrolments(
        self, child_id: str = "", *, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[EnrolmentView], str]:
        """The caller's town's insured children, the latest decided first, a page at a time (the contract has no
        place for refusals, so none are listed)."""
        caller = require_role(*READER_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(InsuranceEnrolmentRecord).where(
                InsuranceEnrolmentRecord.tenant_id == caller.tenant, InsuranceEnrolmentRecord.status == ENROLLED
            )
            if child_id:
                query = query.where(InsuranceEnrolmentRecord.child_id == child_id)
            rows, next_token = paging.one_page(
                uow.session,
                query,
                InsuranceEnrolmentRecord.decided_at,
                InsuranceEnrolmentRecord.id,
                newest_first=True,
                size=page_size,
                token=page_token,
            )
            return [_view(row) for row in rows], next_token


def _view(record: InsuranceEnrolmentRecord) -> EnrolmentView:
    return EnrolmentView(
        enrolment_id=record.id,
        tenant=record.tenant_id,
        child_id=record.child_id,
        policy_code=record.policy_code,
        covered_until=record.covered_until,
        ineligible=Ineligible(record.ineligible_reason) if record.ineligible_reason else None,
        decided_at=record.decided_at,
    )
