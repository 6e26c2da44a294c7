"""Who is entitled to what, from when: the beneficiary facts and entitlement periods the runs compute from.

Every call acts inside the caller's unit of work of the child's town. An entitlement is never edited
silently: each start, change, suspension and end is also an append-only change row with its date and
reason, and an `EntitlementChanged` event for notify (the caseworker is told).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from platform_runtime.db import UnitOfWork, new_id
from platform_runtime.errors import Conflict, NotFound
from services.benefits.adapters import messages
from services.benefits.adapters.orm import BeneficiaryRecord, EntitlementChangeRecord, EntitlementRecord, TownRecord
from services.benefits.domain.events import EntitlementChanged
from services.benefits.domain.insurance import anniversary
from services.benefits.domain.policy import BenefitRule, Kind, PolicyVersion, months_after

STARTED, CHANGED, SUSPENDED, ENDED = "started", "changed", "suspended", "ended"
REVIEW_DUE = "review_due"  # not a change of the period: its review (复核) has come


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
        _note_town(uow)
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
    change: str = STARTED,
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
        stopped_by="",
    )
    uow.session.add(record)
    child.facts_changed_at = at
    _log(uow, record, change, starts_on, reason, at, monthly_amount_fen)
    return record


def stop(
    uow: UnitOfWork,
    record: EntitlementRecord,
    last_day: date,
    change: str,
    reason: str,
    *,
    at: datetime,
    stopped_by: str = "",
) -> None:
    """End (or suspend) an open entitlement after `last_day`; a retroactive date becomes an adjustment."""
    if change not in (SUSPENDED, ENDED):
        raise ValueError(change)
    if record.ends_on is not None and record.ends_on <= last_day:
        return
    if last_day < record.starts_on - timedelta(days=1):
        raise Conflict("an entitlement cannot end before it starts")
    record.ends_on = last_day  # the day before it starts: it never applied
    record.stopped_by = stopped_by
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
    event = EntitlementChanged(record.id, record.child_id, record.benefit_code, change, on, reason[:300], amount)
    uow.publish(messages.pending(uow.tenant, event))


def _note_town(uow: UnitOfWork) -> None:
    """Name the town in the (tenant-free) list the periodic workers go through."""
    dialect = uow.session.get_bind().dialect.name
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(TownRecord).values(
        tenant_id=uow.tenant
    )
    uow.session.execute(statement.on_conflict_do_nothing())


# -- following the register ----------------------------------------------------------------------------------


def open_entitlements(uow: UnitOfWork, child_id: str) -> list[EntitlementRecord]:
    return [record for record in entitlements(uow, child_id) if record.ends_on is None]


def categories_changed(
    uow: UnitOfWork, policy: PolicyVersion | None, child_id: str, current: set[str], on: date, *, at: datetime
) -> list[str]:
    """Suspend what no current category qualifies for any more; resume what the register suspended and
    qualifies again. Returns the benefit codes newly qualified for (the caller drafts applications)."""
    if policy is None or beneficiary(uow, child_id) is None:
        return []
    qualifying = {
        rule.code for rule in policy.rules if rule.kind is not Kind.INSURANCE and set(rule.categories) & current
    }
    by_category = {rule.code for rule in policy.rules if rule.categories}
    held = entitlements(uow, child_id)
    for record in held:
        if record.ends_on is None and record.benefit_code in by_category and record.benefit_code not in qualifying:
            stop(
                uow,
                record,
                on - timedelta(days=1),
                SUSPENDED,
                "its category ended in the register",
                at=at,
                stopped_by="register",
            )
    fresh = []
    for code in sorted(qualifying):
        mine = [record for record in held if record.benefit_code == code]
        if any(record.ends_on is None for record in mine):
            continue
        if mine and max(mine, key=lambda record: record.starts_on).stopped_by == "register":
            start(uow, child_id, code, on, "its category is back in the register", at=at, change=STARTED)
        elif not mine:
            fresh.append(code)
    return fresh


def merged(uow: UnitOfWork, surviving_id: str, merged_id: str, on: date, *, at: datetime) -> None:
    """The duplicate's entitlements stop. Where the surviving record holds the same benefit, the duplicate's
    ends where the surviving one starts (the next run recovers what was paid twice, as an adjustment);
    otherwise it is carried over to the surviving record from the day of the merge."""
    duplicate = beneficiary(uow, merged_id)
    if duplicate is None or duplicate.merged_into == surviving_id:
        return
    duplicate.merged_into = surviving_id
    duplicate.facts_changed_at = at
    kept = {record.benefit_code: record for record in entitlements(uow, surviving_id)}
    for record in entitlements(uow, merged_id):
        twin = kept.get(record.benefit_code)
        # Why staff merged the records stays in the registry's change history (not on the event).
        why = f"merged into {surviving_id} in the register"
        if twin is not None:
            last = min(record.ends_on or on - timedelta(days=1), twin.starts_on - timedelta(days=1))
            stop(uow, record, max(last, record.starts_on - timedelta(days=1)), ENDED, why, at=at, stopped_by="merge")
        elif record.ends_on is None:
            stop(uow, record, on - timedelta(days=1), ENDED, why, at=at, stopped_by="merge")
            if beneficiary(uow, surviving_id) is not None:
                start(uow, surviving_id, record.benefit_code, on, f"carried over from {merged_id}", at=at)


def unmerged(uow: UnitOfWork, surviving_id: str, merged_id: str, on: date, *, at: datetime) -> None:
    """The record stands on its own again: what the merge ended starts again from the day of the unmerge."""
    record = beneficiary(uow, merged_id)
    if record is None or record.merged_into is None:
        return
    record.merged_into = None
    record.facts_changed_at = at
    for entitlement in entitlements(uow, merged_id):
        if entitlement.stopped_by == "merge":
            entitlement.stopped_by = "merge-undone"
            start(uow, merged_id, entitlement.benefit_code, on, f"unmerged from {surviving_id}", at=at)


def age_out(uow: UnitOfWork, policy: PolicyVersion, today: date, *, at: datetime) -> int:
    """End the open entitlements of children past their benefit's age limit (the day before the birthday).
    The run already pays nothing past it; this makes the end visible and tells the caseworker."""
    ended = 0
    rows = uow.session.execute(
        select(EntitlementRecord, BeneficiaryRecord.birth_date)
        .join(
            BeneficiaryRecord,
            (BeneficiaryRecord.tenant_id == EntitlementRecord.tenant_id)
            & (BeneficiaryRecord.child_id == EntitlementRecord.child_id),
        )
        .where(
            EntitlementRecord.tenant_id == uow.tenant,
            EntitlementRecord.ends_on.is_(None),
            BeneficiaryRecord.birth_date.is_not(None),
            BeneficiaryRecord.birth_date <= today - timedelta(days=365 * 2),
        )
    ).all()
    for record, birth_date in rows:
        rule = policy.rule_by_code.get(record.benefit_code)
        if rule is None or rule.max_age_years is None:
            continue
        birthday = anniversary(birth_date, rule.max_age_years)
        if birthday <= today:
            stop(
                uow,
                record,
                birthday - timedelta(days=1),
                ENDED,
                f"turned {rule.max_age_years}",
                at=at,
                stopped_by="age",
            )
            ended += 1
    return ended


def moved_out(
    uow: UnitOfWork, child_id: str, on: date, change: str, reason: str, *, at: datetime, stopped_by: str
) -> int:
    """The child left the district (or its case was transferred out): every open entitlement ends (or is
    suspended pending the transfer) from `on`. Returns how many."""
    stopped = 0
    for record in open_entitlements(uow, child_id):
        stop(uow, record, max(on, record.starts_on) - timedelta(days=1), change, reason, at=at, stopped_by=stopped_by)
        stopped += 1
    return stopped


def birth_date_corrected(
    uow: UnitOfWork, policy: PolicyVersion | None, child_id: str, birth_date: date | None, today: date, *, at: datetime
) -> None:
    """Keep the corrected date, and apply the age limits again from it: an entitlement the old date ended
    too early starts again where it ended; one the new date puts past its limit ends there."""
    child = beneficiary(uow, child_id)
    if child is None:
        return
    if child.birth_date != birth_date:
        child.birth_date, child.facts_changed_at = birth_date, at
    if policy is None or birth_date is None:
        return
    latest: dict[str, EntitlementRecord] = {}
    for record in entitlements(uow, child_id):
        latest[record.benefit_code] = record  # ordered by start: the last one of each benefit
    for code, record in latest.items():
        rule = policy.rule_by_code.get(code)
        if rule is None or rule.max_age_years is None:
            continue
        last = anniversary(birth_date, rule.max_age_years) - timedelta(days=1)
        if record.stopped_by == "age" and record.ends_on is not None and record.ends_on < last:
            why = f"birth date corrected: under {rule.max_age_years} again"
            record = start(uow, child_id, code, record.ends_on + timedelta(days=1), why, at=at)
        if (record.ends_on is None or record.ends_on > last) and last < today:
            why = f"turned {rule.max_age_years} (birth date corrected)"
            stop(uow, record, max(last, record.starts_on - timedelta(days=1)), ENDED, why, at=at, stopped_by="age")


# -- the periodic review (复核) --------------------------------------------------------------------------------


def review_due_on(record: EntitlementRecord, rule: BenefitRule) -> date:
    """The next review: the policy's cycle counted from the last review, or from the start."""
    return months_after(record.reviewed_on or record.starts_on, rule.review_months)


