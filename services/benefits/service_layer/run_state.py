"""What every step of a district's monthly disbursement run shares: its statuses and the order they come in,
who may act, the run as callers see it (`RunView`), and `RunSteps`, the base of the steps: the district's unit
of work, the run read or locked in it, a step repeated or out of order, and the run's move to its next status
(with its `DisbursementRunChanged` event)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, utcnow
from platform_runtime.errors import Conflict, NotFound, PermissionDenied
from platform_runtime.tenancy import require_role
from services.benefits.adapters import messages
from services.benefits.adapters.orm import DisbursementRunRecord
from services.benefits.domain.events import DisbursementRunChanged

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
ISSUED, SETTLED, FAILED = "issued", "paid", "failed"  # a payment instruction's status

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


class RunSteps:
    """The base of the run's steps (`Disbursements` puts them together)."""

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

    def run(self, run_id: str) -> RunView:
        caller = require_role(*READER_ROLES)
        with self._uow(caller) as uow:
            return run_view(self._get(uow, run_id))

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
            return run_view(run)
        raise Conflict(f"the run is {run.status}: the step to {target} is not next")

    def _move(self, uow: UnitOfWork, run: DisbursementRunRecord, status: str, caller: Principal) -> None:
        run.status = status
        run.updated_at = self._now()
        self._changed(uow, run, caller)

    def _changed(self, uow: UnitOfWork, run: DisbursementRunRecord, caller: Principal) -> None:
        event = DisbursementRunChanged(
            run.id, run.tenant_id, run.period, run.status, run.line_count, run.total_fen, caller.user_id
        )
        uow.publish(messages.pending(uow.tenant, event))


def makers(run: DisbursementRunRecord) -> set[str]:
    return set(filter(None, run.computed_by.split(",")))


def run_view(run: DisbursementRunRecord) -> RunView:
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
