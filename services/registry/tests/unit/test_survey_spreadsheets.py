"""Spreadsheets in and out: rows numbered as Excel shows them, CSV as Excel saves it."""

from __future__ import annotations

import io
from datetime import date, datetime

import pytest
from openpyxl import Workbook, load_workbook

from platform_runtime import errors
from services.registry.adapters.spreadsheets import Sheet, read_table, write_workbook


def test_a_written_workbook_reads_back_with_row_numbers_and_text_columns() -> None:
    content = write_workbook(
        [
            Sheet(
                "数据",
                ["姓名", "公民身份号码"],
                [("王小明", "110111201605121238"), ("李四", date(2016, 5, 1))],
                text_columns=[1],
            )
        ]
    )
    table = read_table(content, "survey.xlsx", sheet="数据")
    assert table.header == ["姓名", "公民身份号码"]
    assert list(table.rows) == [(2, ["王小明", "110111201605121238"]), (3, ["李四", datetime(2016, 5, 1)])]
    sheet = load_workbook(io.BytesIO(content))["数据"]
    assert sheet.column_dimensions["B"].number_format == "@"  # Excel keeps typed numbers as text


def test_blank_rows_are_skipped_and_later_rows_keep_excels_numbers() -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet["A1"], sheet["A2"], sheet["A5"] = "姓名", "王小明", "李四"
    sheet["B3"] = "   "
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert [number for number, _ in read_table(buffer.getvalue(), "x.xlsx").rows] == [2, 5]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gb18030"])
def test_csv_in_the_encodings_excel_saves(encoding: str) -> None:
    content = '姓名,性别\r\n王小明,男\r\n\r\n"李,四",女\r\n'.encode(encoding)
    table = read_table(content, "survey.csv")
    assert table.header == ["姓名", "性别"]
    assert list(table.rows) == [(2, ["王小明", "男"]), (4, ["李,四", "女"])]


def test_an_xlsx_file_with_a_csv_name_is_read_as_xlsx() -> None:
    content = write_workbook([Sheet("s", ["姓名"], [("王小明",)])])
    assert [cells for _, cells in read_table(content, "survey.csv").rows] == [["王小明"]]


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"\xd0\xcf\x11\xe0 old", "survey.xls"),
        (b"not a zip", "survey.xlsx"),
        ("姓名\n".encode() + ("长" * 200_000).encode(), "survey.csv"),  # a field past the csv reader's limit
    ],
)
def test_files_that_cannot_be_read_are_refused(content: bytes, name: str) -> None:
    with pytest.raises(errors.InvalidInput):
        read_table(content, name)


def test_text_that_looks_like_a_formula_stays_text() -> None:
    content = write_workbook([Sheet("s", ["姓名"], [('=HYPERLINK("http://example.invalid","点我")',)])])
    cell = load_workbook(io.BytesIO(content))["s"]["A2"]
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
