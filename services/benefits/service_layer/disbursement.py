"""The monthly disbursement run of one district: draft → computed → checked → approved → paid → reconciled →
closed, and the append-only ledger it writes.

Never paying twice rests on the database, not on care: a line is unique per (district, month, child,
benefit, correction), an instruction per (line, attempt) and per reference, a ledger entry per (kind,
source). Long steps (computing, issuing payments) go in chunks of beneficiaries or lines, each chunk one
transaction that also moves the run's cursor, so a crash loses at most the chunk in flight and calling the
step again carries on from the cursor. Maker/checker: whoever computed may neither check nor approve.
"""

from __future__ import annotations

import csv
import io
import typing
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from minorprot.benefits.v1 import events_pb2
from sqlalchemy import Date, DateTime, String, case, cast, func, insert, literal, select, text, tuple_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from platform_runtime import paging
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.errors import Conflict, FieldViolation, InvalidInput, NotFound, PermissionDenied
from platform_runtime.events import PendingEvent
from platform_runtime.tenancy import require_role
from platform_runtime.topics import BENEFITS_DISBURSEMENT
from services.benefits.adapters import messages
from services.benefits.adapters.orm import (
    BeneficiaryRecord,
    DisbursementLineRecord,
    DisbursementRunRecord,
    EntitlementRecord,
    LedgerEntryRecord,
    PaymentInstructionRecord,
    PolicyVersionRecord,
)
from services.benefits.adapters.policies import load_policies
from services.benefits.domain.policy import (
    Grant,
    Line,
    PolicyVersion,
    add_months,
    due_lines,
    month_lines,
    policy_for,
)

RUN_ROLES = (Role.DISTRICT_OFFICER,)
READER_ROLES = (Role.DISTRICT_OFFICER, Role.DISTRICT_ADMIN, Role.FINANCE_AUDITOR)

DRAFT, COMPUTED, CHECKED, APPROVED, PAID, RECONCILED, CLOSED = (
    "draft",
    "computed",
    "checked",
    "approved",
    "paid",
    "reconciled",
    "closed",
)
STEPS = (DRAFT, COMPUTED, CHECKED, APPROVED, PAID, RECONCILED, CLOSED)
ISSUED, SETTLED, FAILED = "issued", "paid", "failed"
LEDGER_KINDS = ("entitlement", "adjustment", "payment", "failure", "reversal")

CrashHook = Callable[[str], None]


def _no_crash(_point: str) -> None:
    return None


@dataclass(frozen=True)
class RunView:
    run_id: str
    district: str
    period: date
    status: str
    done: int
    total: int
    line_count: int
    total_fen: int
    batches: int
    created_by: str
    computed_by: str
    checked_by: str
    approved_by: str
    paid_by: str
    updated_at: datetime


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


@dataclass(frozen=True)
class PaymentFile:
    name: str
    content: bytes
    count: int
    total_fen: int


@dataclass(frozen=True)
class Reconciliation:
    paid: int
    failed: int
    unchanged: int
    outstanding: int  # instructions still waiting for the bank's answer


@dataclass(frozen=True)
class Balance:
    fund: str
    town: str
    period: date
    kind: str
    amount_fen: int
    entries: int


