"""The notify service's tables. Every tenant table carries tenant_id and is under row-level security on PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Index, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_runtime.db import add_messaging_tables

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class NotificationRecord(Base):
    """An in-app notification to a role of the tenant or to one user (one of the two is set)."""

    __tablename__ = "notifications"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    recipient_role: Mapped[str] = mapped_column(String(30), default="")
    recipient_user: Mapped[str] = mapped_column(String(100), default="")
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(10))
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    read_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    __table_args__ = (
        Index("ix_notifications_role", "tenant_id", "recipient_role", "created_at"),
        Index("ix_notifications_user", "tenant_id", "recipient_user", "created_at"),
    )


class VisitReminderRecord(Base):
    """An overdue follow-up visit the town was reminded of. The registry raises each due date once, but a due
    date can come back (the schedule moves and returns): one reminder per child and due date, however often
    it is raised. Event ids alone (the inbox) cannot tell a new event about the same visit."""

    __tablename__ = "visit_reminders"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    child_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    due_on: Mapped[date] = mapped_column(Date, primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64))
    reminded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


TENANT_TABLES = ("notifications", "visit_reminders", "outbox", "inbox")

add_messaging_tables(metadata)
