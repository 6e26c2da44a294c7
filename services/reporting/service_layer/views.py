"""What the reporting use cases return: plain dataclasses, free of SQL and protobuf."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.reporting.domain.deadlines import Deadline
from services.reporting.domain.model import Report


@dataclass(frozen=True)
class StoredReport:
    """A report as read back, with the triage outcome recorded when it arrived and its time limits."""

    report: Report
    crisis: bool
    reasons: tuple[str, ...]
    deadlines: tuple[Deadline, ...]
    as_of: datetime  # the service's clock when read: whether a deadline is missed depends on it
    version: int = 0  # of the stored row: goes up with every change (optimistic concurrency)


@dataclass(frozen=True)
class SubmitOutcome:
    stored: StoredReport
    receipt: str  # empty when an agency resubmits a report already stored (only its hash is kept)

    @property
    def report(self) -> Report:
        return self.stored.report
