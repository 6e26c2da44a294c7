"""Reading the district's runs and a run's lines (with each line's explanation and payment status), a page at
a time, for the portal and the finance auditor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from platform_runtime import paging
from platform_runtime.tenancy import require_role
from services.benefits.adapters.orm import DisbursementLineRecord, DisbursementRunRecord, PaymentInstructionRecord
from services.benefits.service_layer.run_state import READER_ROLES, RunSteps, RunView, run_view


@dataclass(frozen=True)
class LineView:
    line_id: int
    seq: int
    town: str
    child_id: str
    benefit_code: str
    service_month: date
    kind: str
    amount_fen: int
    policy_version: int
    explanation: str
    payment_status: str  # '' before payment, else the latest instruction's status
    reference: str


class RunReading(RunSteps):
    def runs(self, *, page_size: int = 0, page_token: str = "") -> tuple[list[RunView], str]:
        """The district's runs, the latest month first, a page at a time (the runs and the next page's token)."""
        caller = require_role(*READER_ROLES)
        with self._uow(caller) as uow:
            rows, next_token = paging.one_page(
                uow.session,
                select(DisbursementRunRecord).where(DisbursementRunRecord.tenant_id == caller.district),
                DisbursementRunRecord.period,
                DisbursementRunRecord.id,
                newest_first=True,
                size=page_size,
                token=page_token,
            )
            return [run_view(row) for row in rows], next_token

    def lines(
        self, run_id: str, *, child_id: str = "", status: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[LineView], str]:
        """The run's lines with their explanation and payment status (`status` 'failed' lists the failures), in
        line order, a page at a time (the lines and the next page's token)."""
        size = paging.page_size(page_size)
        caller = require_role(*READER_ROLES)
        with self._uow(caller) as uow:
            self._get(uow, run_id)
            latest = (
                select(
                    PaymentInstructionRecord.line_id,
                    func.max(PaymentInstructionRecord.attempt).label("attempt"),
                )
                .where(PaymentInstructionRecord.run_id == run_id)
                .group_by(PaymentInstructionRecord.line_id)
                .subquery()
            )
            query = (
                select(DisbursementLineRecord, PaymentInstructionRecord.status, PaymentInstructionRecord.reference)
                .outerjoin(latest, latest.c.line_id == DisbursementLineRecord.id)
                .outerjoin(
                    PaymentInstructionRecord,
                    (PaymentInstructionRecord.line_id == latest.c.line_id)
                    & (PaymentInstructionRecord.attempt == latest.c.attempt),
                )
                .where(DisbursementLineRecord.run_id == run_id)
            )
            if child_id:
                query = query.where(DisbursementLineRecord.child_id == child_id)
            if status:
                query = query.where(PaymentInstructionRecord.status == status)
            fetched = uow.session.execute(
                paging.after(
                    query,
                    DisbursementLineRecord.seq,
                    DisbursementLineRecord.id,
                    newest_first=False,
                    size=size,
                    token=page_token,
                )
            ).all()
            rows, next_token = paging.split(fetched, size, lambda row: (row[0].seq, row[0].id))
            return [
                LineView(
                    line_id=line.id,
                    seq=line.seq,
                    town=line.town,
                    child_id=line.child_id,
                    benefit_code=line.benefit_code,
                    service_month=line.service_month,
                    kind=line.kind,
                    amount_fen=line.amount_fen,
                    policy_version=line.policy_version,
                    explanation=line.explanation,
                    payment_status=payment_status or "",
                    reference=reference or "",
                )
                for line, payment_status, reference in rows
            ], next_token
