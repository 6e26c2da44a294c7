"""A crisis report's escalation steps as notify announced them (CrisisEscalated, CrisisAcknowledged), for the
report's timeline. Names and roles only: notify never sends an address, and none is stored here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.reporting.adapters.orm import Base


class CrisisStepRecord(Base):
    __tablename__ = "report_crisis_steps"
    tenant_id: Mapped[str] = mapped_column(String(12))
    crisis_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # alerted, escalated or acknowledged; with the step, the key: an event taken twice is stored once.
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(40))
    # [[recipient, name], ...]: user:<id> or role:<role>, with the person's name where notify knows it.
    people: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    via: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_report_crisis_steps_report", "tenant_id", "report_id"),)


CRISIS_TENANT_TABLES = ("report_crisis_steps",)
