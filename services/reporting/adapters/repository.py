"""Reports in and out of the database: the domain's Report <-> the encrypted row, and its deadlines."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from platform_runtime.pii import FieldCipher
from services.reporting.adapters.orm import DeadlineRecord, ReportRecord
from services.reporting.domain.deadlines import Deadline, Milestone
from services.reporting.domain.model import (
    AgencyKind,
    Channel,
    ChildInfo,
    Fact,
    Place,
    Report,
    Reporter,
    ReporterRole,
    ReportStatus,
    Sex,
    SituationType,
    Submission,
    Urgency,
)


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ReportRepository:
    def __init__(self, session: Session, cipher: FieldCipher, tenant: str) -> None:
        self._session = session
        self._cipher = cipher
        self._tenant = tenant

    def _seal(self, value: str, field: str) -> str:
        return self._cipher.encrypt(value, tenant=self._tenant, field=field)

    def _open(self, token: str, field: str) -> str:
        return self._cipher.decrypt(token, tenant=self._tenant, field=field)

    def add(self, report: Report, *, submitted_by: str, reasons: tuple[str, ...], crisis: bool, ref: str) -> None:
        submission = report.submission
        self._session.add(
            ReportRecord(
                id=report.report_id,
                tenant_id=self._tenant,
                channel=submission.channel.value,
                status=report.status.value,
                urgency=(report.urgency or Urgency.NORMAL).value,
                crisis=crisis,
                triage_rule_codes=list(report.triage_rule_codes),
                triage_reasons=list(reasons),
                child_cipher=self._seal(json.dumps(_child_to_json(submission.child), ensure_ascii=False), "child"),
                division_code=submission.place.division_code,
                place_text=submission.place.text,
                occurred_at=submission.occurred_at,
                received_at=report.received_at,
                situations=sorted(s.value for s in submission.situations),
                facts=sorted(f.value for f in submission.facts),
                narrative_cipher=self._seal(submission.narrative, "narrative"),
                reporter_cipher=(
                    self._seal(json.dumps(_reporter_to_json(submission.reporter), ensure_ascii=False), "reporter")
                    if submission.reporter
                    else None
                ),
                external_reference=ref or None,
                submitted_by=submitted_by,
            )
        )

    def record(self, report_id: str) -> ReportRecord | None:
        row = self._session.get(ReportRecord, report_id)
        return row if row is not None and row.tenant_id == self._tenant else None

    def by_external_reference(self, channel: Channel, ref: str) -> ReportRecord | None:
        return self._session.scalars(
            select(ReportRecord).where(
                ReportRecord.tenant_id == self._tenant,
                ReportRecord.channel == channel.value,
                ReportRecord.external_reference == ref,
            )
        ).first()

    def to_domain(self, row: ReportRecord, receipt: str = "") -> Report:
        reporter = json.loads(self._open(row.reporter_cipher, "reporter")) if row.reporter_cipher else None
        submission = Submission(
            channel=Channel(row.channel),
            child=_child_from_json(json.loads(self._open(row.child_cipher, "child"))),
            place=Place(row.division_code, row.place_text),
            occurred_at=_aware(row.occurred_at),
            situations=frozenset(SituationType(s) for s in row.situations),
            narrative=self._open(row.narrative_cipher, "narrative"),
            reporter=_reporter_from_json(reporter) if reporter else None,
            facts=frozenset(Fact(f) for f in row.facts),
        )
        return Report(
            report_id=row.id,
            tenant_id=row.tenant_id,
            receipt=receipt,
            received_at=_aware(row.received_at),
            submission=submission,
            status=ReportStatus(row.status),
            urgency=Urgency(row.urgency),
            triage_rule_codes=tuple(row.triage_rule_codes),
            child_id=row.child_id,
            group_id=row.group_id,
            outcome_notice=row.outcome_notice,
            attention_reason=row.attention_reason,
        )

    def save_state(self, report: Report) -> None:
        row = self.record(report.report_id)
        if row is None:
            raise LookupError(report.report_id)
        row.status = report.status.value
        row.child_id = report.child_id
        row.group_id = report.group_id
        row.attention_reason = report.attention_reason
        row.outcome_notice = report.outcome_notice

    # -- deadlines --------------------------------------------------------------------------------------------

    def add_deadlines(self, report_id: str, deadlines: Iterable[Deadline]) -> None:
        for deadline in deadlines:
            self._session.add(
                DeadlineRecord(
                    report_id=report_id,
                    milestone=deadline.milestone.value,
                    tenant_id=self._tenant,
                    # UTC, because SQLite stores a time without its offset (working-day limits are in Beijing time).
                    due_at=deadline.due_at.astimezone(UTC),
                )
            )

    def deadline_records(self, report_ids: Iterable[str], *, lock: bool = False) -> list[DeadlineRecord]:
        """Locked (FOR UPDATE on PostgreSQL) when the caller may announce a breach, so only one does."""
        query = (
            select(DeadlineRecord)
            .where(DeadlineRecord.tenant_id == self._tenant, DeadlineRecord.report_id.in_(list(report_ids)))
            .order_by(DeadlineRecord.report_id, DeadlineRecord.due_at)
        )
        return list(self._session.scalars(query.with_for_update() if lock else query))

    def deadlines(self, report_ids: Iterable[str]) -> dict[str, tuple[Deadline, ...]]:
        found: dict[str, list[Deadline]] = {}
        for row in self.deadline_records(report_ids):
            found.setdefault(row.report_id, []).append(deadline_of(row))
        return {report_id: tuple(deadlines) for report_id, deadlines in found.items()}


def deadline_of(row: DeadlineRecord) -> Deadline:
    return Deadline(
        milestone=Milestone(row.milestone),
        due_at=_aware(row.due_at),
        completed_at=_aware(row.completed_at) if row.completed_at else None,
        breach_raised=row.breach_raised_at is not None,
    )


def _child_to_json(child: ChildInfo) -> dict[str, Any]:
    data = asdict(child)
    data["sex"] = child.sex.value if child.sex else None
    data["birth_date"] = child.birth_date.isoformat() if child.birth_date else None
    data["guardian_names"] = list(child.guardian_names)
    return data


def _child_from_json(data: dict[str, Any]) -> ChildInfo:
    return ChildInfo(
        name=data.get("name"),
        sex=Sex(data["sex"]) if data.get("sex") else None,
        birth_date=date.fromisoformat(data["birth_date"]) if data.get("birth_date") else None,
        approximate_age=data.get("approximate_age"),
        identity_number=data.get("identity_number"),
        description=data.get("description"),
        school=data.get("school"),
        guardian_names=tuple(data.get("guardian_names") or ()),
    )


def _reporter_to_json(reporter: Reporter | None) -> dict[str, Any]:
    assert reporter is not None
    return {
        "name": reporter.name,
        "phone": reporter.phone,
        "organisation": reporter.organisation,
        "role": reporter.role.value if reporter.role else None,
        "agency": reporter.agency.value if reporter.agency else None,
    }


def _reporter_from_json(data: dict[str, Any]) -> Reporter:
    return Reporter(
        name=data.get("name"),
        phone=data.get("phone"),
        organisation=data.get("organisation"),
        role=ReporterRole(data["role"]) if data.get("role") else None,
        agency=AgencyKind(data["agency"]) if data.get("agency") else None,
    )
