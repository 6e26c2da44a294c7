"""The row-level report of a survey import or dry run as a workbook staff open in Excel: one line per problem."""

from __future__ import annotations

import io
from collections.abc import Iterable

from minorprot.registry.v1 import survey_pb2
from openpyxl import Workbook

OUTCOME_LABELS = {
    survey_pb2.SURVEY_ROW_OUTCOME_ACCEPTED: "可导入 accepted",
    survey_pb2.SURVEY_ROW_OUTCOME_UNCHANGED: "已在册 unchanged",
    survey_pb2.SURVEY_ROW_OUTCOME_REJECTED: "有错误 rejected",
    survey_pb2.SURVEY_ROW_OUTCOME_POSSIBLE_DUPLICATE: "疑似重复 possible duplicate",
}
HEADERS = ("行号 Row", "结果 Outcome", "列 Column", "字段 Field", "原因 Reason", "说明 Note")


def error_workbook(rows: Iterable[survey_pb2.SurveyRowResult]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "问题行 rows to fix"
    sheet.append(HEADERS)
    for row in rows:
        outcome = OUTCOME_LABELS.get(row.outcome, str(row.outcome))
        for problem in row.problems or [survey_pb2.SurveyRowProblem()]:
            sheet.append((row.row_number, outcome, problem.column, problem.field, problem.reason, row.note))
    for column, width in zip("ABCDEF", (8, 22, 18, 22, 50, 50), strict=True):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
