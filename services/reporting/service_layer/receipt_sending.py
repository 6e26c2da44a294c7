"""Handing reporters' receipt numbers to notify, after the report is stored (its own transaction went first).

A receipt waits in reporting's database (`PendingReceipts`) until notify has taken it, so a notify outage
delays the message and never the report. Notify keeps one message per report, so a receipt handed over twice
(a crash between notify's answer and the row's removal, two replicas) is still sent once. A refusal that
trying again cannot mend (notify finds the address invalid), or a receipt still not taken after a day, is
given up: logged as an error, counted, and the reporter's contact deleted with the row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from platform_runtime import metrics
from platform_runtime.db import utcnow
from services.reporting.domain.receipt_sending import ReceiptDestination, retry_delay

log = logging.getLogger(__name__)

BATCH = 20


@dataclass(frozen=True)
class PendingReceipt:
    tenant: str
    report_id: str
    receipt: str
    destination: ReceiptDestination
    created_at: datetime
    attempts: int


class ReceiptNotTaken(Exception):
    """Notify did not take the receipt. `permanent`: asking again cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class ReceiptNotifier(Protocol):
    def send_receipt(self, pending: PendingReceipt) -> str:
        """Hand the receipt to notify; returns notify's delivery id. Raises ReceiptNotTaken."""
        ...


class PendingReceipts(Protocol):
    def due(self, now: datetime, limit: int) -> list[PendingReceipt]:
        """Receipts due to be handed over, earliest first (their addresses and numbers decrypted)."""
        ...

    def taken(self, report_id: str) -> None:
        """Notify has it, or it is given up: the row and the reporter's contact are deleted."""
        ...

    def retry(self, report_id: str, due_at: datetime, error: str) -> None: ...

    def backlog(self, now: datetime) -> tuple[int, float]:
        """(how many wait, the age in seconds of the oldest), for the metrics."""
        ...


@dataclass(frozen=True)
class Round:
    taken: int = 0
    retried: int = 0
    given_up: int = 0

    @property
    def tried(self) -> int:
        return self.taken + self.retried + self.given_up


class ReceiptSender:
    def __init__(
        self, pending: PendingReceipts, notifier: ReceiptNotifier, *, now: Callable[[], datetime] = utcnow
    ) -> None:
        self._pending = pending
        self._notifier = notifier
        self._now = now

    def send_due(self, limit: int = BATCH) -> Round:
        taken = retried = given_up = 0
        for pending in self._pending.due(self._now(), limit):
            try:
                delivery_id = self._notifier.send_receipt(pending)
            except ReceiptNotTaken as error:
                now = self._now()
                delay = None if error.permanent else retry_delay(pending.attempts + 1, now - pending.created_at)
                if delay is None:
                    log.error("receipt of report %s in %s given up: %s", pending.report_id, pending.tenant, error)
                    metrics.RECEIPTS_GIVEN_UP.inc()
                    self._pending.taken(pending.report_id)
                    given_up += 1
                else:
                    log.warning(
                        "receipt of report %s in %s not taken by notify (try %d), again in %s: %s",
                        pending.report_id,
                        pending.tenant,
                        pending.attempts + 1,
                        delay,
                        error,
                    )
                    metrics.RECEIPT_RETRIES.inc()
                    self._pending.retry(pending.report_id, now + delay, str(error))
                    retried += 1
            else:
                log.info(
                    "receipt of report %s in %s taken by notify (%s)", pending.report_id, pending.tenant, delivery_id
                )
                self._pending.taken(pending.report_id)
                taken += 1
        count, oldest = self._pending.backlog(self._now())
        metrics.RECEIPTS_PENDING.set(count)
        metrics.RECEIPTS_OLDEST_PENDING.set(oldest)
        return Round(taken, retried, given_up)
