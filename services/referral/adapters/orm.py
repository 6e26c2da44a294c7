"""The referral service's tables. Every tenant table carries tenant_id and is under row-level security on PostgreSQL."""

from __future__ import annotations

from datetime import date as date_type
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Index, Integer, LargeBinary, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_runtime.db import add_messaging_tables

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class ReferralRecord(Base):
    """One referral of one report to one member unit. Holds no names: the child is known by id only."""

    __tablename__ = "referrals"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    report_id: Mapped[str] = mapped_column(String(32))
    child_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    agency_code: Mapped[str] = mapped_column(String(40))
    # The unit's name when the referral was opened, as the people involved saw it.
    agency_name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    rule_code: Mapped[str] = mapped_column(String(60))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    accepted_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    accept_note: Mapped[str] = mapped_column(Text, default="")
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    outcome: Mapped[str] = mapped_column(Text, default="")
    # 0004: the full lifecycle. `deadline_from` is when the current time limit started (sent or accepted);
    # `due_at` its end; `escalated_step` the escalation steps raised for this limit (0, 1, 2).
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    deadline_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    escalated_step: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    accept_within_seconds: Mapped[int] = mapped_column(Integer, server_default="432000", default=432000)
    complete_within_seconds: Mapped[int] = mapped_column(Integer, server_default="2592000", default=2592000)
    reroute_to: Mapped[str] = mapped_column(String(40), server_default="", default="")
    # 0005: the district rule set version that routed it (0: the plan's built-in rules).
    rule_set_version: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    # 0007: the minimum the agency needs (situations, facts, age, division, place; never a name).
    case_facts: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    # The last reason, question, answer or note, as the agency or referrer wrote it.
    last_note: Mapped[str] = mapped_column(Text, server_default="", default="")
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Optimistic concurrency: every ORM update checks and bumps it (UPDATE ... WHERE version = :read), so a
    # change based on a stale read fails instead of overwriting; added in 0002, existing rows start at 1.
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (read once, by the mapper)
    __table_args__ = (
        # One referral per report and agency, however often the report's events are delivered.
        Index("ux_referrals_report_agency", "tenant_id", "report_id", "agency_code", unique=True),
        Index("ix_referrals_child", "tenant_id", "child_id"),
        Index("ix_referrals_opened", "tenant_id", "opened_at"),
        # The escalation worker asks for the town's referrals whose limit has passed.
        Index("ix_referrals_due", "tenant_id", "status", "due_at"),
        Index("ix_referrals_agency", "agency_code", "tenant_id", "status"),
    )


class ReferralEntryRecord(Base):
    """What happened to a referral, in order: every move with who made it and what they wrote (the history
    the referral page shows; progress notes live here)."""

    __tablename__ = "referral_entries"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    referral_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by: Mapped[str] = mapped_column(String(100))
    agency_code: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("ix_referral_entries_referral", "tenant_id", "referral_id", "at"),)


class AgencyCommandRecord(Base):
    """A change an agency asked for under its own idempotency key: the same key again gets the same answer
    instead of a second change (or an error for a retried accept)."""

    __tablename__ = "agency_commands"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    referral_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReportLinkRecord(Base):
    """The child a report was last linked to (ReportLinked), kept apart from the referrals: the link may arrive
    before the report that opens them, and then is applied when they are opened (ADR 0009)."""

    __tablename__ = "report_links"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    report_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    child_id: Mapped[str] = mapped_column(String(32))
    # When reporting linked it: a late, older link never replaces a newer one.
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DirectoryAgencyRecord(Base):
    """One unit of a district's directory. District data: `tenant_id` holds the district's code, so the same
    row-level security keeps each district's directory to itself (a town's work reads it as its district)."""

    __tablename__ = "directory_agencies"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(10))
    duties: Mapped[list[str]] = mapped_column(JSON, default=list)
    # {"user_ids": [...], "duty_phone": "", "email": "", "webhook": ""}
    contacts: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    supervisor: Mapped[str] = mapped_column(String(40), default="")
    member: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (read once, by the mapper)


class RuleSetRecord(Base):
    """One version of a district's routing rules, in effect from a day. Never changed once written: a change is
    a new version (referrals name the version that routed them)."""

    __tablename__ = "routing_rule_sets"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    effective_from: Mapped[date_type] = mapped_column(Date)
    rules: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(100))


class AgencyCredentialRecord(Base):
    """A credential of one agency's own system, issued by the district administrator (district data: `tenant_id`
    is the district's code). The token itself is never stored: its `jti` is this row's id, and every call checks
    the row, so a revoked credential is refused at once."""

    __tablename__ = "agency_credentials"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_by: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class FeedEntryRecord(Base):
    """The agencies' change feed: one row per change of a referral as its agency saw it (the referral as it was
    then, serialized). `seq` is the agency stream's cursor; rows of one district are committed in `seq` order
    (a lock per district held from the insert to the commit), so a reader past a seq never misses a lower one."""

    __tablename__ = "referral_feed"
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(String(12))
    agency_code: Mapped[str] = mapped_column(String(40))
    referral_id: Mapped[str] = mapped_column(String(32))
    # The referral left this agency (reassigned): the agency is told, not shown the rest.
    gone: Mapped[bool] = mapped_column(Boolean, default=False)
    snapshot: Mapped[bytes] = mapped_column(LargeBinary)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_referral_feed_agency", "agency_code", "seq"),)


class ReferralTownRecord(Base):
    """Every town with referrals: the periodic escalation check goes through them. A platform table (no RLS):
    it names towns, nothing of their referrals."""

    __tablename__ = "referral_towns"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)


# Written once, never changed: rule versions, the history of referrals, the agencies' change feed.
APPEND_ONLY_TABLES = ("routing_rule_sets", "referral_entries", "referral_feed")

TENANT_TABLES = (
    "referrals",
    "report_links",
    "referral_entries",
    "agency_commands",
    "directory_agencies",
    "routing_rule_sets",
    "agency_credentials",
    "referral_feed",
    "outbox",
    "inbox",
)

add_messaging_tables(metadata)
