"""The 0–3 insurance for every local child: the town's roster from the household-registration list, the
yearly enrolment with its premium total, changes during the year, renewal, and the insurer's file.

A list import is the town's whole list on that day: people on it are kept (added or refreshed), people no
longer on it are marked as having left; bad rows are reported and left out. Enrolling a year is idempotent:
the first time it enrols everyone covered during the year, later calls (after new lists) add the newcomers
and remove those who left, each with the day of the change. Renewal is enrolling the next year.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, new_id, utcnow
from platform_runtime.errors import Conflict, InvalidInput
from platform_runtime.pii import BlindIndex
from platform_runtime.tenancy import require_role
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.benefits.adapters.orm import InsuranceYearRecord, RosterRecord
from services.benefits.adapters.policies import load_policies
from services.benefits.adapters.spreadsheets import read_rows
from services.benefits.domain import roster as rules
from services.benefits.domain.policy import BenefitRule, Kind, policy_for
from services.benefits.service_layer import roster_links

IMPORT_ROLES = (Role.CASEWORKER, Role.TOWN_ADMIN)
ENROL_ROLES = (Role.TOWN_ADMIN,)
READER_ROLES = (Role.CASEWORKER, Role.TOWN_ADMIN, Role.FINANCE_AUDITOR)
ACTIVE, LEFT = "active", "left"
ENROLLED, ADDED, REMOVED = "enrolled", "added", "removed"
INSURER_COLUMNS = (
    "identity_masked",
    "birth_date",
    "household_division_code",
    "covered_from",
    "covered_until",
    "premium_fen",
    "status",
    "changed_on",
)


@dataclass(frozen=True)
class ImportReport:
    accepted: int
    added: int
    left: int
    errors: tuple[rules.RowError, ...]


@dataclass(frozen=True)
class YearSummary:
    year: int
    insured: int  # enrolled or added, not removed
    added: int  # by this call
    removed: int  # by this call
    premium_total_fen: int


class InsuranceRoster:
    def __init__(self, database: Database, index: BlindIndex, *, now: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self._index = index
        self._now = now

    def import_list(self, content: bytes, file_name: str) -> ImportReport:
        caller = require_role(*IMPORT_ROLES)
        header, rows = read_rows(content, file_name)
        columns = rules.columns_of(header)
        missing = [name for name in ("identity_number", "household_division_code") if name not in columns]
        if missing:
            raise InvalidInput.single("file", f"missing column(s): {', '.join(missing)}")
        today = self._today()
        good: dict[str, rules.RosterRow] = {}
        errors: list[rules.RowError] = []
        for number, cells in rows:
            checked = rules.check_row(number, cells, columns, caller.district, today, self._index)
            if isinstance(checked, rules.RowError):
                errors.append(checked)
            elif checked.person_key in good:
                errors.append(
                    rules.RowError(number, "identity_number", f"the same child as row {good[checked.person_key].row}")
                )
            else:
                good[checked.person_key] = checked
        with self._database.unit_of_work(caller.tenant) as uow:
            known = {
                record.person_key: record
                for record in uow.session.scalars(select(RosterRecord).where(RosterRecord.tenant_id == caller.tenant))
            }
            added = left = 0
            for key, row in good.items():
                record = known.get(key)
                if record is None:
                    added += 1
                    record = known[key] = RosterRecord(
                        id=new_id(),
                        tenant_id=caller.tenant,
                        person_key=key,
                        identity_masked=row.identity_masked,
                        birth_date=row.birth_date,
                        household_division_code=row.household_division_code,
                        status=ACTIVE,
                        first_seen_on=today,
                        last_seen_on=today,
                    )
                    uow.session.add(record)
                else:
                    record.status, record.last_seen_on = ACTIVE, today
                    record.household_division_code = row.household_division_code
            for key, record in known.items():
                if key not in good and record.status == ACTIVE:
                    record.status = LEFT
                    left += 1
            roster_links.link_entries(uow, known.values())  # the registered children among them
            uow.commit()
        return ImportReport(len(good), added, left, tuple(errors))

    def enrol_year(self, year: int) -> YearSummary:
        """Enrol (or bring up to date) the town's cover for `year`, at the premium of the policy in effect on
        1 January; renewal is the next year's call."""
        caller = require_role(*ENROL_ROLES)
        if not 2000 <= year <= self._today().year + 1:
            raise InvalidInput.single("year", "a policy year up to next year")
        rule = self._rule(caller, date(year, 1, 1))
        today = self._today()
        with self._database.unit_of_work(caller.tenant) as uow:
            roster = uow.session.scalars(select(RosterRecord).where(RosterRecord.tenant_id == caller.tenant)).all()
            held = {
                record.person_key: record
                for record in uow.session.scalars(
                    select(InsuranceYearRecord).where(
                        InsuranceYearRecord.tenant_id == caller.tenant, InsuranceYearRecord.year == year
                    )
                )
            }
            first_time = not held
            added = removed = 0
            for person in roster:
                record = held.get(person.person_key)
                if person.status == LEFT:
                    if record is not None and record.status != REMOVED:
                        record.status, record.changed_on = REMOVED, today
                        removed += 1
                    continue
                if record is not None:
                    if record.status == REMOVED:  # back on the list
                        record.status, record.changed_on = ADDED, today
                        added += 1
                    continue
                cover = rules.cover_in_year(person.birth_date, year, rule.min_age_days, rule.max_age_years or 3)
                if cover is None:
                    continue
                added += 1
                uow.session.add(
                    InsuranceYearRecord(
                        id=new_id(),
                        tenant_id=caller.tenant,
                        year=year,
                        person_key=person.person_key,
                        identity_masked=person.identity_masked,
                        birth_date=person.birth_date,
                        household_division_code=person.household_division_code,
                        covered_from=cover.covered_from,
                        covered_until=cover.covered_until,
                        premium_fen=rule.amount_fen,
                        status=ENROLLED if first_time else ADDED,
                        changed_on=today,
                    )
                )
            uow.session.flush()
            insured = [
                r
                for r in uow.session.scalars(
                    select(InsuranceYearRecord).where(
                        InsuranceYearRecord.tenant_id == caller.tenant, InsuranceYearRecord.year == year
                    )
                )
                if r.status != REMOVED
            ]
            summary = YearSummary(year, len(insured), added, removed, sum(r.premium_fen for r in insured))
            uow.commit()
        return summary

    def insurer_file(self, year: int) -> bytes:
        """The insurer's list for the year: one row per person and status, then the count and premium total."""
        caller = require_role(*READER_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            rows = uow.session.scalars(
                select(InsuranceYearRecord)
                .where(InsuranceYearRecord.tenant_id == caller.tenant, InsuranceYearRecord.year == year)
                .order_by(InsuranceYearRecord.identity_masked, InsuranceYearRecord.birth_date)
            ).all()
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(INSURER_COLUMNS)
            for r in rows:
                writer.writerow(
                    [
                        *(r.identity_masked, r.birth_date, r.household_division_code, r.covered_from, r.covered_until),
                        *(r.premium_fen, r.status, r.changed_on),
                    ]
                )
            insured = [r for r in rows if r.status != REMOVED]
            writer.writerow(["TOTAL", len(insured), "", "", "", sum(r.premium_fen for r in insured), "", ""])
            return out.getvalue().encode("utf-8-sig")

    def _rule(self, caller: Principal, day: date) -> BenefitRule:
        with self._database.unit_of_work(caller.district, district=caller.district) as uow:
            policy = policy_for(day, load_policies(uow.session, caller.district))
        rules_ = [rule for rule in (policy.rules if policy else ()) if rule.kind is Kind.INSURANCE]
        if not rules_:
            raise Conflict(f"no insurance in the district's policy on {day}")
        return rules_[0]

    def _today(self) -> date:
        return self._now().astimezone(CHINA_STANDARD_TIME).date()
