"""Who is entitled to what, from when: the beneficiary facts and entitlement periods the runs compute from.

Every call acts inside the caller's unit of work of the child's town. An entitlement is never edited
silently: each start, change, suspension and end is also an append-only change row with its date and
reason, and an `EntitlementChanged` event for notify (the caseworker is told).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from minorprot.benefits.v1 import events_pb2
from sqlalchemy import select

from platform_runtime.db import UnitOfWork, new_id
from platform_runtime.errors import Conflict, NotFound
from platform_runtime.events import PendingEvent
from platform_runtime.topics import BENEFITS_ENTITLEMENT
from services.benefits.adapters import messages
from services.benefits.adapters.orm import BeneficiaryRecord, EntitlementChangeRecord, EntitlementRecord

STARTED, CHANGED, SUSPENDED, ENDED = "started", "changed", "suspended", "ended"


def beneficiary(uow: UnitOfWork, child_id: str) -> BeneficiaryRecord | None:
    return uow.session.scalar(
        select(BeneficiaryRecord).where(
            BeneficiaryRecord.tenant_id == uow.tenant, BeneficiaryRecord.child_id == child_id
        )
    )


def record_child(
    uow: UnitOfWork,
    child_id: str,
    *,
    birth_date: date | None,
    household_division_code: str,
    at: datetime,
    account_ref: str = "",
) -> BeneficiaryRecord:
    """Create or update the child's facts; any change marks the child for a look back in the next run."""
    record = beneficiary(uow, child_id)
    if record is None:
        record = BeneficiaryRecord(
            id=new_id(),
            tenant_id=uow.tenant,
            child_id=child_id,
            birth_date=birth_date,
            household_division_code=household_division_code,
            account_ref=account_ref,
            merged_into=None,
            facts_changed_at=at,
        )
        uow.session.add(record)
        return record
    if (record.birth_date, record.household_division_code) != (birth_date, household_division_code):
        record.birth_date, record.household_division_code = birth_date, household_division_code
        record.facts_changed_at = at
    if account_ref:
        record.account_ref = account_ref
    return record


def entitlements(uow: UnitOfWork, child_id: str) -> list[EntitlementRecord]:
    return list(
        uow.session.scalars(
            select(EntitlementRecord)
            .where(EntitlementRecord.tenant_id == uow.tenant, EntitlementRecord.child_id == child_id)
            .order_by(EntitlementRecord.starts_on, EntitlementRecord.benefit_code)
        )
    )


def start(
    uow: UnitOfWork,
    child_id: str,
    benefit_code: str,
    starts_on: date,
    reason: str,
    *,
    at: datetime,
    monthly_amount_fen: int = 0,
) -> EntitlementRecord:
    """A new entitlement period; an open one of the same benefit makes this a no-op (returned as is)."""
    child = beneficiary(uow, child_id)
    if child is None:
        raise NotFound("the child is not known to the benefits service")
    for existing in entitlements(uow, child_id):
        if existing.benefit_code == benefit_code and (existing.ends_on is None or existing.ends_on >= starts_on):
            return existing
    record = EntitlementRecord(
        id=new_id(),
        tenant_id=uow.tenant,
        child_id=child_id,
        benefit_code=benefit_code,
        starts_on=starts_on,
        ends_on=None,
        reason=reason[:300],
        created_at=at,
    )
    uow.session.add(record)
    child.facts_changed_at = at
    _log(uow, record, STARTED, starts_on, reason, at, monthly_amount_fen)
    return record


def stop(uow: UnitOfWork, record: EntitlementRecord, last_day: date, change: str, reason: str, *, at: datetime) -> None:
    """End (or suspend) an open entitlement after `last_day`; a retroactive date becomes an adjustment."""
    if change not in (SUSPENDED, ENDED):
        raise ValueError(change)
    if record.ends_on is not None and record.ends_on <= last_day:
        return
    if last_day < record.starts_on - timedelta(days=1):
        raise Conflict("an entitlement cannot end before it starts")
    record.ends_on = last_day  # the day before it starts: it never applied
    child = beneficiary(uow, record.child_id)
    if child is not None:
        child.facts_changed_at = at
    _log(uow, record, change, last_day, reason, at, 0)


def _log(
    uow: UnitOfWork, record: EntitlementRecord, change: str, on: date, reason: str, at: datetime, amount: int
) -> None:
    uow.session.add(
        EntitlementChangeRecord(
            tenant_id=uow.tenant,
            entitlement_id=record.id,
            child_id=record.child_id,
            benefit_code=record.benefit_code,
            change=change,
            effective_on=on,
            reason=reason[:300],
            recorded_at=at,
        )
    )
    uow.publish(
        PendingEvent(
            BENEFITS_ENTITLEMENT,
            uow.tenant,
            "child",
            record.child_id,
            events_pb2.EntitlementChanged(
                entitlement_id=record.id,
                child_id=record.child_id,
                benefit_code=record.benefit_code,
                change=change,
                effective_on=messages.from_date(on),
                reason=reason[:300],
                monthly_amount_fen=amount,
            ),
        )
    )
