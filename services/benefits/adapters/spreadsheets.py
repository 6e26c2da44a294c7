"""The household-registration list as a spreadsheet: .xlsx (openpyxl) or .csv, read into numbered rows of text.

Rows are numbered as the spreadsheet shows them (the header is row 1), so the error report points at the row.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from openpyxl import load_workbook

from platform_runtime.errors import InvalidInput

MAX_ROWS = 200_000


def read_rows(content: bytes, file_name: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(row number, cells)]) of the first sheet, blank rows left out."""
    if content.startswith(b"PK\x03\x04"):
        try:
            sheet = load_workbook(io.BytesIO(content), read_only=True, data_only=True).worksheets[0]
        except Exception as exc:  # openpyxl raises many kinds for a damaged archive
            raise InvalidInput.single("file", "is not a valid .xlsx file") from exc
        records = [[_text(cell) for cell in row] for row in sheet.iter_rows(values_only=True)]
    elif file_name.lower().endswith((".xlsx", ".xls")):
        raise InvalidInput.single("file", "is not a valid .xlsx file (save an .xls as .xlsx or .csv)")
    else:
        try:
            decoded = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            decoded = content.decode("gb18030", errors="replace")  # "CSV" from Excel on Chinese Windows
        records = list(csv.reader(io.StringIO(decoded, newline="")))
    if not records:
        raise InvalidInput.single("file", "the file is empty")
    if len(records) > MAX_ROWS + 1:
        raise InvalidInput.single("file", f"at most {MAX_ROWS:,} rows per file")
    header = [cell.strip() for cell in records[0]]
    rows = [(number, cells) for number, cells in enumerate(records[1:], start=2) if any(c.strip() for c in cells)]
    return header, rows


def _text(cell: object) -> str:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    return str(cell)