class Disbursements:
    def __init__(
        self,
        database: Database,
        *,
        now: Callable[[], datetime] = utcnow,
        chunk_size: int = 500,
        crash_hook: CrashHook = _no_crash,
    ) -> None:
        self._database = database
        self._now = now
        self._chunk = chunk_size
        self._crash = crash_hook  # tests raise here, inside the transaction, to prove every step resumes

    # -- the run's steps -----------------------------------------------------------------------------------

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
                return _run_view(existing)
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
            return _run_view(run)

    def compute(self, run_id: str, max_chunks: int = 0) -> RunView:
        """Compute every beneficiary's lines, chunk by chunk; calling it again resumes where it stopped.
        With `max_chunks` it returns after that many (the portal shows progress and calls again)."""
        caller = require_role(*RUN_ROLES)
        chunks = 0
        while self._compute_chunk(caller, run_id):
            chunks += 1
            if chunks == max_chunks:
                break
        return self.run(run_id)

    def check(self, run_id: str) -> RunView:
        """The checker recounts the control totals from the lines and the ledger; never the maker."""
        caller = require_role(*RUN_ROLES)
        with self._uow(caller) as uow:
            run = self._locked(uow, run_id)
            if run.status != COMPUTED:
                return self._already(run, CHECKED)
            if caller.user_id in _makers(run):
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
            return _run_view(run)

    def approve(self, run_id: str) -> RunView:
        caller = require_role(*RUN_ROLES)
        with self._uow(caller) as uow:
            run = self._locked(uow, run_id)
            if run.status != CHECKED:
                return self._already(run, APPROVED)
            if caller.user_id in _makers(run) or caller.user_id == run.checked_by:
                raise PermissionDenied("maker/checker: the approver is neither the maker nor the checker")
            run.approved_by = caller.user_id
            self._move(uow, run, APPROVED, caller)
            self._crash("approve")
            uow.commit()
            return _run_view(run)

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
                self._ledger_for_instructions(uow.session, run, [instruction.id], "failure", -1)
                uow.publish(
                    PendingEvent(
                        BENEFITS_DISBURSEMENT,
                        uow.tenant,
                        "run",
                        run.id,
                        events_pb2.PaymentFailed(
                            run_id=run.id,
                            reference=reference,
                            child_id=line.child_id,
                            benefit_code=line.benefit_code,
                            amount_fen=instruction.amount_fen,
                            reason=reason,
                        ),
                    )
                )
            uow.session.flush()
            outstanding = self._outstanding(uow.session, run.id)
            if outstanding == 0 and run.status == PAID:
                self._move(uow, run, RECONCILED, caller)
            self._crash("reconcile")
            uow.commit()
            return Reconciliation(paid, failed, unchanged, outstanding)

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
            self._ledger_for_instructions(uow.session, run, list(ids), "payment", 1)
            if run.status == RECONCILED:
                self._move(uow, run, PAID, caller)  # waits for the bank's answer on the new batch
            else:
                run.updated_at = self._now()
            self._crash("reissue")
            uow.commit()
            return run.batches

    def close(self, run_id: str) -> RunView:
        caller = require_role(*RUN_ROLES)
        with self._uow(caller) as uow:
            run = self._locked(uow, run_id)
            if run.status != RECONCILED:
                return self._already(run, CLOSED)
            self._move(uow, run, CLOSED, caller)
            self._crash("close")
            uow.commit()
            return _run_view(run)

    # -- reading -------------------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunView:
        caller = require_role(*READER_ROLES)
        with self._uow(caller) as uow:
            return _run_view(self._get(uow, run_id))

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
            return [_run_view(row) for row in rows], next_token

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

    # -- the long steps, one chunk per transaction ---------------------------------------------------------

    def _compute_chunk(self, caller: Principal, run_id: str) -> bool:
        with self._uow(caller) as uow:
            session = uow.session
            run = self._locked(uow, run_id)
            if run.status != DRAFT:
                return False
            if caller.user_id not in _makers(run):
                run.computed_by = ",".join(filter(None, [run.computed_by, caller.user_id]))
            policies = load_policies(session, run.tenant_id)
            current = policy_for(run.period, policies)
            if current is None:
                raise Conflict(f"no policy of the district is in effect on {run.period}")
            if not run.step_cursor:
                run.total = (
                    session.scalar(
                        select(func.count()).select_from(BeneficiaryRecord).where(*_in_district(run.tenant_id))
                    )
                    or 0
                )
            town, _, child = run.step_cursor.partition(":")
            chunk = session.execute(
                select(
                    BeneficiaryRecord.tenant_id,
                    BeneficiaryRecord.child_id,
                    BeneficiaryRecord.birth_date,
                    BeneficiaryRecord.facts_changed_at,
                    BeneficiaryRecord.account_ref,
                )
                .where(
                    *_in_district(run.tenant_id),
                    tuple_(BeneficiaryRecord.tenant_id, BeneficiaryRecord.child_id)
                    > tuple_(literal(town), literal(child)),
                )
                .order_by(BeneficiaryRecord.tenant_id, BeneficiaryRecord.child_id)
                .limit(self._chunk)
            ).all()
            if not chunk:
                self._freeze_policies(session, run, policies)
                self._move(uow, run, COMPUTED, caller)
                self._crash("compute:done")
                uow.commit()
                return False
            rows = self._lines_for(session, run, policies, current, chunk, (town, child))
            if rows:
                bulk_insert(session, DisbursementLineRecord.__table__, rows)
                self._ledger_for_lines(session, run, run.line_count)
                run.line_count += len(rows)
                run.total_fen += sum(row["amount_fen"] for row in rows)
            run.done += len(chunk)
            run.step_cursor = f"{chunk[-1].tenant_id}:{chunk[-1].child_id}"
            run.updated_at = self._now()
            self._crash(f"compute:{run.done}")
            uow.commit()
            return True

    def _lines_for(
        self,
        session: Session,
        run: DisbursementRunRecord,
        policies: Sequence[PolicyVersion],
        current: PolicyVersion,
        chunk: Sequence[Any],
        after: tuple[str, str],
    ) -> list[dict[str, Any]]:
        """New lines for a chunk of children: what is due minus what earlier lines already hold."""
        grants: dict[str, list[Grant]] = defaultdict(list)
        for entitlement in session.execute(
            select(
                EntitlementRecord.child_id,
                EntitlementRecord.benefit_code,
                EntitlementRecord.starts_on,
                EntitlementRecord.ends_on,
            ).where(  # the chunk's range of (town, child): one index range scan, not a list of ids
                func.substr(EntitlementRecord.tenant_id, 1, 6) == run.tenant_id,
                tuple_(EntitlementRecord.tenant_id, EntitlementRecord.child_id)
                > tuple_(literal(after[0]), literal(after[1])),
                tuple_(EntitlementRecord.tenant_id, EntitlementRecord.child_id)
                <= tuple_(literal(chunk[-1].tenant_id), literal(chunk[-1].child_id)),
            )
        ):
            grants[entitlement.child_id].append(
                Grant(entitlement.benefit_code, entitlement.starts_on, entitlement.ends_on)
            )
        # Only children whose facts (or the policy) changed since the previous run look back for arrears.
        since = self._previous_run_started(session, run)
        if since is not None and any(policy_created > since for policy_created in self._policy_times(session, run)):
            since = None
        looking_back = {child.child_id for child in chunk if since is None or child.facts_changed_at >= since}
        # Earlier months are read only for children who look back; the others only for the run's month.
        window_start = add_months(run.period, -current.arrears_months) if looking_back else run.period
        held: dict[tuple[date, str, str], tuple[int, int]] = {
            (row.service_month, row.child_id, row.benefit_code): (int(row.amount), int(row.correction))
            for row in session.execute(
                select(
                    DisbursementLineRecord.service_month,
                    DisbursementLineRecord.child_id,
                    DisbursementLineRecord.benefit_code,
                    func.sum(DisbursementLineRecord.amount_fen).label("amount"),
                    func.max(DisbursementLineRecord.correction).label("correction"),
                )
                .where(
                    DisbursementLineRecord.tenant_id == run.tenant_id,
                    # the chunk's range of (town, child) on ix_disbursement_lines_child, as for entitlements
                    tuple_(DisbursementLineRecord.town, DisbursementLineRecord.child_id)
                    > tuple_(literal(after[0]), literal(after[1])),
                    tuple_(DisbursementLineRecord.town, DisbursementLineRecord.child_id)
                    <= tuple_(literal(chunk[-1].tenant_id), literal(chunk[-1].child_id)),
                    DisbursementLineRecord.service_month >= window_start,
                    DisbursementLineRecord.service_month <= run.period,
                )
                .group_by(
                    DisbursementLineRecord.service_month,
                    DisbursementLineRecord.child_id,
                    DisbursementLineRecord.benefit_code,
                )
            )
        }
        by_child: dict[str, list[tuple[date, str, str]]] = defaultdict(list)
        for key in held:
            by_child[key[1]].append(key)
        by_month: dict[date, PolicyVersion | None] = {}

        def policy_of(month: date) -> PolicyVersion | None:
            if month not in by_month:
                by_month[month] = policy_for(month, policies)
            return by_month[month]

        rows: list[dict[str, Any]] = []
        for child in chunk:
            look_back = child.child_id in looking_back
            held_grants = grants.get(child.child_id, [])
            if look_back:
                due = due_lines(policies, child.birth_date, held_grants, run.period)
            else:
                due = month_lines(current, child.birth_date, held_grants, run.period) if held_grants else []
            due_keys = set()
            for line in due:
                key = (line.service_month, child.child_id, line.benefit_code)
                due_keys.add(key)
                amount, correction = held.get(key, (0, -1))
                if amount != line.amount_fen:
                    rows.append(self._line_row(run, policy_of, child, line, amount, correction))
            for key in by_child.get(child.child_id, []):
                month = key[0]
                if key in due_keys or (not look_back and month != run.period):
                    continue
                amount, correction = held[key]
                if amount:  # no longer due (ended or corrected back): the difference is recovered
                    gone = Line(key[2], month, 0, 0, 0, f"{key[2]}: no longer due")
                    rows.append(self._line_row(run, policy_of, child, gone, amount, correction))
        for offset, row in enumerate(rows):
            row["seq"] = seq = run.line_count + offset + 1
            # unique across every run: district, month, the line's number in the run (the attempt follows)
            row["reference"] = f"{run.tenant_id}{run.period:%Y%m}{seq:08d}"
        return rows

    def _line_row(
        self,
        run: DisbursementRunRecord,
        policy_of: Callable[[date], PolicyVersion | None],
        child: Any,
        line: Line,
        held: int,
        correction: int,
    ) -> dict[str, Any]:
        policy = policy_of(line.service_month)
        assert policy is not None  # a line is only computed under a policy in effect
        rule = policy.rule_by_code.get(line.benefit_code)
        first = correction < 0
        kind = "adjustment" if not first else ("due" if line.service_month == run.period else "arrears")
        explanation = line.explanation if first else f"{line.explanation}; earlier lines held {held} fen"
        return {
            "tenant_id": run.tenant_id,
            "run_id": run.id,
            "town": child.tenant_id,
            "child_id": child.child_id,
            "benefit_code": line.benefit_code,
            "fund": rule.fund if rule else "",
            "service_month": line.service_month,
            "correction": correction + 1,
            "kind": kind,
            "amount_fen": line.amount_fen - held,
            "policy_version": policy.version,
            "explanation": explanation,
            "payee_account": child.account_ref,
        }

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
            self._ledger_for_first_payments(session, run, after, upto)
            run.done += issued
            run.step_cursor = str(upto)
            run.updated_at = self._now()
            self._crash(f"pay:{run.done}")
            uow.commit()
            return True

    # -- ledger, set-based ---------------------------------------------------------------------------------

    def _ledger_for_lines(self, session: Session, run: DisbursementRunRecord, after_seq: int) -> None:
        line = DisbursementLineRecord
        kind = case((line.kind == "adjustment", "adjustment"), else_="entitlement")  # due and arrears are owed
        session.execute(
            insert(LedgerEntryRecord).from_select(
                _LEDGER_COLUMNS,
                select(
                    line.tenant_id,
                    line.town,
                    line.fund,
                    literal(run.period, Date()),
                    line.service_month,
                    line.child_id,
                    line.benefit_code,
                    kind,
                    line.amount_fen,
                    line.run_id,
                    line.run_id + ":" + cast(line.seq, String),
                    literal(self._now(), DateTime(timezone=True)),
                ).where(line.run_id == run.id, line.seq > after_seq),
            )
        )

    def _ledger_for_first_payments(self, session: Session, run: DisbursementRunRecord, after: int, last: int) -> None:
        """The payment entries of the first attempts just issued, straight from their lines (same amounts and
        references as the instructions), so no lookup of the instructions is needed."""
        line = DisbursementLineRecord
        session.execute(
            insert(LedgerEntryRecord).from_select(
                _LEDGER_COLUMNS,
                select(
                    line.tenant_id,
                    line.town,
                    line.fund,
                    literal(run.period, Date()),
                    line.service_month,
                    line.child_id,
                    line.benefit_code,
                    literal("payment"),
                    line.amount_fen,
                    line.run_id,
                    line.reference + "01",
                    literal(self._now(), DateTime(timezone=True)),
                ).where(line.run_id == run.id, line.seq > after, line.seq <= last, line.amount_fen > 0),
            )
        )

    def _ledger_for_instructions(
        self, session: Session, run: DisbursementRunRecord, ids: Any, kind: str, sign: int
    ) -> None:
        instruction, line = PaymentInstructionRecord, DisbursementLineRecord
        session.execute(
            insert(LedgerEntryRecord).from_select(
                _LEDGER_COLUMNS,
                select(
                    line.tenant_id,
                    line.town,
                    line.fund,
                    literal(run.period, Date()),
                    line.service_month,
                    line.child_id,
                    line.benefit_code,
                    literal(kind),
                    instruction.amount_fen * sign,
                    line.run_id,
                    instruction.reference,
                    literal(self._now(), DateTime(timezone=True)),
                )
                .join(line, line.id == instruction.line_id)
                .where(instruction.id.in_(ids)),
            )
        )

    # -- helpers -------------------------------------------------------------------------------------------

    def _uow(self, caller: Principal) -> UnitOfWork:
        if not caller.district:
            raise PermissionDenied("a district caller is required")
        return self._database.unit_of_work(caller.district, district=caller.district)

    def _get(self, uow: UnitOfWork, run_id: str) -> DisbursementRunRecord:
        run = uow.session.get(DisbursementRunRecord, run_id)
        if run is None or run.tenant_id != uow.tenant:
            raise NotFound("no such run")
        return run

    def _locked(self, uow: UnitOfWork, run_id: str) -> DisbursementRunRecord:
        """The run, locked for the transaction: two callers of one step take turns (PostgreSQL)."""
        run = uow.session.get(DisbursementRunRecord, run_id, with_for_update=True)
        if run is None or run.tenant_id != uow.tenant:
            raise NotFound("no such run")
        return run

    def _already(self, run: DisbursementRunRecord, target: str) -> RunView:
        """Repeating a step that is done returns the run; a step out of order is refused."""
        if STEPS.index(run.status) >= STEPS.index(target):
            return _run_view(run)
        raise Conflict(f"the run is {run.status}: the step to {target} is not next")

    def _move(self, uow: UnitOfWork, run: DisbursementRunRecord, status: str, caller: Principal) -> None:
        run.status = status
        run.updated_at = self._now()
        self._changed(uow, run, caller)

    def _changed(self, uow: UnitOfWork, run: DisbursementRunRecord, caller: Principal) -> None:
        uow.publish(
            PendingEvent(
                BENEFITS_DISBURSEMENT,
                uow.tenant,
                "run",
                run.id,
                events_pb2.DisbursementRunChanged(
                    run_id=run.id,
                    district=run.tenant_id,
                    period=messages.from_date(run.period),
                    status=run.status,
                    line_count=run.line_count,
                    total_fen=run.total_fen,
                    by=caller.user_id,
                ),
            )
        )

    def _outstanding(self, session: Session, run_id: str) -> int:
        return (
            session.scalar(
                select(func.count()).where(
                    PaymentInstructionRecord.run_id == run_id, PaymentInstructionRecord.status == ISSUED
                )
            )
            or 0
        )

    def _latest_attempts(self, session: Session, line_ids: Iterable[int]) -> dict[int, int]:
        rows = session.execute(
            select(PaymentInstructionRecord.line_id, func.max(PaymentInstructionRecord.attempt))
            .where(PaymentInstructionRecord.line_id.in_(list(line_ids)))
            .group_by(PaymentInstructionRecord.line_id)
        ).all()
        return {line_id: attempt for line_id, attempt in rows}

    def _previous_run_started(self, session: Session, run: DisbursementRunRecord) -> datetime | None:
        return session.scalar(
            select(func.max(DisbursementRunRecord.created_at)).where(
                DisbursementRunRecord.tenant_id == run.tenant_id,
                DisbursementRunRecord.period < run.period,
                DisbursementRunRecord.status != DRAFT,
            )
        )

    def _policy_times(self, session: Session, run: DisbursementRunRecord) -> list[datetime]:
        return list(
            session.scalars(
                select(PolicyVersionRecord.created_at).where(PolicyVersionRecord.tenant_id == run.tenant_id)
            )
        )

    def _freeze_policies(self, session: Session, run: DisbursementRunRecord, policies: Sequence[PolicyVersion]) -> None:
        """Versions a run computed with are never edited in place again (a new version is made instead)."""
        session.execute(
            update(PolicyVersionRecord)
            .where(PolicyVersionRecord.tenant_id == run.tenant_id, PolicyVersionRecord.used_at.is_(None))
            .where(PolicyVersionRecord.effective_from <= run.period)
            .values(used_at=self._now())
        )


