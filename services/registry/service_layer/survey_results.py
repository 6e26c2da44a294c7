"""What a survey import gives back: each row's outcome and problems, the progress, the summary, the
import as its history shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.registry.service_layer import survey_rows

DEFAULT_PROGRESS_EVERY = 1000


class RowOutcome(StrEnum):
    ACCEPTED = "accepted"  # registered (dry run: would be)
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    POSSIBLE_DUPLICATE = "possible_duplicate"


class ImportStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"  # before the end: importing the file again finishes it


@dataclass(frozen=True)
class ImportOptions:
    file_name: str
    dry_run: bool = False
    progress_every: int = DEFAULT_PROGRESS_EVERY
    register_possible_duplicates: bool = False


@dataclass(frozen=True)
class RowProblem:
    column: str  # the template's label, e.g. 公民身份号码
    field: str
    reason: str


@dataclass(frozen=True)
class RowResult:
    row_number: int
    outcome: RowOutcome
    problems: tuple[RowProblem, ...] = ()
    child_id: str = ""
    note: str = ""


@dataclass(frozen=True)
class ImportSummary:
    import_id: str
    file_sha256: str
    dry_run: bool
    rows: int
    accepted: int
    unchanged: int
    rejected: int
    possible_duplicates: int


@dataclass(frozen=True)
class ImportProgress:
    rows_done: int
    rows_total: int  # as far as known; exact in the last message
    rows: tuple[RowResult, ...]
    summary: ImportSummary | None = None


@dataclass(frozen=True)
class ImportView:
    """One import (or dry run) of a file, as ListSurveyImports shows it."""

    import_id: str
    file_name: str
    file_sha256: str
    imported_by: str
    started_at: datetime
    finished_at: datetime | None
    dry_run: bool
    status: ImportStatus
    rows: int
    accepted: int
    unchanged: int
    rejected: int
    possible_duplicates: int


def row_problem(field_code: str, reason: str) -> RowProblem:
    field_code = survey_rows.COLUMN_OF_FIELD.get(field_code, field_code)
    column = survey_rows.COLUMN_BY_FIELD.get(field_code)
    return RowProblem(column.label if column else field_code, field_code, reason)
