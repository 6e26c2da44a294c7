"""Tables of the survey import (排查摸底): each import (or dry run) of a file, and the outcome of each of its rows.

They make re-imports idempotent: a row of a file imported before is found by the file's SHA-256 and
its row number (real imports only). They are the imports' history too (ListSurveyImports). A row's
outcome is written in the same transaction as the child it registered. Both are tenant tables under
row-level security.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, false
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
    # Added in 0004 (imports recorded before it were real imports, finished or stopped).
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(20), default="running", server_default="finished")
    # The file's SHA-256 while a real import of it runs, NULL otherwise: unique in the town, so a second
    # import of the same file at the same time is refused (on SQLite as on PostgreSQL).
    running_file: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # When the import last recorded a batch: one silent for long has stopped (its process died).
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (
        Index("ix_survey_imports_file", "tenant_id", "file_sha256"),
        Index("ix_survey_imports_started", "tenant_id", "started_at"),
        Index("ux_survey_imports_running", "tenant_id", "running_file", unique=True),
    )


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
    # Added in 0004: the children a file's imports registered are left out of its rows' matches.
    __table_args__ = (Index("ix_survey_import_rows_child", "tenant_id", "child_id"),)


SURVEY_TENANT_TABLES = ("survey_imports", "survey_import_rows")
