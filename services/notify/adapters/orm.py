"""The notify service's tables. Every tenant table carries tenant_id and is under row-level security on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import Date, DateTime, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_runtime.db import UnitOfWork, add_messaging_tables

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
    # Acknowledging says "I am on it" (a crisis alert must be acknowledged; reading is not enough).
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
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


class DeliveryRecord(Base):
    """One message to one recipient on one channel, kept until it is sent or has failed for good. An event
    gives at most one per recipient and channel (the unique key), however often it is consumed."""

    __tablename__ = "deliveries"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    event_id: Mapped[str] = mapped_column(String(80))
    recipient: Mapped[str] = mapped_column(String(120))  # user:<id>, role:<role>, agency:<code>
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(300))  # e-mail, phone, URL; empty in-app
    notification_id: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(40))
    priority: Mapped[str] = mapped_column(String(10))
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)  # what leaves the portal: a short text and a link, nothing more
    status: Mapped[str] = mapped_column(String(10))  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    provider_id: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # quiet hours hold a message back
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (
        UniqueConstraint("tenant_id", "event_id", "recipient", "channel", name="uq_deliveries_once"),
        Index("ix_deliveries_status", "tenant_id", "status", "created_at"),
        Index("ix_deliveries_subject", "tenant_id", "subject_type", "subject_id"),
    )


class DeliveryQueueRecord(Base):
    """The deliveries waiting for their channel's worker, across towns: ids and times only (no personal data),
    so it has no row-level security and a worker finds every town's due work in one query."""

    __tablename__ = "delivery_queue"
    delivery_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(10))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_delivery_queue_due", "channel", "due_at"),)


class ContactRecord(Base):
    """A person of the town as notify reaches them: contact details, the channels they turned off, quiet hours."""

    __tablename__ = "contacts"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(30))
    phone: Mapped[str] = mapped_column(String(20), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    channels_off: Mapped[str] = mapped_column(String(60), default="")  # comma-separated channels
    quiet_from: Mapped[str] = mapped_column(String(5), default="")  # HH:MM Beijing time; empty: none
    quiet_until: Mapped[str] = mapped_column(String(5), default="")
    locale: Mapped[str] = mapped_column(String(10), default="zh-CN", server_default="zh-CN")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_contacts_role", "tenant_id", "role"),)


class SubscriptionRecord(Base):
    """Which event type goes to which recipients on which channels, per town (district defaults copied in)."""

    __tablename__ = "subscriptions"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(120), primary_key=True)  # role:x, responsible, duty_officer,...
    channels: Mapped[str] = mapped_column(String(60))  # comma-separated


class DutyRotaRecord(Base):
    """The town's duty officer of each day (值班表), Beijing dates."""

    __tablename__ = "duty_rota"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    on_date: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(100))


class AgencyContactRecord(Base):
    """Where an agency is told of its referrals: an e-mail box, a duty phone, its system's webhook."""

    __tablename__ = "agency_contacts"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    address: Mapped[str] = mapped_column(String(300))


class CrisisRecord(Base):
    """A crisis alert that must be acknowledged; unacknowledged, it goes up the town's chain step by step."""

    __tablename__ = "crises"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    report_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(8))  # replied by SMS to acknowledge
    title: Mapped[str] = mapped_column(String(200))
    actions: Mapped[str] = mapped_column(String(300), default="", server_default="")  # as staff name them
    declared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    limit_seconds: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)  # the last step taken (1: the duty officer)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(100), default="")
    acknowledged_via: Mapped[str] = mapped_column(String(10), default="")
    __table_args__ = (
        UniqueConstraint("tenant_id", "report_id", name="uq_crises_report"),
        # ListCrises: the town's crises, the latest declared first, a page at a time.
        Index("ix_crises_declared", "tenant_id", "declared_at", "id"),
    )


class CrisisStepRecord(Base):
    """One step of a crisis's escalation: whom it told and when (the key makes a step happen once)."""

    __tablename__ = "crisis_steps"
    tenant_id: Mapped[str] = mapped_column(String(12))
    crisis_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(30))
    recipients: Mapped[str] = mapped_column(Text)  # comma-separated
    told_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EscalationTimerRecord(Base):
    """When an open crisis goes up its next step, across towns: ids and times only (no row-level security).
    Durable: a restarted notify finds it, and the step and the timer's move commit together."""

    __tablename__ = "escalation_timers"
    crisis_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SmsCodeRecord(Base):
    """An open crisis's reply code -> its town (an SMS reply comes without a town): no personal data."""

    __tablename__ = "sms_codes"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    crisis_id: Mapped[str] = mapped_column(String(32))


class CaseHolderRecord(Base):
    """Who holds a child's case, as the registry's case events last named them: whom a benefit change
    concerns (benefits' events name the child, not the staff)."""

    __tablename__ = "case_holders"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    child_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    social_worker_user_id: Mapped[str] = mapped_column(String(100), default="")
    responsible_user_id: Mapped[str] = mapped_column(String(100), default="")
    child_director_user_id: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TownSettingsRecord(Base):
    """A town's own notify settings (absent: the deployment's defaults)."""

    __tablename__ = "town_settings"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    crisis_ack_minutes: Mapped[int] = mapped_column(Integer)  # how long a crisis alert may go unacknowledged
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TemplateRecord(Base):
    """A town's own template of a message leaving the portal (the district's are in code: outbound.py)."""

    __tablename__ = "templates"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    locale: Mapped[str] = mapped_column(String(10), primary_key=True)
    subject: Mapped[str] = mapped_column(String(400))
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


R = TypeVar("R")


def detached(uow: UnitOfWork, rows: Iterable[R]) -> list[R]:
    """Rows that stay readable after their read-only unit of work ends (its rollback would expire them)."""
    found = list(rows)
    uow.session.expunge_all()
    return found


TENANT_TABLES = (
    "notifications",
    "visit_reminders",
    "deliveries",
    "contacts",
    "subscriptions",
    "duty_rota",
    "agency_contacts",
    "crises",
    "crisis_steps",
    "templates",
    "case_holders",
    "town_settings",
    "outbox",
    "inbox",
)

add_messaging_tables(metadata)