def bulk_insert(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Many rows in one statement. On PostgreSQL one INSERT ... SELECT FROM unnest(arrays), each column sent as
    one delimited string (adapting a Python list element by element costs more than the insert; COPY would
    not do: it refuses tables under row-level security); elsewhere an executemany."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), list(rows))
        return
    columns = [table.c[name].name for name in rows[0]]  # KeyError for anything not a column of the table
    values = {f"a{i}": _column_text([row[name] for row in rows]) for i, name in enumerate(columns)}
    arrays = ", ".join(
        # a trailing separator, then the first n elements: one row of '' is [''], not an empty array
        f"CAST((string_to_array(:a{i} || :separator, :separator))[1:{len(rows)}] AS {_ARRAY_TYPES[type(rows[0][name])]})"
        for i, name in enumerate(columns)
    )
    statement = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"  # noqa: S608 - names from the table, values bound
    session.execute(text(statement), values | {"separator": _SEPARATOR})


_SEPARATOR = "\x1f"  # ASCII unit separator: never in codes, ids, references or explanations
_ARRAY_TYPES = {str: "text[]", int: "bigint[]", date: "date[]"}


def _column_text(values: list[Any]) -> str:
    """One column's values joined by the separator (checked once: it may appear in no value)."""
    first = values[0]
    texts = values if isinstance(first, str) else [v.isoformat() if isinstance(v, date) else str(v) for v in values]
    joined = _SEPARATOR.join(texts)
    if joined.count(_SEPARATOR) != len(values) - 1:
        raise ValueError("a value holds the unit separator")
    return joined


def _in_district(district: str) -> tuple[Any, ...]:
    return (func.substr(BeneficiaryRecord.tenant_id, 1, 6) == district, BeneficiaryRecord.merged_into.is_(None))


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


def _makers(run: DisbursementRunRecord) -> set[str]:
    return set(filter(None, run.computed_by.split(",")))


def _valid_account(account: str) -> bool:
    return 4 <= len(account) <= 64 and account.isprintable() and "," not in account


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


def _run_view(run: DisbursementRunRecord) -> RunView:
    return RunView(
        run_id=run.id,
        district=run.tenant_id,
        period=run.period,
        status=run.status,
        done=run.done,
        total=run.total,
        line_count=run.line_count,
        total_fen=run.total_fen,
        batches=run.batches,
        created_by=run.created_by,
        computed_by=run.computed_by,
        checked_by=run.checked_by,
        approved_by=run.approved_by,
        paid_by=run.paid_by,
        updated_at=run.updated_at,
    )
