"""The benefits service's tables. Every tenant table carries tenant_id and is under row-level security on PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Index, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_runtime.db import add_messaging_tables

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class InsuranceEnrolmentRecord(Base):
    """The insurance decision for one child: enrolled until a date, or not and why. Holds no personal data."""

    __tablename__ = "insurance_enrolments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    policy_code: Mapped[str] = mapped_column(String(60))
    covered_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    ineligible_reason: Mapped[str | None] = mapped_column(String(60), nullable=True)
    decided_on: Mapped[date] = mapped_column(Date)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ux_insurance_enrolments_child", "tenant_id", "child_id", unique=True),)


TENANT_TABLES = ("insurance_enrolments", "outbox", "inbox")

add_messaging_tables(metadata)
