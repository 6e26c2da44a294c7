"""Paying an approved run: one payment instruction per payable line (batch 1), chunk by chunk, each with its
ledger entry; the bank's file of a batch; and re-issuing failed payments to corrected accounts as the run's
next batch. An instruction is unique per (line, attempt) and per reference, so nothing is paid twice."""

from __future__ import annotations

import csv
import io
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from platform_runtime.auth import Principal
from platform_runtime.errors import Conflict, FieldViolation, InvalidInput, NotFound
from platform_runtime.tenancy import require_role
from services.benefits.adapters.orm import DisbursementLineRecord, DisbursementRunRecord, PaymentInstructionRecord
from services.benefits.service_layer import ledger
from services.benefits.service_layer.run_state import (
    APPROVED,
    CHECKED,
    COMPUTED,
    DRAFT,
    FAILED,
    ISSUED,
    PAID,
    READER_ROLES,
    RECONCILED,
    RUN_ROLES,
    RunSteps,
    RunView,
)


@dataclass(frozen=True)
class PaymentFile:
    name: str
    content: bytes
    count: int
    total_fen: int


class Payments(RunSteps):
    def pay(self, run_id: str, max_chunks: int = 0) -> RunView:
        """Issue one instruction per payable line (batch 1), chunk by chunk, each with its ledger entry."""
        caller = require_role(*RUN_ROLES)
        chunks = 0
        while self._pay_chunk(caller, run_id):
            chunks += 1
            if chunks == max_chunks:
                break
        return self.run(run_id)

    def payment_file(self, run_id: str, batch: int = 1) -> PaymentFile:
        """The bank's file of one batch: header and trailer carry the control totals (count, fen)."""
        caller = require_role(*READER_ROLES)
        with self._uow(caller) as uow:
            run = self._get(uow, run_id)
            if run.status in (DRAFT, COMPUTED, CHECKED, APPROVED) or not 1 <= batch <= run.batches:
                raise NotFound(f"no payment batch {batch} for this run")
            rows = uow.session.execute(
                select(
                    PaymentInstructionRecord.reference,
                    PaymentInstructionRecord.account_ref,
                    PaymentInstructionRecord.amount_fen,
                )
                .where(PaymentInstructionRecord.run_id == run.id, PaymentInstructionRecord.batch == batch)
                .order_by(PaymentInstructionRecord.reference)
            ).all()
            total = sum(row.amount_fen for row in rows)
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["H", run.tenant_id, f"{run.period:%Y%m}", run.id, batch, len(rows), total])
            writer.writerows(["D", row.reference, row.account_ref, row.amount_fen] for row in rows)
            writer.writerow(["T", len(rows), total])
            name = f"pay-{run.tenant_id}-{run.period:%Y%m}-{batch}.csv"
            return PaymentFile(name, out.getvalue().encode(), len(rows), total)

    def reissue(self, run_id: str, corrected_accounts: dict[str, str]) -> int:
        """Re-issue failed instructions (by reference) to corrected accounts, as the run's next batch.

        The corrected account travels on the new instruction; the town keeps the child's account on file."""
        caller = require_role(*RUN_ROLES)
        if not corrected_accounts:
            raise InvalidInput.single("references", "name at least one failed payment")
        bad = [ref for ref, account in corrected_accounts.items() if not _valid_account(account)]
        if bad:
            raise InvalidInput([FieldViolation(ref, "a corrected account reference is required") for ref in bad])
        with self._uow(caller) as uow:
            run = self._locked(uow, run_id)
            if run.status not in (PAID, RECONCILED):
                raise Conflict(f"only a paid run re-issues failed payments (it is {run.status})")
            failed = {
                row.reference: row
                for row in uow.session.scalars(
                    select(PaymentInstructionRecord).where(
                        PaymentInstructionRecord.run_id == run.id,
                        PaymentInstructionRecord.reference.in_(list(corrected_accounts)),
                    )
                )
            }
            latest = self._latest_attempts(uow.session, [row.line_id for row in failed.values()])
            problems = [
                FieldViolation(ref, "not a failed payment of this run, or already re-issued")
                for ref in corrected_accounts
                if ref not in failed
                or failed[ref].status != FAILED
                or latest[failed[ref].line_id] != failed[ref].attempt
            ]
            if problems:
                raise InvalidInput(problems)
            run.batches += 1
            new_rows = []
            for reference, account in sorted(corrected_accounts.items()):
                old = failed[reference]
                line = uow.session.get_one(DisbursementLineRecord, old.line_id)
                new_rows.append(
                    _instruction(run, line.id, line.reference, old.attempt + 1, run.batches, account, old.amount_fen)
                )
            uow.session.execute(insert(PaymentInstructionRecord), new_rows)
            ids = uow.session.scalars(
                select(PaymentInstructionRecord.id).where(
                    PaymentInstructionRecord.run_id == run.id, PaymentInstructionRecord.batch == run.batches
                )
            ).all()
            ledger.entries_for_instructions(uow.session, run, list(ids), "payment", 1, self._now())
            if run.status == RECONCILED:
                self._move(uow, run, PAID, caller)  # waits for the bank's answer on the new batch
            else:
                run.updated_at = self._now()
            self._crash("reissue")
            uow.commit()
            return run.batches

    def _pay_chunk(self, caller: Principal, run_id: str) -> bool:
        with self._uow(caller) as uow:
            session = uow.session
            run = self._locked(uow, run_id)
            if run.status == APPROVED and run.batches == 0:
                run.batches, run.step_cursor, run.done = 1, "0", 0
                run.total = (
                    session.scalar(
                        select(func.count()).where(
                            DisbursementLineRecord.run_id == run.id, DisbursementLineRecord.amount_fen > 0
                        )
                    )
                    or 0
                )
                run.paid_by = caller.user_id
            elif run.status != APPROVED:
                if run.status in (DRAFT, COMPUTED, CHECKED):
                    raise Conflict(f"a run is paid once approved (it is {run.status})")
                return False
            after = int(run.step_cursor or "0")
            if after >= run.line_count:
                self._move(uow, run, PAID, caller)
                self._crash("pay:done")
                uow.commit()
                return False
            upto = after + self._chunk
            line = DisbursementLineRecord
            issued = typing.cast(
                CursorResult[Any],
                session.execute(
                    insert(PaymentInstructionRecord).from_select(
                        [
                            "tenant_id",
                            "run_id",
                            "line_id",
                            "attempt",
                            "batch",
                            "reference",
                            "account_ref",
                            "amount_fen",
                            "status",
                            "reason",
                        ],
                        select(
                            line.tenant_id,
                            line.run_id,
                            line.id,
                            literal(1),
                            literal(1),
                            line.reference + "01",
                            line.payee_account,
                            line.amount_fen,
                            literal(ISSUED),
                            literal(""),
                        ).where(line.run_id == run.id, line.seq > after, line.seq <= upto, line.amount_fen > 0),
                    )
                ),
            ).rowcount
            ledger.entries_for_first_payments(session, run, after, upto, self._now())
            run.done += issued
            run.step_cursor = str(upto)
            run.updated_at = self._now()
            self._crash(f"pay:{run.done}")
            uow.commit()
            return True

    def _latest_attempts(self, session: Session, line_ids: Iterable[int]) -> dict[int, int]:
        rows = session.execute(
            select(PaymentInstructionRecord.line_id, func.max(PaymentInstructionRecord.attempt))
            .where(PaymentInstructionRecord.line_id.in_(list(line_ids)))
            .group_by(PaymentInstructionRecord.line_id)
        ).all()
        return {line_id: attempt for line_id, attempt in rows}


def _instruction(
    run: DisbursementRunRecord, line_id: int, reference: str, attempt: int, batch: int, account: str, amount: int
) -> dict[str, Any]:
    return {
        "tenant_id": run.tenant_id,
        "run_id": run.id,
        "line_id": line_id,
        "attempt": attempt,
        "batch": batch,
        "reference": f"{reference}{attempt:02d}",
        "account_ref": account,
        "amount_fen": amount,
        "status": ISSUED,
        "reason": "",
    }


def _valid_account(account: str) -> bool:
    return 4 <= len(account) <= 64 and account.isprintable() and "," not in account
