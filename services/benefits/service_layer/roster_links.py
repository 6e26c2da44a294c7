"""The insurance roster kept in step with the register: a roster entry and a registered child that are the same
person (the same blind-index person key) are linked, and the register's facts about the child (a corrected
birth date, a household registration moved out of the district, a merge) re-decide the roster entry and its
cover in the current and later policy years.

Every call acts inside the caller's unit of work of the child's town (the consumer's, or the list import's).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select

from platform_runtime.db import UnitOfWork
from services.benefits.adapters.orm import BeneficiaryRecord, InsuranceYearRecord, RosterRecord
from services.benefits.domain import roster as rules
from services.benefits.domain.insurance import is_local
from services.benefits.service_layer.eligibility import beneficiary

ACTIVE, LEFT = "active", "left"
REMOVED, ADDED = "removed", "added"


def link_child(uow: UnitOfWork, child_id: str, person_key: str) -> None:
    """A registered child's identity number (registered, added or corrected; "" removed): remember its key for
    the next list imports, and link the roster's entry of the same person now."""
    child = beneficiary(uow, child_id)
    if child is not None:
        child.person_key = person_key or None
    if not person_key:
        return
    entry = uow.session.scalar(
        select(RosterRecord).where(RosterRecord.tenant_id == uow.tenant, RosterRecord.person_key == person_key)
    )
    if entry is not None and entry.child_id is None:
        entry.child_id = child_id


def link_entries(uow: UnitOfWork, entries: Iterable[RosterRecord]) -> int:
    """Roster entries from a list import: each linked to the registered child with its person key (one query)."""
    unlinked = {entry.person_key: entry for entry in entries if entry.child_id is None}
    if not unlinked:
        return 0
    children = uow.session.execute(
        select(BeneficiaryRecord.person_key, BeneficiaryRecord.child_id).where(
            BeneficiaryRecord.tenant_id == uow.tenant,
            BeneficiaryRecord.person_key.in_(list(unlinked)),
            BeneficiaryRecord.merged_into.is_(None),
        )
    ).all()
    for key, child_id in children:
        if key is not None:
            unlinked[key].child_id = child_id
    return len(children)


def birth_date_corrected(
    uow: UnitOfWork, child_id: str, birth_date: date | None, today: date, ages: tuple[int, int]
) -> None:
    """The linked entry takes the corrected date; its cover from this year on is computed again from it with
    the insurance's ages (minimum days, maximum years); none left: removed from the day."""
    if birth_date is None:
        return
    for entry in _linked(uow, child_id):
        entry.birth_date = birth_date
        for year in _years_from(uow, entry, today.year):
            if year.status == REMOVED:
                continue
            cover = rules.cover_in_year(birth_date, year.year, *ages)
            year.birth_date, year.changed_on = birth_date, today
            if cover is None:
                year.status = REMOVED
            else:
                year.covered_from, year.covered_until = cover.covered_from, cover.covered_until


def household_moved(uow: UnitOfWork, child_id: str, household_division_code: str, today: date) -> None:
    """A household registration moved out of the district takes the linked entry off the roster (its cover this
    year and later removed from the day); moved within it, the entry follows."""
    for entry in _linked(uow, child_id):
        if household_division_code and is_local(household_division_code, uow.tenant):
            entry.household_division_code = household_division_code
            continue
        entry.status = LEFT
        for year in _years_from(uow, entry, today.year):
            if year.status != REMOVED:
                year.status, year.changed_on = REMOVED, today


def merged(uow: UnitOfWork, surviving_id: str, merged_id: str, today: date) -> None:
    """The duplicate's entry follows the surviving record; if that one has an entry of its own, the duplicate's
    is the same child insured twice and leaves the roster."""
    kept = _linked(uow, surviving_id)
    for entry in _linked(uow, merged_id):
        if not kept:
            entry.child_id = surviving_id
            continue
        entry.status, entry.child_id = LEFT, surviving_id
        for year in _years_from(uow, entry, today.year):
            if year.status != REMOVED:
                year.status, year.changed_on = REMOVED, today


def _linked(uow: UnitOfWork, child_id: str) -> list[RosterRecord]:
    return list(
        uow.session.scalars(
            select(RosterRecord).where(RosterRecord.tenant_id == uow.tenant, RosterRecord.child_id == child_id)
        )
    )


def _years_from(uow: UnitOfWork, entry: RosterRecord, first_year: int) -> list[InsuranceYearRecord]:
    return list(
        uow.session.scalars(
            select(InsuranceYearRecord).where(
                InsuranceYearRecord.tenant_id == uow.tenant,
                InsuranceYearRecord.person_key == entry.person_key,
                InsuranceYearRecord.year >= first_year,
            )
        )
    )
