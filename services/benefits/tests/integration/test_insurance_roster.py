"""The 0–3 insurance for every local child, on PostgreSQL: the household-registration list imported with a
row-level error report, the yearly enrolment with its premium total, changes during the year, renewal and the
insurer's file (premium 4,500 fen a child: the sample policy's 45 yuan)."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from openpyxl import Workbook
from stdnum.cn import ric

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.pii import BlindIndex, mask_identity_number
from platform_runtime.tenancy import acting_as
from services.benefits.domain.policy import sample_policy
from services.benefits.service_layer.catalogue import Catalogue
from services.benefits.service_layer.insurance_roster import InsuranceRoster
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT

pytestmark = pytest.mark.integration

NOW = datetime(2025, 6, 15, 2, 0, tzinfo=UTC)
TOWN_ADMIN = Principal("ta", "ta", Role.TOWN_ADMIN, PILOT_TENANT, DISTRICT)
HOUSEHOLD = PILOT_TENANT + "001"


def identity(born: date, sequence: str = "123", prefix: str = DISTRICT) -> str:
    first17 = f"{prefix}{born:%Y%m%d}{sequence}"
    return first17 + ric.calc_check_digit(first17 + "0")


def workbook(rows: list[list[str]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["公民身份号码", "出生日期", "户籍地区划代码"])
    for row in rows:
        sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


@pytest.fixture
def roster(database) -> InsuranceRoster:
    with acting_as(Principal("admin", "admin", Role.DISTRICT_ADMIN, DISTRICT, DISTRICT)):
        Catalogue(database).save(replace(sample_policy(DISTRICT), version=0))
    return InsuranceRoster(database, BlindIndex(b"k" * 32), now=lambda: NOW)


A, B, C = date(2024, 2, 10), date(2025, 6, 1), date(2022, 8, 1)  # B is 14 days old; C turns 3 on 1 Aug 2025


def test_the_list_is_imported_with_a_row_level_error_report_and_enrolled_for_the_year(roster):
    bad_check = identity(A)[:-1] + ("0" if identity(A)[-1] != "0" else "1")
    rows = [
        [identity(A), A.isoformat(), HOUSEHOLD],
        [identity(B, "456"), "", HOUSEHOLD],
        [identity(C, "789"), C.isoformat(), HOUSEHOLD],
        [bad_check, "", HOUSEHOLD],  # row 5
        [identity(A, "222"), "", "130102001001"],  # row 6: registered elsewhere
        [identity(date(2021, 1, 5)), "", HOUSEHOLD],  # row 7: 4 years old
        [identity(A), A.isoformat(), HOUSEHOLD],  # row 8: the same child again
        [identity(A, "333"), "2024-02-11", HOUSEHOLD],  # row 9: birth date disagrees
    ]
    with acting_as(TOWN_ADMIN):
        report = roster.import_list(workbook(rows), "户籍名单.xlsx")
        assert (report.accepted, report.added, report.left) == (3, 3, 0)
        assert [(e.row, e.column) for e in report.errors] == [
            (5, "identity_number"),
            (6, "household_division_code"),
            (7, "birth_date"),
            (8, "identity_number"),
            (9, "birth_date"),
        ]
        year = roster.enrol_year(2025)
        assert (year.insured, year.added, year.premium_total_fen) == (3, 3, 13_500)
        assert roster.enrol_year(2025) == replace(year, added=0)  # again: nothing changes

        file = list(csv.reader(io.StringIO(roster.insurer_file(2025).decode("utf-8-sig"))))
    by_birth = {row[1]: row for row in file[1:-1]}
    assert by_birth[B.isoformat()][3:5] == ["2025-07-01", "2025-12-31"]  # from 30 days old
    assert by_birth[C.isoformat()][3:5] == ["2025-01-01", "2025-07-31"]  # until the day before the 3rd birthday
    assert by_birth[A.isoformat()][0] == mask_identity_number(identity(A))  # no identity number kept
    assert file[-1][:2] == ["TOTAL", "3"] and file[-1][5] == "13500"


def test_a_new_list_changes_the_year_and_the_next_year_renews(roster):
    with acting_as(TOWN_ADMIN):
        roster.import_list(workbook([[identity(A), "", HOUSEHOLD], [identity(C, "789"), "", HOUSEHOLD]]), "a.xlsx")
        roster.enrol_year(2025)
        # the next list: A has moved away, a newborn D arrived
        newborn = date(2025, 5, 20)
        csv_list = f"identity_number,household_division_code\n{identity(C, '789')},{HOUSEHOLD}\n{identity(newborn, '555')},{HOUSEHOLD}\n"
        report = roster.import_list(csv_list.encode(), "list.csv")
        assert (report.accepted, report.added, report.left, report.errors) == (2, 1, 1, ())
        changed = roster.enrol_year(2025)
        assert (changed.insured, changed.added, changed.removed, changed.premium_total_fen) == (2, 1, 1, 9_000)
        statuses = {row[1]: row[6] for row in csv.reader(io.StringIO(roster.insurer_file(2025).decode("utf-8-sig")))}
        assert statuses[A.isoformat()] == "removed" and statuses[newborn.isoformat()] == "added"

        renewed = roster.enrol_year(2026)  # C turned 3 in 2025: not renewed
        assert (renewed.insured, renewed.premium_total_fen) == (1, 4_500)


def test_bad_files_and_other_towns(roster):
    with acting_as(TOWN_ADMIN):
        with pytest.raises(errors.InvalidInput):
            roster.import_list(b"name,age\nx,1\n", "list.csv")  # no identity number column
        with pytest.raises(errors.InvalidInput):
            roster.import_list(b"not a zip", "list.xlsx")
        roster.import_list(workbook([[identity(A), "", HOUSEHOLD]]), "a.xlsx")
        roster.enrol_year(2025)
    other = Principal("ta2", "ta2", Role.TOWN_ADMIN, OTHER_TENANT, DISTRICT)
    with acting_as(other):
        assert roster.enrol_year(2025).insured == 0
    with (
        acting_as(Principal("x", "x", Role.AGENCY_OFFICER, PILOT_TENANT, DISTRICT)),
        pytest.raises(errors.PermissionDenied),
    ):
        roster.insurer_file(2025)
