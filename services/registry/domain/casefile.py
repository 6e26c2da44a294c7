"""The case file's status machine: identified → assessing → plan_active → monitoring → closed / transferred.

A case can be closed or transferred from any open status; after monitoring the plan can be adjusted again
(monitoring → plan_active, at the evaluation phase); a closed case is reopened into assessment when the child
is in difficulty again. A transferred case has left the town for good: the receiving town opens its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.registry.domain.codes import CaseStatus
from services.registry.domain.errors import Conflict, InvalidInput

_S = CaseStatus
ALLOWED_TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    _S.IDENTIFIED: frozenset({_S.ASSESSING, _S.CLOSED, _S.TRANSFERRED}),
    _S.ASSESSING: frozenset({_S.PLAN_ACTIVE, _S.CLOSED, _S.TRANSFERRED}),
    _S.PLAN_ACTIVE: frozenset({_S.MONITORING, _S.CLOSED, _S.TRANSFERRED}),
    _S.MONITORING: frozenset({_S.PLAN_ACTIVE, _S.CLOSED, _S.TRANSFERRED}),
    _S.CLOSED: frozenset({_S.ASSESSING}),
    _S.TRANSFERRED: frozenset(),
}


@dataclass(frozen=True)
class CaseProgress:
    """What the case file holds that a transition depends on."""

    assessed: bool  # at least one assessment recorded
    open_plan_actions: int  # actions of the assistance plan neither done nor cancelled


def check_transition(current: CaseStatus, target: CaseStatus, progress: CaseProgress, reason: str) -> None:
    """Raise Conflict (FAILED_PRECONDITION) unless `current` → `target` is allowed now."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise Conflict(f"a case file cannot go from {current.value} to {target.value}")
    # Closing, transferring and reopening are decisions someone must be able to explain later.
    if (not target.is_open or current is _S.CLOSED) and not reason.strip():
        raise InvalidInput("reason", f"say why the case file goes from {current.value} to {target.value}")
    if current is _S.ASSESSING and target is _S.PLAN_ACTIVE:
        # Every child is assessed, then gets an individual assistance plan.
        if not progress.assessed:
            raise Conflict("record the guardianship and needs assessment before the plan starts")
        if progress.open_plan_actions == 0:
            raise Conflict("the assistance plan has no open action yet")


def require_open(status: CaseStatus) -> None:
    """Work is recorded on open case files only; a closed one is reopened first."""
    if not status.is_open:
        raise Conflict(f"the case file is {status.value}: reopen it before recording work on it")
