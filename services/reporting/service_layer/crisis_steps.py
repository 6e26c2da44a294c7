"""A crisis report's escalation on its timeline: "alert sent to X at t, escalated to Y at t, acknowledged by Z
at t", kept from notify's events (the consumer calls `record` inside its unit of work) and read by staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from platform_runtime.db import Database, UnitOfWork
from platform_runtime.tenancy import require_role
from services.reporting.adapters.crisis_orm import CrisisStepRecord
from services.reporting.service_layer.services import READER_ROLES

ALERTED, ESCALATED, ACKNOWLEDGED = "alerted", "escalated", "acknowledged"


@dataclass(frozen=True)
class CrisisStep:
    crisis_id: str
    report_id: str
    kind: str
    step: int
    level: str
    people: tuple[tuple[str, str], ...]  # (user:<id> or role:<role>, the person's name or "")
    via: str
    at: datetime


def record(uow: UnitOfWork, step: CrisisStep) -> None:
    """Keep one step; the same step announced again (a redelivery under a new id) changes nothing."""
    key = (step.crisis_id, step.kind, step.step)
    if uow.session.get(CrisisStepRecord, key) is not None:
        return
    uow.session.add(
        CrisisStepRecord(
            tenant_id=uow.tenant,
            crisis_id=step.crisis_id,
            kind=step.kind,
            step=step.step,
            report_id=step.report_id,
            level=step.level,
            people=[list(person) for person in step.people],
            via=step.via,
            at=step.at,
        )
    )


class CrisisStepService:
    def __init__(self, database: Database) -> None:
        self._database = database

    def list_steps(self, report_id: str) -> list[CrisisStep]:
        """The report's crisis steps, oldest first (staff who read reports)."""
        tenant = require_role(*READER_ROLES).tenant
        with self._database.unit_of_work(tenant) as uow:
            rows = uow.session.scalars(
                select(CrisisStepRecord)
                .where(CrisisStepRecord.tenant_id == tenant, CrisisStepRecord.report_id == report_id)
                .order_by(CrisisStepRecord.at, CrisisStepRecord.step)
            )
            return [
                CrisisStep(
                    crisis_id=row.crisis_id,
                    report_id=row.report_id,
                    kind=row.kind,
                    step=row.step,
                    level=row.level,
                    people=tuple((recipient, name) for recipient, name in row.people),
                    via=row.via,
                    at=row.at,
                )
                for row in rows
            ]
