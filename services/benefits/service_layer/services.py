"""The benefits use cases: the 0–3 insurance enrolment of newly registered children, and reading it.

The consumer calls `child_registered` inside its unit of work (it commits). A child is decided once:
enrolled (and `InsuranceEnrolled` published through the outbox) or recorded as not eligible, with why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from minorprot.benefits.v1 import events_pb2
from sqlalchemy import select

from platform_runtime.auth import Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.events import PendingEvent
from platform_runtime.tenancy import require_role
from platform_runtime.topics import BENEFITS_ENTITLEMENT
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.benefits.adapters import messages
from services.benefits.adapters.orm import InsuranceEnrolmentRecord
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
LIST_LIMIT = 500


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
            uow.publish(
                PendingEvent(
                    BENEFITS_ENTITLEMENT,
                    uow.tenant,
                    "child",
                    child.child_id,
                    events_pb2.InsuranceEnrolled(enrolment=messages.enrolment(view)),
                )
            )
        return view

    # -- reading -------------------------------------------------------------------------------------------

    def list_enrolments(self, child_id: str = "") -> list[EnrolmentView]:
        """The caller's town's insured children (the contract has no place for refusals, so none are listed)."""
        caller = require_role(*READER_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(InsuranceEnrolmentRecord).where(
                InsuranceEnrolmentRecord.tenant_id == caller.tenant, InsuranceEnrolmentRecord.status == ENROLLED
            )
            if child_id:
                query = query.where(InsuranceEnrolmentRecord.child_id == child_id)
            rows = uow.session.scalars(
                query.order_by(InsuranceEnrolmentRecord.decided_at.desc(), InsuranceEnrolmentRecord.id).limit(
                    LIST_LIMIT
                )
            )
            return [_view(row) for row in rows]


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
