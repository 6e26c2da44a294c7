"""Row validation of the survey import: the spreadsheet's cells, then the record's own rules."""

from __future__ import annotations

import os
from datetime import date, datetime

import pytest

from platform_runtime import errors
from platform_runtime.db import Database
from platform_runtime.pii import BlindIndex, FieldCipher
from services.registry.adapters.orm import metadata
from services.registry.adapters.spreadsheets import Cell
from services.registry.domain.codes import DifficultyCategory, Relationship, Sex
from services.registry.domain.identity import make_identity_number
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.registry import RegistryService
from services.registry.service_layer.survey import SurveyService
from services.registry.service_layer.survey_import import _InFileIndex, _Row
from services.registry.service_layer.survey_rows import COLUMNS, in_town, map_header, read_row

TOWN = "110111008"
TODAY = date(2024, 6, 1)
NUMBER = make_identity_number("110111", date(2016, 5, 12), 123)  # odd sequence: a boy


def row(**cells: Cell) -> dict[str, Cell]:
    base: dict[str, Cell] = {
        "legal_name": "王小明",
        "sex": "男",
        "birth_date": "2016-05-12",
        "identity_number": NUMBER,
        "residence_division_code": TOWN + "201",
    }
    return base | cells


def problems(cells: dict[str, Cell]) -> dict[str, str]:
    return {p.field: p.message for p in read_row(cells, TOWN).problems}


@pytest.fixture(scope="module")
def survey() -> SurveyService:
    """Only the record's rules are used: no table is touched."""
    database = Database.connect("sqlite://", metadata)
    blind_index = BlindIndex(os.urandom(32))
    registry = RegistryService(database, FieldCipher({"k1": os.urandom(32)}), blind_index, today=lambda: TODAY)
    return SurveyService(registry, CaseworkService(database, blind_index), database, blind_index)


def all_problems(survey: SurveyService, cells: dict[str, Cell]) -> dict[str, str]:
    checked = survey._validated(2, read_row(cells, TOWN)).checked
    return {p.field: p.message for p in checked.problems}


# -- the header -----------------------------------------------------------------------------------------------


def test_headers_are_found_by_code_by_label_or_by_the_templates_header() -> None:
    found = map_header(
        ["备注", "*姓名(legal_name)", "性别", "birth_date", "现居住地区划代码（residence_division_code）"]
    )
    assert found == {"legal_name": 1, "sex": 2, "birth_date": 3, "residence_division_code": 4}
    assert map_header([column.header for column in COLUMNS]) == {c.field: i for i, c in enumerate(COLUMNS)}


def test_a_header_without_a_required_column_refuses_the_file() -> None:
    with pytest.raises(errors.InvalidInput, match=r"现居住地区划代码"):
        map_header(["姓名", "性别", "出生日期"])


# -- cells ----------------------------------------------------------------------------------------------------


def test_a_good_row_reads_into_the_command_with_its_family_and_categories() -> None:
    checked = read_row(
        row(
            ethnicity_code="1",  # Excel dropped the leading zero
            categories="poverty；有流浪经历",
            father_name="王大明",
            guardian_name="李奶奶",
            guardian_relationship="外祖母",
            disability_type="智力残疾",
            disability_grade="二级",
        ),
        TOWN,
    )
    assert checked.problems == []
    command = checked.command
    assert (command.sex, command.birth_date, command.ethnicity_code) == (Sex.MALE, date(2016, 5, 12), "01")
    assert (command.disability_type, command.disability_grade) == ("intellectual", "2")
    assert checked.categories == (DifficultyCategory.POVERTY, DifficultyCategory.WANDERING)
    assert [(m.relationship, m.name, m.guardian) for m in checked.family] == [
        (Relationship.FATHER, "王大明", False),
        (Relationship.MATERNAL_GRANDMOTHER, "李奶奶", True),
    ]


def test_sex_and_birth_date_left_empty_are_read_from_the_identity_number() -> None:
    checked = read_row(row(sex="", birth_date=None), TOWN)
    assert checked.problems == []
    assert (checked.command.sex, checked.command.birth_date) == (Sex.MALE, date(2016, 5, 12))


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("2016-02-30", "not a real date"),
        ("2015-13-01", "not a real date"),
        ("20160431", "not a real date"),
        ("去年五月", "not a date"),
    ],
)
def test_impossible_dates(cell: str, reason: str) -> None:
    assert reason in problems(row(birth_date=cell, identity_number=""))["birth_date"]


@pytest.mark.parametrize("cell", ["2016/5/12", "2016.05.12", "2016年5月12日", "20160512", datetime(2016, 5, 12)])
def test_dates_as_staff_write_them(cell: Cell) -> None:
    assert read_row(row(birth_date=cell), TOWN).command.birth_date == date(2016, 5, 12)


