"""The 0–3 insurance roster from the household-registration list (户籍婴幼儿名单): every local child aged
0–3, not only children in difficulty. Each row is checked on its own; a bad row is reported (row, column,
why) and left out, the good rows are kept.

Identity numbers are never kept: a person is known by a keyed hash of the number (the blind index: equal
numbers give equal keys, and without the key nothing leads back to the number), and shown by the platform's
mask, which even beside the birth date and the town leaves dozens of possible numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from stdnum.cn import ric

from platform_runtime.pii import BlindIndex, mask_identity_number, normalize_identity_number, person_key
from services.benefits.domain.insurance import anniversary

COLUMNS = {
    "identity_number": ("identity_number", "公民身份号码", "身份证号"),
    "household_division_code": ("household_division_code", "户籍地区划代码", "户籍地"),
    "birth_date": ("birth_date", "出生日期"),
}


@dataclass(frozen=True)
class RosterRow:
    row: int
    person_key: str
    identity_masked: str
    birth_date: date
    household_division_code: str


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    message: str


def columns_of(header: Sequence[str]) -> dict[str, int]:
    """Where each known column is (English or Chinese header); identity number and household are required."""
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        for column, names in COLUMNS.items():
            if name.strip().lower() in names:
                found[column] = index
    return found


def check_row(
    number: int, cells: Sequence[str], columns: dict[str, int], district: str, day: date, index: BlindIndex
) -> RosterRow | RowError:
    def cell(column: str) -> str:
        index = columns.get(column)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    identity = normalize_identity_number(cell("identity_number"))
    if not ric.is_valid(identity) or len(identity) != 18:
        return RowError(number, "identity_number", "not a valid 18-character resident identity number")
    born = ric.get_birth_date(identity)
    typed = cell("birth_date")
    if typed and typed[:10] != born.isoformat():
        return RowError(number, "birth_date", f"differs from the identity number's ({born.isoformat()})")
    household = cell("household_division_code")
    if not household.isdigit() or len(household) not in (9, 12):
        return RowError(number, "household_division_code", "a 9- or 12-digit division code")
    if not household.startswith(district):
        return RowError(number, "household_division_code", "household registration is not in this district")
    if born > day:
        return RowError(number, "birth_date", "born after the list's day")
    if day >= anniversary(born, 3):
        return RowError(number, "birth_date", "aged 3 or more on the list's day")
    return RosterRow(number, person_key(identity, index), mask_identity_number(identity), born, household)


@dataclass(frozen=True)
class Cover:
    covered_from: date
    covered_until: date


def cover_in_year(birth_date: date, year: int, min_age_days: int, max_age_years: int) -> Cover | None:
    """The days of `year` a child is insured: from the minimum age (30 days) to the day before the 3rd birthday."""
    first = max(date(year, 1, 1), birth_date + timedelta(days=min_age_days))
    last = min(date(year, 12, 31), anniversary(birth_date, max_age_years) - timedelta(days=1))
    return Cover(first, last) if first <= last else None
