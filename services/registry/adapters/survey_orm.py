"""Tables of the survey import (排查摸底): each import of a file, and the outcome of each of its rows.

They make re-imports idempotent: a row of a file imported before is found by the file's SHA-256 and
its row number. Dry runs are not recorded. Both are tenant tables under row-level security.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.registry.adapters.orm import Base


class SurveyImportRecord(Base):
    __tablename__ = "survey_imports"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    file_sha256: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(200))
    imported_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # None: the import stopped before the end; importing the file again finishes it.
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    possible_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (Index("ix_survey_imports_file", "tenant_id", "file_sha256"),)


class SurveyImportRowRecord(Base):
    __tablename__ = "survey_import_rows"
    import_id: Mapped[str] = mapped_column(ForeignKey("survey_imports.id"), primary_key=True)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    outcome: Mapped[str] = mapped_column(String(20))
    # The child registered or found unchanged, or the one a possible duplicate resembles.
    child_id: Mapped[str] = mapped_column(String(32), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    # [{"field": ..., "reason": ...}]: reasons never repeat a cell's value.
    problems: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)


SURVEY_TENANT_TABLES = ("survey_imports", "survey_import_rows")
