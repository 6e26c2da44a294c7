"""Spreadsheet files in and out: .xlsx (openpyxl) and .csv (the standard library).

Nothing here knows what the columns mean: a file comes out as a header and numbered rows of raw cell
values, and sheets go in as rows. Rows are numbered as the spreadsheet shows them (the header is row 1),
so a report can point staff at the row to fix.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from platform_runtime.errors import InvalidInput

Cell = str | int | float | bool | date | datetime | None
NumberedRow = tuple[int, list[Cell]]

_ZIP_MAGIC = b"PK\x03\x04"  # an .xlsx file is a zip archive
_BOLD = Font(bold=True)


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: Iterator[NumberedRow]  # data rows, read lazily; blank rows are skipped
    rows_hint: int  # how many data rows the file says it has (0: it does not say); for progress only


def read_table(content: bytes, file_name: str, *, sheet: str = "") -> Table:
    """The first sheet (or the one named `sheet`) of an .xlsx file, or a .csv file.

    The content decides the format where it can (an .xlsx is a zip archive): a file renamed by
    mistake is still read right.
    """
    lower = file_name.lower()
    if lower.endswith(".xls"):
        raise InvalidInput("is the old .xls format: save it as .xlsx (Excel workbook) or .csv", "file")
    if content.startswith(_ZIP_MAGIC):
        return _read_xlsx(content, sheet)
    if lower.endswith(".xlsx"):
        raise InvalidInput("is not a valid .xlsx file", "file")
    return _read_csv(content)


def _read_xlsx(content: bytes, sheet: str) -> Table:
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged archive
        raise InvalidInput("is not a valid .xlsx file", "file") from exc
    worksheet = workbook[sheet] if sheet in workbook.sheetnames else workbook.worksheets[0]
    # Gaps between rows come back as empty tuples, so counting rows gives the numbers Excel shows.
    rows = enumerate(worksheet.iter_rows(values_only=True), start=1)
    header = next(rows, (1, ()))[1]
    max_row = worksheet.max_row  # from the file's <dimension> element; None when it has none
    return Table(_header(list(header)), _data_rows((number, list(cells)) for number, cells in rows), (max_row or 1) - 1)


def _read_csv(content: bytes) -> Table:
    # Excel saves "CSV UTF-8" with a byte order mark, and plain "CSV" in the system code page:
    # GB18030 (a superset of GBK) on Chinese Windows.
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("gb18030", errors="replace")
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:  # a field past the reader's limit (128 KiB), or a NUL in the text
        raise InvalidInput(f"is not a readable .csv file ({exc})", "file") from exc
    header = records[0] if records else []
    numbered = ((number, list[Cell](cells)) for number, cells in enumerate(records[1:], start=2))
    return Table(_header(list(header)), _data_rows(numbered), len(records) - 1)


def _header(cells: Sequence[Cell]) -> list[str]:
    return ["" if cell is None else str(cell).strip() for cell in cells]


def _data_rows(rows: Iterable[NumberedRow]) -> Iterator[NumberedRow]:
    for number, cells in rows:
        if any(cell is not None and str(cell).strip() for cell in cells):
            yield number, cells


@dataclass(frozen=True)
class Sheet:
    title: str
    header: Sequence[str]
    rows: Iterable[Sequence[Cell]]
    widths: Sequence[int] = ()
    # Columns (0-based) Excel must keep as typed: identity numbers lose digits and codes lose
    # their leading zeros when Excel takes them for numbers.
    text_columns: Sequence[int] = ()


def write_workbook(sheets: Sequence[Sheet]) -> bytes:
    """An .xlsx file, written in openpyxl's streaming mode so a large register stays cheap."""
    workbook = Workbook(write_only=True)
    for sheet in sheets:
        worksheet = workbook.create_sheet(sheet.title)
        for index, width in enumerate(sheet.widths, start=1):
            worksheet.column_dimensions[get_column_letter(index)].width = width
        for index in sheet.text_columns:
            worksheet.column_dimensions[get_column_letter(index + 1)].number_format = "@"
        worksheet.freeze_panes = "A2"
        worksheet.append([_bold(worksheet, title) for title in sheet.header])
        for row in sheet.rows:
            worksheet.append([_plain(worksheet, value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _plain(worksheet: object, value: Cell) -> Cell | WriteOnlyCell:
    """Text that starts with = stays text: openpyxl would write it as a formula, and a name or an address
    typed into a survey must never run in the spreadsheet of whoever opens the export."""
    if not (isinstance(value, str) and value.startswith("=")):
        return value
    cell = WriteOnlyCell(worksheet, value=value)
    cell.data_type = "s"
    return cell


def _bold(worksheet: object, value: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(worksheet, value=value)
    cell.font = _BOLD
    return cell
