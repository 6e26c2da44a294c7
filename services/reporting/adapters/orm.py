"""The reporting service's tables. Reporter details and what is known of the child are encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_runtime.db import add_messaging_tables

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class ReportRecord(Base):
    __tablename__ = "reports"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))
    urgency: Mapped[str] = mapped_column(String(10))
    crisis: Mapped[bool] = mapped_column(Boolean, default=False)
    triage_rule_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    triage_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    # ChildInfo as JSON, encrypted: names, identity numbers and descriptions of children are sensitive.
    child_cipher: Mapped[str] = mapped_column(Text)
    child_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    group_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    division_code: Mapped[str] = mapped_column(String(12))
    place_text: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    situations: Mapped[list[str]] = mapped_column(JSON, default=list)
    facts: Mapped[list[str]] = mapped_column(JSON, default=list)
    narrative_cipher: Mapped[str] = mapped_column(Text)
    # Confidential by law: encrypted, shown only to roles that need it; NULL for anonymous reports.
    reporter_cipher: Mapped[str | None] = mapped_column(Text, nullable=True)
    external_reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(100))
    attention_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome_notice: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A person's triage of a public report: awaiting, confirmed, rejected; NULL where none is needed (0005).
    person_triage: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # Optimistic concurrency: every ORM update checks and bumps it (UPDATE ... WHERE version = :read), so a
    # change based on a stale read fails instead of overwriting; added in 0003, existing rows start at 1.
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (read once, by the mapper)
    __table_args__ = (
        Index("ix_reports_received", "tenant_id", "received_at"),
        Index("ix_reports_child", "tenant_id", "child_id"),
        Index("ux_reports_external_reference", "tenant_id", "channel", "external_reference", unique=True),
    )


class ReceiptRecord(Base):
    """Receipt lookups come without a tenant: this maps the receipt's keyed hash to its report.

    Holds no report data and not the receipt itself (only an HMAC), so it is not tenant data.
    """

    __tablename__ = "receipts"
    receipt_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    report_id: Mapped[str] = mapped_column(String(32), unique=True)


class PendingReceiptRecord(Base):
    """A receipt number to hand to notify for a reporter who asked for it, until notify has taken it (then the
    row is deleted) or it is a day old. Read across towns by the sending worker, so not under row-level security:
    the address and the receipt number are encrypted, bound to the town (FieldCipher), and nothing else is here."""

    __tablename__ = "pending_receipts"
    report_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(10))  # sms, email
    address_cipher: Mapped[str] = mapped_column(Text)
    receipt_cipher: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_pending_receipts_due", "due_at"),)


class TriageRuleSetRecord(Base):
    """Per-tenant triage rules, versioned; the built-in default applies where a tenant has none."""

    __tablename__ = "triage_rule_sets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rules: Mapped[dict[str, object]] = mapped_column(JSON)
    __table_args__ = (Index("ux_rule_set_version", "tenant_id", "version", unique=True),)


class DeadlineRecord(Base):
    """A report's time limit for one milestone (acknowledge, first contact, assessment), set at triage."""

    __tablename__ = "report_deadlines"
    report_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    milestone: Mapped[str] = mapped_column(String(20), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Set when DeadlineBreached was written to the outbox: a breach is announced once.
    breach_raised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The periodic check asks for open, unannounced deadlines of one town that are past due.
    __table_args__ = (Index("ix_report_deadlines_open", "tenant_id", "completed_at", "breach_raised_at", "due_at"),)


class ReportReadRecord(Base):
    """Who read a report's narrative (and its reporter, where their role shows it), when and why.

    Append-only: the app role may insert and select, never update or delete."""

    __tablename__ = "report_reads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    report_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(30))
    purpose: Mapped[str] = mapped_column(Text)
    saw_reporter: Mapped[bool] = mapped_column(Boolean)
    # ListReportReads: a report's read log, oldest first, a page at a time.
    __table_args__ = (Index("ix_report_reads_report", "tenant_id", "report_id", "at", "id"),)


TENANT_TABLES = ("reports", "report_deadlines", "triage_rule_sets", "report_reads", "outbox", "inbox")
APPEND_ONLY_TABLES = ("report_reads",)

add_messaging_tables(metadata)

import services.reporting.adapters.crisis_orm  # noqa: E402, F401  (the crisis steps' table joins this metadata)
