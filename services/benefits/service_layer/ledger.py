"""The district's append-only ledger: the entries a run writes, set-based (one statement per chunk, straight from
its lines or payment instructions), and the balances read from it. An entry is unique per (kind, source), so a
step repeated after a crash cannot write one twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, Select, String, case, cast, func, insert, literal, select
from sqlalchemy.orm import Session

from platform_runtime.tenancy import require_role
from services.benefits.adapters.orm import (
    DisbursementLineRecord,
    DisbursementRunRecord,
    LedgerEntryRecord,
    PaymentInstructionRecord,
)
from services.benefits.service_layer.run_state import READER_ROLES, RunSteps

LEDGER_KINDS = ("entitlement", "adjustment", "payment", "failure", "reversal")


@dataclass(frozen=True)
class Balance:
    fund: str
    town: str
    period: date
    kind: str
    amount_fen: int
    entries: int


class LedgerBalances(RunSteps):
    """The ledger's sums, for the finance bureau."""

    def balances(self, period: date | None = None) -> list[Balance]:
        """Ledger sums by fund, town, month and kind (the finance bureau's fund-usage view)."""
        caller = require_role(*READER_ROLES)
        with self._uow(caller) as uow:
            query = select(
                LedgerEntryRecord.fund,
                LedgerEntryRecord.town,
                LedgerEntryRecord.period,
                LedgerEntryRecord.kind,
                func.sum(LedgerEntryRecord.amount_fen),
                func.count(),
            ).where(LedgerEntryRecord.tenant_id == caller.district)
            if period is not None:
                query = query.where(LedgerEntryRecord.period == period)
            rows = uow.session.execute(
                query.group_by(
                    LedgerEntryRecord.fund, LedgerEntryRecord.town, LedgerEntryRecord.period, LedgerEntryRecord.kind
                ).order_by(
                    LedgerEntryRecord.period, LedgerEntryRecord.fund, LedgerEntryRecord.town, LedgerEntryRecord.kind
                )
            ).all()
            return [
                Balance(fund, town, month, kind, int(amount), count) for fund, town, month, kind, amount, count in rows
            ]


def entries_for_lines(session: Session, run: DisbursementRunRecord, after_seq: int, at: datetime) -> None:
    line = DisbursementLineRecord
    kind = case((line.kind == "adjustment", "adjustment"), else_="entitlement")  # due and arrears are owed
    source = line.run_id + ":" + cast(line.seq, String)
    entries = _entries(run, at, kind, line.amount_fen, source).where(line.run_id == run.id, line.seq > after_seq)
    session.execute(insert(LedgerEntryRecord).from_select(_LEDGER_COLUMNS, entries))


def entries_for_first_payments(
    session: Session, run: DisbursementRunRecord, after: int, last: int, at: datetime
) -> None:
    """The payment entries of the first attempts just issued, straight from their lines (same amounts and
    references as the instructions), so no lookup of the instructions is needed."""
    line = DisbursementLineRecord
    entries = _entries(run, at, literal("payment"), line.amount_fen, line.reference + "01").where(
        line.run_id == run.id, line.seq > after, line.seq <= last, line.amount_fen > 0
    )
    session.execute(insert(LedgerEntryRecord).from_select(_LEDGER_COLUMNS, entries))


def entries_for_instructions(
    session: Session, run: DisbursementRunRecord, ids: Any, kind: str, sign: int, at: datetime
) -> None:
    """The entries of the instructions by id: a payment (sign 1) or a failed one given back (sign -1)."""
    instruction, line = PaymentInstructionRecord, DisbursementLineRecord
    entries = (
        _entries(run, at, literal(kind), instruction.amount_fen * sign, instruction.reference)
        .join(line, line.id == instruction.line_id)
        .where(instruction.id.in_(ids))
    )
    session.execute(insert(LedgerEntryRecord).from_select(_LEDGER_COLUMNS, entries))


def _entries(run: DisbursementRunRecord, at: datetime, kind: Any, amount: Any, source: Any) -> Select[Any]:
    """Ledger rows from the run's lines (in `_LEDGER_COLUMNS` order): kind, amount and source as given."""
    line = DisbursementLineRecord
    return select(
        line.tenant_id,
        line.town,
        line.fund,
        literal(run.period, Date()),
        line.service_month,
        line.child_id,
        line.benefit_code,
        kind,
        amount,
        line.run_id,
        source,
        literal(at, DateTime(timezone=True)),
    )


_LEDGER_COLUMNS = [
    "tenant_id",
    "town",
    "fund",
    "period",
    "service_month",
    "child_id",
    "benefit_code",
    "kind",
    "amount_fen",
    "run_id",
    "source",
    "recorded_at",
]
