"""The registry's tables. Every tenant table carries tenant_id and is under row-level security on PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_runtime.db import add_messaging_tables

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class TenantRecord(Base):
    """The tenant directory: platform-wide, not tenant data (no RLS)."""

    __tablename__ = "tenants"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    district_code: Mapped[str] = mapped_column(String(6), index=True)
    onboarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChildRecord(Base):
    __tablename__ = "children"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12), index=True)
    legal_name: Mapped[str] = mapped_column(String(100))
    other_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # The number itself only encrypted; found through the keyed blind index; shown masked.
    identity_number_cipher: Mapped[str | None] = mapped_column(Text, nullable=True)
    identity_number_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    identity_number_masked: Mapped[str] = mapped_column(String(18), default="")
    ethnicity_code: Mapped[str] = mapped_column(String(2), default="")
    household_division_code: Mapped[str] = mapped_column(String(12), default="")
    household_address: Mapped[str] = mapped_column(String(200), default="")
    residence_division_code: Mapped[str] = mapped_column(String(12), default="")
    residence_address: Mapped[str] = mapped_column(String(200), default="")
    school: Mapped[str] = mapped_column(String(100), default="")
    grade: Mapped[str] = mapped_column(String(20), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(100))
    __table_args__ = (Index("ix_children_identity", "tenant_id", "identity_number_index", unique=True),)


class ChildMatchKey(Base):
    """Blocking keys (pinyin, initials, birth year...) so matching reads a few candidates, not the register."""

    __tablename__ = "child_match_keys"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    match_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id", ondelete="CASCADE"), primary_key=True)


class CaseFileRecord(Base):
    __tablename__ = "case_files"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12), index=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    responsible_person: Mapped[str] = mapped_column(String(100), default="")
    social_worker: Mapped[str] = mapped_column(String(100), default="")
    child_director: Mapped[str] = mapped_column(String(100), default="")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TimelineRecord(Base):
    """Everything that happened to a child, across services."""

    __tablename__ = "timeline_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(Text)
    source_service: Mapped[str] = mapped_column(String(20))
    reference_id: Mapped[str] = mapped_column(String(64), default="")
    __table_args__ = (
        Index("ix_timeline_child", "tenant_id", "child_id", "at"),
        Index("ux_timeline_reference", "tenant_id", "child_id", "kind", "reference_id", unique=True),
    )


class AuditRecord(Base):
    """Who read or changed what, when and why. Append-only: the app role may not update or delete."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_audit_subject", "tenant_id", "subject_type", "subject_id"),)


TENANT_TABLES = ("children", "child_match_keys", "case_files", "timeline_entries", "audit_log", "outbox", "inbox")
APPEND_ONLY_TABLES = ("audit_log",)

add_messaging_tables(metadata)