def mark_reviews_due(uow: UnitOfWork, policy: PolicyVersion, today: date, *, at: datetime) -> int:
    """Mark the town's open entitlements whose review has come, and tell the caseworker: once per due date,
    however often this runs (the mark is claimed by a conditional UPDATE, so two replicas tell once)."""
    marked = 0
    rows = uow.session.scalars(
        select(EntitlementRecord).where(EntitlementRecord.tenant_id == uow.tenant, EntitlementRecord.ends_on.is_(None))
    ).all()
    for record in rows:
        rule = policy.rule_by_code.get(record.benefit_code)
        if rule is None or rule.kind is Kind.INSURANCE:
            continue
        due = review_due_on(record, rule)
        if due > today or record.review_due_on == due:
            continue
        claimed = uow.session.execute(
            update(EntitlementRecord)
            .where(
                EntitlementRecord.id == record.id,
                or_(EntitlementRecord.review_due_on.is_(None), EntitlementRecord.review_due_on != due),
            )
            .values(review_due_on=due)
        )
        if claimed.rowcount:  # type: ignore[attr-defined]
            _log(uow, record, REVIEW_DUE, due, f"review due (复核), every {rule.review_months} months", at, 0)
            marked += 1
    return marked


def reviewed(uow: UnitOfWork, record: EntitlementRecord, on: date) -> None:
    """A review was done: the next one is a cycle from `on`."""
    record.reviewed_on, record.review_due_on = on, None
