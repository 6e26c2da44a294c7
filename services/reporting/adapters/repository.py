"""Reports in and out of the database: the domain's Report <-> the encrypted row, and its deadlines
(`service_layer.ports.ReportRepository` on SQLAlchemy)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from platform_runtime import paging
from platform_runtime.pii import FieldCipher
from services.reporting.adapters.orm import (
    DeadlineRecord,
    PendingReceiptRecord,
    ReceiptRecord,
    ReportReadRecord,
    ReportRecord,
    TriageRuleSetRecord,
)
from services.reporting.domain.deadlines import Deadline, Milestone
from services.reporting.domain.model import (
    AgencyKind,
    Channel,
    ChildInfo,
    Fact,
    PersonTriage,
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
from services.reporting.domain.receipt_sending import ReceiptDestination
from services.reporting.domain.triage import TriageRuleSet, rule_set_from_dict
from services.reporting.service_layer.ports import ReportEntry, ReportRead

# The encrypted fields of a pending receipt (the cipher binds each to its town and field).
RECEIPT_ADDRESS_FIELD = "receipt_address"
RECEIPT_NUMBER_FIELD = "receipt_number"


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ReportRepository:
    def __init__(self, session: Session, cipher: FieldCipher, tenant: str) -> None:
        self._session = session
        self._cipher = cipher
        self._tenant = tenant
        # The rows read in this transaction, held: the session's identity map holds them only weakly, and a
        # row read again after it was dropped comes with another transaction's version, whose check then
        # passes (a lost update). Held, a saved report is checked against the version it was read at.
        self._held: set[object] = set()

    def _seal(self, value: str, field: str) -> str:
        return self._cipher.encrypt(value, tenant=self._tenant, field=field)

    def _open(self, token: str, field: str) -> str:
        return self._cipher.decrypt(token, tenant=self._tenant, field=field)

    def add(
        self,
        report: Report,
        *,
        submitted_by: str,
        reasons: tuple[str, ...],
        crisis: bool,
        reference: str,
        deadlines: Iterable[Deadline],
        receipt_digest: str,
    ) -> None:
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
                external_reference=reference or None,
                submitted_by=submitted_by,
                person_triage=report.person_triage.value if report.person_triage else None,
            )
        )
        self._add_deadlines(report.report_id, deadlines)
        self._session.add(
            ReceiptRecord(receipt_hash=receipt_digest, tenant_id=self._tenant, report_id=report.report_id)
        )

    def queue_receipt(self, report_id: str, receipt: str, destination: ReceiptDestination, at: datetime) -> None:
        self._session.add(
            PendingReceiptRecord(
                report_id=report_id,
                tenant_id=self._tenant,
                channel=destination.channel.value,
                address_cipher=self._seal(destination.address, RECEIPT_ADDRESS_FIELD),
                receipt_cipher=self._seal(receipt, RECEIPT_NUMBER_FIELD),
                locale=destination.locale,
                created_at=at,
                due_at=at,
                attempts=0,
                last_error="",
            )
        )

    def record(self, report_id: str) -> ReportRecord | None:
        row = self._session.get(ReportRecord, report_id)
        if row is None or row.tenant_id != self._tenant:
            return None
        self._held.add(row)
        return row

    def get(self, report_id: str) -> ReportEntry | None:
        row = self.record(report_id)
        return None if row is None else self._entry(row)

    def by_external_reference(self, channel: Channel, reference: str) -> ReportEntry | None:
        row = self._session.scalars(
            select(ReportRecord).where(
                ReportRecord.tenant_id == self._tenant,
                ReportRecord.channel == channel.value,
                ReportRecord.external_reference == reference,
            )
        ).first()
        return None if row is None else self._entry(row)

    def version(self, report_id: str) -> int:
        row = self.record(report_id)
        if row is None:
            raise LookupError(report_id)
        return row.version

    def recent(self, limit: int) -> list[ReportEntry]:
        rows = self._session.scalars(
            select(ReportRecord)
            .where(ReportRecord.tenant_id == self._tenant)
            .order_by(ReportRecord.received_at.desc())
            .limit(limit)
        )
        return [self._entry(row) for row in rows]

    def linked_to_child(self, child_id: str, *, since: datetime, excluding: str) -> list[Report]:
        # Only linked reports have a group: the others need not be read (nor decrypted) at all.
        rows = self._session.scalars(
            select(ReportRecord).where(
                ReportRecord.tenant_id == self._tenant,
                ReportRecord.child_id == child_id,
                ReportRecord.received_at >= since,
                ReportRecord.id != excluding,
                ReportRecord.group_id.is_not(None),
            )
        )
        return [self.to_domain(row) for row in rows]

    def triage_rule_sets(self) -> list[TriageRuleSet]:
        rows = self._session.scalars(select(TriageRuleSetRecord).where(TriageRuleSetRecord.tenant_id == self._tenant))
        return [rule_set_from_dict(row.rules) for row in rows]

    def record_read(self, read: ReportRead) -> None:
        self._session.add(
            ReportReadRecord(
                tenant_id=self._tenant,
                report_id=read.report_id,
                at=read.at,
                actor=read.actor,
                role=read.role,
                purpose=read.purpose,
                saw_reporter=read.saw_reporter,
            )
        )

    def reads(self, report_id: str, *, page_size: int = 0, page_token: str = "") -> tuple[list[ReportRead], str]:
        rows, next_token = paging.one_page(
            self._session,
            select(ReportReadRecord).where(
                ReportReadRecord.tenant_id == self._tenant, ReportReadRecord.report_id == report_id
            ),
            ReportReadRecord.at,
            ReportReadRecord.id,
            newest_first=False,
            size=page_size,
            token=page_token,
        )
        return [
            ReportRead(row.report_id, _aware(row.at), row.actor, row.role, row.purpose, row.saw_reporter)
            for row in rows
        ], next_token

    def _entry(self, row: ReportRecord) -> ReportEntry:
        self._held.add(row)
        return ReportEntry(self.to_domain(row), row.crisis, tuple(row.triage_reasons), row.version)

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
            person_triage=PersonTriage(row.person_triage) if row.person_triage else None,
        )

    def save(self, report: Report) -> None:
        row = self.record(report.report_id)
        if row is None:
            raise LookupError(report.report_id)
        row.status = report.status.value
        row.child_id = report.child_id
        row.group_id = report.group_id
        row.attention_reason = report.attention_reason
        row.outcome_notice = report.outcome_notice
        row.person_triage = report.person_triage.value if report.person_triage else None

    # -- deadlines --------------------------------------------------------------------------------------------

    def _add_deadlines(self, report_id: str, deadlines: Iterable[Deadline]) -> None:
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
        rows = list(self._session.scalars(query.with_for_update() if lock else query))
        self._held.update(rows)
        return rows

    def deadlines(self, report_ids: Iterable[str], *, lock: bool = False) -> dict[str, tuple[Deadline, ...]]:
        found: dict[str, list[Deadline]] = {}
        for row in self.deadline_records(report_ids, lock=lock):
            found.setdefault(row.report_id, []).append(deadline_of(row))
        return {report_id: tuple(deadlines) for report_id, deadlines in found.items()}

    def complete_deadline(self, report_id: str, milestone: Milestone, at: datetime, *, by: str) -> None:
        row = self._deadline_record(report_id, milestone)
        row.completed_at = at.astimezone(UTC)
        row.completed_by = by

    def mark_breach_raised(self, report_id: str, milestone: Milestone, at: datetime) -> None:
        self._deadline_record(report_id, milestone).breach_raised_at = at

    def due_breaches(self, now: datetime, limit: int) -> list[tuple[Report, Deadline]]:
        due = self._session.execute(
            select(DeadlineRecord, ReportRecord)
            .join(ReportRecord, ReportRecord.id == DeadlineRecord.report_id)
            .where(
                DeadlineRecord.tenant_id == self._tenant,
                DeadlineRecord.completed_at.is_(None),
                DeadlineRecord.breach_raised_at.is_(None),
                DeadlineRecord.due_at < now,
                ReportRecord.status != ReportStatus.CLOSED.value,
            )
            .order_by(DeadlineRecord.due_at)
            .limit(limit)
            .with_for_update(of=DeadlineRecord, skip_locked=True)
        ).all()
        self._held.update(row for pair in due for row in pair)
        return [(self.to_domain(report), deadline_of(record)) for record, report in due]

    def _deadline_record(self, report_id: str, milestone: Milestone) -> DeadlineRecord:
        # Read (and locked) by `deadlines` or `due_breaches` in this transaction: the session has it already.
        row = self._session.get(DeadlineRecord, (report_id, milestone.value))
        if row is None or row.tenant_id != self._tenant:
            raise LookupError(f"{report_id}/{milestone.value}")
        return row


def deadline_of(row: DeadlineRecord) -> Deadline:
    return Deadline(
        milestone=Milestone(row.milestone),
        due_at=_aware(row.due_at),
        completed_at=_aware(row.completed_at) if row.completed_at else None,
        breach_raised=row.breach_raised_at is not None,
    )


def _child_to_json(child: ChildInfo) -> dict[str, Any]:
    data = asdict(child)
    data["sex"] = child.sex.code if child.sex else None  # "male" or "female", as stored from the start
    data["birth_date"] = child.birth_date.isoformat() if child.birth_date else None
    data["guardian_names"] = list(child.guardian_names)
    return data


def _child_from_json(data: dict[str, Any]) -> ChildInfo:
    return ChildInfo(
        name=data.get("name"),
        sex=Sex[data["sex"].upper()] if data.get("sex") else None,
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
