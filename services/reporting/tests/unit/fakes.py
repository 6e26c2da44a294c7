"""In-memory implementations of the reporting service's ports, for unit tests of the use cases.

`FakeReportStore` keeps what was committed; each unit of work reads it, changes a private copy and applies
it at commit as the database would: a report saved after another transaction changed it fails with
ConcurrentUpdate, a taken external reference with DuplicateReport, and nothing is kept without a commit.
Its events are mapped to protobuf as the real outbox maps them (so an unmappable event fails here too), and
the domain events committed are kept in order in `store.events`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from platform_runtime import errors, paging
from platform_runtime.events import PendingEvent
from platform_runtime.unit_of_work import FakeUnitOfWork
from services.reporting.adapters import messages
from services.reporting.domain.deadlines import Deadline, Milestone
from services.reporting.domain.events import ReportEvent
from services.reporting.domain.model import Channel, ChildInfo, Place, Report, ReportStatus
from services.reporting.domain.receipt_sending import ReceiptDestination
from services.reporting.domain.triage import TriageRuleSet
from services.reporting.service_layer.ports import (
    ChildCandidate,
    ChildDirectoryUnavailable,
    DuplicateReport,
    ReportEntry,
    ReportingUnitOfWork,
    ReportRead,
)


@dataclass
class StoredRow:
    """A report as the store holds it, with what is stored beside it."""

    report: Report
    crisis: bool
    reasons: tuple[str, ...]
    version: int
    submitted_by: str
    reference: str
    receipt_digest: str


def _copy(report: Report) -> Report:
    return replace(report, receipt="")  # the store keeps only the receipt's hash


def _state(report: Report) -> tuple[object, ...]:
    return (
        report.status,
        report.child_id,
        report.group_id,
        report.attention_reason,
        report.outcome_notice,
        report.person_triage,
    )


@dataclass
class FakeReportStore:
    rows: dict[str, StoredRow] = field(default_factory=dict)
    deadlines: dict[tuple[str, Milestone], Deadline] = field(default_factory=dict)
    completed_by: dict[tuple[str, Milestone], str] = field(default_factory=dict)
    rule_sets: dict[str, list[TriageRuleSet]] = field(default_factory=dict)
    reads: dict[str, list[ReportRead]] = field(default_factory=dict)  # by tenant, in order
    receipts_to_send: dict[str, tuple[str, ReceiptDestination]] = field(default_factory=dict)  # report id ->
    outbox: list[PendingEvent] = field(default_factory=list)  # as the outbox table would hold them
    events: list[ReportEvent] = field(default_factory=list)  # the same, as domain events
    units: list[FakeReportingUnitOfWork] = field(default_factory=list)

    def unit_of_work(self, tenant: str) -> FakeReportingUnitOfWork:
        unit = FakeReportingUnitOfWork(self, tenant)
        self.units.append(unit)
        return unit

    def tenants_with_reports(self) -> list[str]:
        return sorted({row.report.tenant_id for row in self.rows.values()})

    def receipt(self, digest: str) -> tuple[str, str] | None:
        for row in self.rows.values():
            if row.receipt_digest == digest:
                return row.report.tenant_id, row.report.report_id
        return None

    @property
    def commits(self) -> int:
        return sum(unit.commits for unit in self.units)

    def events_of(self, kind: type[ReportEvent]) -> list[ReportEvent]:
        return [event for event in self.events if isinstance(event, kind)]


class FakeReportRepository:
    def __init__(self, store: FakeReportStore, tenant: str) -> None:
        self._store = store
        self._tenant = tenant
        self._added: dict[str, StoredRow] = {}
        self._added_deadlines: dict[tuple[str, Milestone], Deadline] = {}
        self._read: dict[str, Report] = {}  # report id -> the copy handed out
        self._read_versions: dict[str, int] = {}
        self._saved: dict[str, Report] = {}
        self._deadlines: dict[tuple[str, Milestone], Deadline] = {}
        self._completed_by: dict[tuple[str, Milestone], str] = {}
        self._reads: list[ReportRead] = []
        self._receipts: dict[str, tuple[str, ReceiptDestination]] = {}

    # -- the port ---------------------------------------------------------------------------------------------

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
        if report.tenant_id != self._tenant:
            raise ValueError("a report of another town")
        self._added[report.report_id] = StoredRow(
            _copy(report), crisis, reasons, 1, submitted_by, reference, receipt_digest
        )
        for deadline in deadlines:
            self._added_deadlines[(report.report_id, deadline.milestone)] = deadline

    def queue_receipt(self, report_id: str, receipt: str, destination: ReceiptDestination, at: datetime) -> None:
        self._receipts[report_id] = (receipt, destination)

    def get(self, report_id: str) -> ReportEntry | None:
        row = self._row(report_id)
        if row is None:
            return None
        if report_id not in self._read:
            self._read[report_id] = self._saved.get(report_id) or _copy(row.report)
            self._read_versions[report_id] = row.version
        return ReportEntry(self._read[report_id], row.crisis, row.reasons, self._read_versions[report_id])

    def by_external_reference(self, channel: Channel, reference: str) -> ReportEntry | None:
        for row in self._rows():
            if row.report.submission.channel is channel and row.reference == reference:
                return self.get(row.report.report_id)
        return None

    def save(self, report: Report) -> None:
        if self._row(report.report_id) is None:
            raise LookupError(report.report_id)
        self._saved[report.report_id] = report

    def version(self, report_id: str) -> int:
        row = self._row(report_id)
        if row is None:
            raise LookupError(report_id)
        return row.version

    def recent(self, limit: int) -> list[ReportEntry]:
        rows = sorted(self._rows(), key=lambda row: row.report.received_at, reverse=True)[:limit]
        return [entry for row in rows if (entry := self.get(row.report.report_id)) is not None]

    def linked_to_child(self, child_id: str, *, since: datetime, excluding: str) -> list[Report]:
        return [
            _copy(row.report)
            for row in self._rows()
            if row.report.child_id == child_id
            and row.report.received_at >= since
            and row.report.report_id != excluding
            and row.report.group_id is not None
        ]

    def deadlines(self, report_ids: Iterable[str], *, lock: bool = False) -> dict[str, tuple[Deadline, ...]]:
        wanted = set(report_ids)
        found: dict[str, list[Deadline]] = {}
        for (report_id, _), deadline in sorted(self._all_deadlines().items(), key=lambda kv: (kv[0][0], kv[1].due_at)):
            if report_id in wanted:
                found.setdefault(report_id, []).append(deadline)
        return {report_id: tuple(deadlines) for report_id, deadlines in found.items()}

    def complete_deadline(self, report_id: str, milestone: Milestone, at: datetime, *, by: str) -> None:
        key = (report_id, milestone)
        self._deadlines[key] = replace(self._all_deadlines()[key], completed_at=at)
        self._completed_by[key] = by

    def mark_breach_raised(self, report_id: str, milestone: Milestone, at: datetime) -> None:
        key = (report_id, milestone)
        self._deadlines[key] = replace(self._all_deadlines()[key], breach_raised=True)

    def due_breaches(self, now: datetime, limit: int) -> list[tuple[Report, Deadline]]:
        due = []
        for (report_id, _), deadline in self._all_deadlines().items():
            row = self._row(report_id)
            if row is None or row.report.status is ReportStatus.CLOSED:
                continue
            if deadline.completed_at is None and not deadline.breach_raised and deadline.due_at < now:
                due.append((_copy(row.report), deadline))
        return sorted(due, key=lambda pair: pair[1].due_at)[:limit]

    def triage_rule_sets(self) -> list[TriageRuleSet]:
        return list(self._store.rule_sets.get(self._tenant, []))

    def record_read(self, read: ReportRead) -> None:
        self._reads.append(read)

    def reads(self, report_id: str, *, page_size: int = 0, page_token: str = "") -> tuple[list[ReportRead], str]:
        kept = self._store.reads.get(self._tenant, []) + self._reads
        found = [read for read in kept if read.report_id == report_id]
        size, start = paging.page_size(page_size), int(page_token or 0)  # the fake's token: an offset
        return found[start : start + size], str(start + size) if len(found) > start + size else ""

    # -- the transaction ----------------------------------------------------------------------------------------

    def has_changes(self) -> bool:
        return bool(self._added or self._deadlines or self._reads or self._receipts or self._changed())

    def apply(self) -> None:
        """Check everything first, then keep everything: a refused commit keeps nothing."""
        for report_id in self._changed():
            if self._store.rows[report_id].version != self._read_versions.get(report_id, 0):
                raise errors.ConcurrentUpdate("the report was changed by someone else at the same time")
        for row in self._added.values():
            taken = any(
                other.report.tenant_id == self._tenant
                and other.report.submission.channel is row.report.submission.channel
                and other.reference
                and other.reference == row.reference
                for other in self._store.rows.values()
            )
            if taken or row.report.report_id in self._store.rows:
                raise DuplicateReport(row.reference or row.report.report_id)
        for report_id in self._changed():
            stored = self._store.rows[report_id]
            stored.report = _copy(self._saved[report_id])
            stored.version += 1
        self._store.rows.update(self._added)
        self._store.deadlines.update(self._added_deadlines)
        self._store.deadlines.update(self._deadlines)
        self._store.completed_by.update(self._completed_by)
        self._store.reads.setdefault(self._tenant, []).extend(self._reads)
        self._store.receipts_to_send.update(self._receipts)
        self.discard()

    def discard(self) -> None:
        self._added.clear()
        self._added_deadlines.clear()
        self._read.clear()
        self._read_versions.clear()
        self._saved.clear()
        self._deadlines.clear()
        self._completed_by.clear()
        self._reads.clear()
        self._receipts.clear()

    def _changed(self) -> list[str]:
        return [
            report_id
            for report_id, report in self._saved.items()
            if report_id in self._store.rows and _state(report) != _state(self._store.rows[report_id].report)
        ]

    def _row(self, report_id: str) -> StoredRow | None:
        row = self._added.get(report_id) or self._store.rows.get(report_id)
        return row if row is not None and row.report.tenant_id == self._tenant else None

    def _rows(self) -> list[StoredRow]:
        rows = {**self._store.rows, **self._added}
        return [row for row in rows.values() if row.report.tenant_id == self._tenant]

    def _all_deadlines(self) -> dict[tuple[str, Milestone], Deadline]:
        merged = {**self._store.deadlines, **self._added_deadlines, **self._deadlines}
        return {key: value for key, value in merged.items() if self._row(key[0]) is not None}


class FakeReportingUnitOfWork(FakeUnitOfWork, ReportingUnitOfWork):
    """The runtime's fake unit of work with the reports' fake repository (a ReportingUnitOfWork)."""

    def __init__(self, store: FakeReportStore, tenant: str) -> None:
        super().__init__(tenant, outbox=store.outbox)
        self._store = store
        self._repository = FakeReportRepository(store, tenant)
        self._emitted: list[ReportEvent] = []

    @property
    def reports(self) -> FakeReportRepository:
        return self._repository

    def emit(self, event: ReportEvent) -> None:
        self.publish(messages.pending(self.tenant, event))
        self._emitted.append(event)

    def _commit(self, events: list[PendingEvent]) -> None:
        super()._commit(events)
        self._store.events += self._emitted
        self._emitted = []

    def _apply(self) -> None:
        self._repository.apply()

    def _discard(self) -> None:
        self._emitted = []
        self._repository.discard()

    def _has_changes(self) -> bool:
        return self._repository.has_changes()


class FakeChildDirectory:
    """The register as reporting sees it: candidates per child name, provisional children, merges, outages."""

    def __init__(self) -> None:
        self.candidates: dict[str, list[ChildCandidate]] = {}  # by the reported child's name
        self.registered: list[ChildInfo] = []
        self.merged_into: dict[str, str] = {}
        self.known: set[str] = set()
        self.down = False

    def match(self, child: ChildInfo, place: Place) -> list[ChildCandidate]:
        self._check()
        return list(self.candidates.get(child.name or "", []))

    def register_provisional(self, child: ChildInfo, place: Place) -> str:
        self._check()
        self.registered.append(child)
        child_id = f"provisional-{len(self.registered)}"
        self.known.add(child_id)
        return child_id

    def current_id(self, child_id: str) -> str | None:
        self._check()
        current = self.merged_into.get(child_id, child_id)
        return current if current in self.known else None

    def _check(self) -> None:
        if self.down:
            raise ChildDirectoryUnavailable("registry UNAVAILABLE")
