"""The monthly disbursement run of one district: draft → computed → checked → approved → paid → reconciled →
closed, and the append-only ledger it writes.

Never paying twice rests on the database, not on care: a line is unique per (district, month, child,
benefit, correction), an instruction per (line, attempt) and per reference, a ledger entry per (kind,
source). Long steps (computing, issuing payments) go in chunks of beneficiaries or lines, each chunk one
transaction that also moves the run's cursor, so a crash loses at most the chunk in flight and calling the
step again carries on from the cursor. Maker/checker: whoever computed may neither check nor approve.

The steps are written by job, and `Disbursements` puts them together (one object for the gRPC API):
- `run_state.py`: the statuses, who may act, `RunView`, and what every step shares;
- `run_lines.py`: computing the run's lines (`compute`);
- `run_payments.py`: paying it, the bank's payment file, re-issuing failed payments;
- `bank_returns.py`: reconciling the bank's return file;
- `ledger.py`: the ledger's entries and its balances;
- `run_reading.py`: the runs and their lines as the portal lists them;
- here: opening a run and the maker/checker steps (check, approve) and closing it.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select, update

from platform_runtime.db import new_id
from platform_runtime.errors import Conflict, InvalidInput, PermissionDenied
from platform_runtime.tenancy import require_role
from services.benefits.adapters.orm import (
    BeneficiaryRecord,
    DisbursementLineRecord,
    DisbursementRunRecord,
    LedgerEntryRecord,
)
from services.benefits.service_layer.bank_returns import BankReturns
from services.benefits.service_layer.ledger import LedgerBalances
from services.benefits.service_layer.run_lines import ComputingLines
from services.benefits.service_layer.run_payments import Payments
from services.benefits.service_layer.run_reading import RunReading
from services.benefits.service_layer.run_state import (
    APPROVED,
    CHECKED,
    CLOSED,
    COMPUTED,
    DRAFT,
    RECONCILED,
    RUN_ROLES,
    RunView,
    makers,
    run_view,
)


class Disbursements(ComputingLines, Payments, BankReturns, RunReading, LedgerBalances):
    """A district's monthly runs: open → compute → check → approve → pay → reconcile → close, and reading them."""

    def open_run(self, period: date) -> RunView:
        """The district's run for the month, opened as a draft the first time (again: the same run)."""
        caller = require_role(*RUN_ROLES)
        if period.day != 1 or period.year < 2000:
            raise InvalidInput.single("period", "the first day of a month")
        with self._uow(caller) as uow:
            existing = uow.session.scalar(
                select(DisbursementRunRecord).where(
                    DisbursementRunRecord.tenant_id == caller.district, DisbursementRunRecord.period == period
                )
            )
            if existing is not None:
                return run_view(existing)
            now = self._now()
            run = DisbursementRunRecord(
                id=new_id(),
                tenant_id=caller.district,
                period=period,
                status=DRAFT,
                step_cursor="",
                done=0,
                total=0,
                line_count=0,
                total_fen=0,
                batches=0,
                created_by=caller.user_id,
                computed_by="",
                checked_by="",
                approved_by="",
                paid_by="",
                created_at=now,
                updated_at=now,
            )
            uow.session.add(run)
            self._changed(uow, run, caller)
            uow.commit()
            return run_view(run)

    def check(self, run_id: str) -> RunView:
        """The checker recounts the control totals from the lines and the ledger; never the maker."""
        caller = require_role(*RUN_ROLES)
        with self._uow(caller) as uow:
            run = self._locked(uow, run_id)
            if run.status != COMPUTED:
                return self._already(run, CHECKED)
            if caller.user_id in makers(run):
                raise PermissionDenied("maker/checker: whoever computed the run may not check it")
            count, total = uow.session.execute(
                select(func.count(), func.coalesce(func.sum(DisbursementLineRecord.amount_fen), 0)).where(
                    DisbursementLineRecord.run_id == run.id
                )
            ).one()
            ledger = uow.session.scalar(
                select(func.coalesce(func.sum(LedgerEntryRecord.amount_fen), 0)).where(
                    LedgerEntryRecord.run_id == run.id, LedgerEntryRecord.kind.in_(("entitlement", "adjustment"))
                )
            )
            beneficiary = select(BeneficiaryRecord.account_ref).where(
                BeneficiaryRecord.tenant_id == DisbursementLineRecord.town,
                BeneficiaryRecord.child_id == DisbursementLineRecord.child_id,
            )
            missing = (
                DisbursementLineRecord.run_id == run.id,
                DisbursementLineRecord.amount_fen > 0,
                DisbursementLineRecord.payee_account == "",
            )
            # accounts the towns recorded after the computing
            uow.session.execute(
                update(DisbursementLineRecord)
                .where(*missing)
                .values(payee_account=func.coalesce(beneficiary.scalar_subquery(), ""))
            )
            no_account = uow.session.scalar(select(func.count()).select_from(DisbursementLineRecord).where(*missing))
            if no_account:
                raise Conflict(f"{no_account} payable lines have no payee account: the towns record them first")
            if (count, total, ledger) != (run.line_count, run.total_fen, run.total_fen):
                raise Conflict(
                    f"control totals differ: run {run.line_count} lines / {run.total_fen} fen, "
                    f"lines {count} / {total} fen, ledger {ledger} fen"
                )
            run.checked_by = caller.user_id
            self._move(uow, run, CHECKED, caller)
            self._crash("check")
            uow.commit()
            return run_view(run)

    def approve(self, run_id: str) -> RunView:
        caller = require_role(*RUN_ROLES)
        with self._uow(caller) as uow:
            run = self._locked(uow, run_id)
            if run.status != CHECKED:
                return self._already(run, APPROVED)
            if caller.user_id in makers(run) or caller.user_id == run.checked_by:
                raise PermissionDenied("maker/checker: the approver is neither the maker nor the checker")
            run.approved_by = caller.user_id
            self._move(uow, run, APPROVED, caller)
            self._crash("approve")
            uow.commit()
            return run_view(run)

    def close(self, run_id: str) -> RunView:
        caller = require_role(*RUN_ROLES)
        with self._uow(caller) as uow:
            run = self._locked(uow, run_id)
            if run.status != RECONCILED:
                return self._already(run, CLOSED)
            self._move(uow, run, CLOSED, caller)
            self._crash("close")
            uow.commit()
            return run_view(run)
