"""What the reporting use cases need from the outside world, as interfaces (adapters implement them).

The store of reports (`ReportStore`: units of work with their `ReportRepository`) is implemented on
SQLAlchemy in `adapters/` and in memory in `tests/unit/fakes.py`; the register of children is the registry,
reached over gRPC (`adapters/registry_client.py`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from platform_runtime.unit_of_work import AbstractUnitOfWork
from services.reporting.domain.deadlines import Deadline, Milestone
from services.reporting.domain.events import ReportEvent
from services.reporting.domain.model import Channel, ChildInfo, Place, Report, Sex
from services.reporting.domain.receipt_sending import ReceiptDestination
from services.reporting.domain.triage import TriageRuleSet


@dataclass(frozen=True)
class ChildCandidate:
    """A child of the register who may be the one reported, with what a person needs to tell them apart."""

    child_id: str
    score: float
    reasons: tuple[str, ...]
    name: str = ""
    sex: Sex | None = None
    birth_date: date | None = None
    identity_number_masked: str = ""
    residence_division_code: str = ""
    school: str = ""
    provisional: bool = False


class ChildDirectoryUnavailable(Exception):
    """The registry could not be asked; the report is kept and flagged for a person."""


class ChildDirectory(Protocol):
    def match(self, child: ChildInfo, place: Place) -> list[ChildCandidate]: ...

    def register_provisional(self, child: ChildInfo, place: Place) -> str: ...

    def current_id(self, child_id: str) -> str | None:
        """The id of the child's record (the surviving one if it was merged), None if not in the caller's town."""
        ...


# -- the store of reports -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportEntry:
    """A stored report, the triage outcome recorded when it arrived, and the version it was read at."""

    report: Report
    crisis: bool
    reasons: tuple[str, ...]
    version: int


@dataclass(frozen=True)
class ReportRead:
    """One read of a report's narrative (and reporter, when `saw_reporter`): who, in which role, when, why."""

    report_id: str
    at: datetime
    actor: str
    role: str
    purpose: str
    saw_reporter: bool


class DuplicateReport(Exception):
    """At commit: another report with the same external reference was stored first (a resubmission race)."""


class ReportRepository(Protocol):
    """The reports of one town, their time limits and triage rules, inside one unit of work.

    A saved report is checked at commit against the version it was read at: if another transaction changed
    it meanwhile, the commit raises `ConcurrentUpdate` and nothing is kept."""

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
    ) -> None: ...

    def queue_receipt(self, report_id: str, receipt: str, destination: ReceiptDestination, at: datetime) -> None:
        """Keep the receipt number to be handed to notify for the reporter (with the report, or not at all)."""
        ...

    def get(self, report_id: str) -> ReportEntry | None: ...

    def by_external_reference(self, channel: Channel, reference: str) -> ReportEntry | None: ...

    def save(self, report: Report) -> None:
        """Keep the report's state (status, child, group, attention reason, outcome notice)."""
        ...

    def version(self, report_id: str) -> int:
        """The stored version now (after a commit, the new one)."""
        ...

    def recent(self, limit: int) -> list[ReportEntry]:
        """The latest reports received, newest first."""
        ...

    def linked_to_child(self, child_id: str, *, since: datetime, excluding: str) -> list[Report]:
        """The town's reports linked (and so grouped) to `child_id`, received since `since`."""
        ...

    def deadlines(self, report_ids: Iterable[str], *, lock: bool = False) -> dict[str, tuple[Deadline, ...]]:
        """Each report's time limits in due order; `lock` holds them (FOR UPDATE) when a breach may be raised."""
        ...

    def complete_deadline(self, report_id: str, milestone: Milestone, at: datetime, *, by: str) -> None: ...

    def mark_breach_raised(self, report_id: str, milestone: Milestone, at: datetime) -> None: ...

    def due_breaches(self, now: datetime, limit: int) -> list[tuple[Report, Deadline]]:
        """Open time limits of open reports past due and not announced yet, earliest first, locked; those
        another transaction holds are skipped."""
        ...

    def triage_rule_sets(self) -> list[TriageRuleSet]: ...

    def record_read(self, read: ReportRead) -> None:
        """Append to the report's read log (kept with the unit of work's commit)."""
        ...

    def reads(self, report_id: str, *, page_size: int = 0, page_token: str = "") -> tuple[list[ReportRead], str]:
        """The report's read log, oldest first, a page at a time (the reads and the next page's token)."""
        ...


class ReportingUnitOfWork(AbstractUnitOfWork):
    """One transaction of one town: its reports change, and the domain events of the change are kept with
    it (the outbox) or not at all."""

    @property
    @abc.abstractmethod
    def reports(self) -> ReportRepository: ...

    @abc.abstractmethod
    def emit(self, event: ReportEvent) -> None:
        """Queue a domain event, published with the change at commit."""


class ReportStore(Protocol):
    def unit_of_work(self, tenant: str) -> ReportingUnitOfWork: ...

    def tenants_with_reports(self) -> list[str]:
        """Every town that has reports (the periodic deadline check goes through them)."""
        ...

    def receipt(self, digest: str) -> tuple[str, str] | None:
        """The (town, report id) of a receipt's keyed hash; receipt lookups come without a town."""
        ...
