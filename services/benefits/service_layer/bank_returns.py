"""Reconciling a paid run with the bank's return file (`reference,result,reason`; result PAID or FAILED): every
row is checked before any is applied, a row seen before changes nothing, a failed payment is reversed in the
ledger and announced (`PaymentFailed`), and the run is reconciled once no instruction waits for an answer."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from platform_runtime.errors import Conflict, FieldViolation, InvalidInput
from platform_runtime.tenancy import require_role
from services.benefits.adapters import messages
from services.benefits.adapters.orm import DisbursementLineRecord, PaymentInstructionRecord
from services.benefits.domain.events import PaymentFailed
from services.benefits.service_layer import ledger
from services.benefits.service_layer.run_state import (
    FAILED,
    ISSUED,
    PAID,
    RECONCILED,
    RUN_ROLES,
    SETTLED,
    RunSteps,
)


@dataclass(frozen=True)
class Reconciliation:
    paid: int
    failed: int
    unchanged: int
    outstanding: int  # instructions still waiting for the bank's answer


class BankReturns(RunSteps):
    def reconcile(self, run_id: str, content: bytes) -> Reconciliation:
        """Import the bank's return file (`reference,result,reason`; result PAID or FAILED). All rows are
        checked first; nothing is applied when any row is wrong. A row seen before changes nothing."""
        caller = require_role(*RUN_ROLES)
        results = _parse_return(content)
        with self._uow(caller) as uow:
            run = self._locked(uow, run_id)
            if run.status not in (PAID, RECONCILED):
                raise Conflict(f"a run is reconciled after it is paid (it is {run.status})")
            found = {
                row.reference: row
                for row in uow.session.scalars(
                    select(PaymentInstructionRecord).where(
                        PaymentInstructionRecord.run_id == run.id,
                        PaymentInstructionRecord.reference.in_([ref for _, ref, _, _ in results]),
                    )
                )
            }
            problems = []
            for number, reference, result, _ in results:
                instruction = found.get(reference)
                if instruction is None:
                    problems.append(FieldViolation(f"row {number}", f"{reference} is not an instruction of this run"))
                elif instruction.status not in (ISSUED, result):
                    problems.append(
                        FieldViolation(f"row {number}", f"{reference} was already settled as {instruction.status}")
                    )
            if problems:
                raise InvalidInput(problems)
            paid = failed = unchanged = 0
            for _, reference, result, reason in results:
                instruction = found[reference]
                if instruction.status == result:
                    unchanged += 1
                    continue
                instruction.status, instruction.reason = result, reason
                if result == SETTLED:
                    paid += 1
                    continue
                failed += 1
                line = uow.session.get_one(DisbursementLineRecord, instruction.line_id)
                ledger.entries_for_instructions(uow.session, run, [instruction.id], "failure", -1, self._now())
                event = PaymentFailed(
                    run.id, reference, line.child_id, line.benefit_code, instruction.amount_fen, reason
                )
                uow.publish(messages.pending(uow.tenant, event))
            uow.session.flush()
            outstanding = self._outstanding(uow.session, run.id)
            if outstanding == 0 and run.status == PAID:
                self._move(uow, run, RECONCILED, caller)
            self._crash("reconcile")
            uow.commit()
            return Reconciliation(paid, failed, unchanged, outstanding)

    def _outstanding(self, session: Session, run_id: str) -> int:
        return (
            session.scalar(
                select(func.count()).where(
                    PaymentInstructionRecord.run_id == run_id, PaymentInstructionRecord.status == ISSUED
                )
            )
            or 0
        )


def _parse_return(content: bytes) -> list[tuple[int, str, str, str]]:
    """(row number, reference, paid|failed, reason) for every row of the bank's return file."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput.single("file", "the return file is not UTF-8 text") from exc
    rows, problems, seen = [], [], set()
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or (number == 1 and row[0].strip().lower() == "reference"):
            continue
        reference = row[0].strip()
        result = row[1].strip().upper() if len(row) > 1 else ""
        reason = row[2].strip()[:200] if len(row) > 2 else ""
        if result not in ("PAID", "FAILED"):
            problems.append(FieldViolation(f"row {number}", "the result is PAID or FAILED"))
        elif result == "FAILED" and not reason:
            problems.append(FieldViolation(f"row {number}", "a failed payment needs the bank's reason"))
        elif reference in seen:
            problems.append(FieldViolation(f"row {number}", f"{reference} appears twice"))
        seen.add(reference)
        rows.append((number, reference, SETTLED if result == "PAID" else FAILED, reason))
    if problems:
        raise InvalidInput(problems)
    if not rows:
        raise InvalidInput.single("file", "the return file has no rows")
    return rows