@pytest.mark.parametrize(
    ("cells", "field"),
    [
        ({"sex": "3"}, "sex"),
        ({"ethnicity_code": "99"}, "ethnicity_code"),
        ({"categories": "poverty;rich"}, "categories"),
        ({"guardian_name": "李奶奶", "guardian_relationship": "邻居"}, "guardian_relationship"),
        ({"disability_grade": "五级", "disability_type": "视力残疾"}, "disability_grade"),
    ],
)
def test_unknown_codes(cells: dict[str, Cell], field: str) -> None:
    assert "unknown code" in problems(row(**cells))[field]


def test_a_derived_category_cannot_be_typed_in() -> None:
    assert "derived by rules" in problems(row(categories="事实无人抚养儿童"))["categories"]


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        (TOWN, True),
        (TOWN + "000", True),
        (TOWN + "001", True),
        (TOWN + "399", True),
        (TOWN + "400", False),  # not a statistical village number
        ("110111009201", False),  # another town
        ("11011100820", False),
        ("110111", False),
    ],
)
def test_division_codes_must_be_the_town_or_one_of_its_villages(code: str, ok: bool) -> None:
    assert in_town(code, TOWN) is ok
    assert ("residence_division_code" not in problems(row(residence_division_code=code))) is ok


def test_the_town_written_with_000_is_stored_as_the_town() -> None:
    assert read_row(row(residence_division_code=TOWN + "000"), TOWN).command.residence_division_code == TOWN


@pytest.mark.parametrize("field", ["legal_name", "residence_division_code"])
def test_missing_required_cells(field: str) -> None:
    assert problems(row(**{field: "  "}))[field] == "is required"


def test_sex_and_birth_date_are_required_without_an_identity_number() -> None:
    found = problems(row(identity_number="", sex=None, birth_date=""))
    assert "is required" in found["sex"] and "is required" in found["birth_date"]


def test_an_identity_number_excel_turned_into_a_number_is_refused() -> None:
    assert "15 digits" in problems(row(identity_number=float(NUMBER[:-1] + "1")))["identity_number"]


def test_a_guardian_name_needs_the_relationship() -> None:
    assert "go together" in problems(row(guardian_name="李奶奶"))["guardian_relationship"]


# -- the record's rules on top ----------------------------------------------------------------------------------


def test_a_bad_check_character_is_reported_by_the_records_rules(survey: SurveyService) -> None:
    wrong = NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1")
    assert "check character" in all_problems(survey, row(identity_number=wrong))["identity_number"]


@pytest.mark.parametrize(
    ("cells", "words"),
    [
        ({"birth_date": "2016-05-13"}, "birth date differs"),
        ({"sex": "女"}, "sex is recorded as 女性"),
    ],
)
def test_birth_date_and_sex_must_agree_with_the_identity_number(
    survey: SurveyService, cells: dict[str, Cell], words: str
) -> None:
    assert words in all_problems(survey, row(**cells))["identity_number"]


def test_a_birth_date_in_the_future_is_impossible(survey: SurveyService) -> None:
    assert all_problems(survey, row(identity_number="", birth_date="2030-01-01")) == {"birth_date": "is in the future"}


def test_each_problem_is_reported_once(survey: SurveyService) -> None:
    """A cell the spreadsheet rules refuse is not passed on for the record's rules to refuse again."""
    found = survey._validated(2, read_row(row(legal_name="", residence_division_code="12"), TOWN)).checked.problems
    assert sorted(p.field for p in found) == ["legal_name", "residence_division_code"]


def test_a_good_row_passes_and_its_number_is_normalised(survey: SurveyService) -> None:
    validated = survey._validated(2, read_row(row(identity_number=NUMBER.lower()), TOWN))
    assert validated.checked.problems == [] and validated.identity_number == NUMBER.upper()


# -- duplicates within the file ----------------------------------------------------------------------------------


def test_duplicates_in_the_file() -> None:
    index = _InFileIndex()

    def add(number: int, **cells: Cell) -> list[str]:
        checked = read_row(row(**cells), TOWN)
        return [p.reason for p in index.add(_Row(number, checked, checked.command.identity_number))]

    assert add(2) == []
    assert add(3) == ["duplicate in this file: the same identity number as row 2"]
    twin = make_identity_number("110111", date(2016, 5, 12), 125)
    assert add(4, identity_number=twin) == []  # a namesake born the same day, with a number of its own
    assert add(5, identity_number="") == ["duplicate in this file: the same name, sex and birth date as row 2"]
    assert add(6, legal_name="王小红", identity_number="", sex="女") == []
    assert add(7, legal_name="王小红", identity_number="", sex="女") == [
        "duplicate in this file: the same name, sex and birth date as row 6"
    ]
