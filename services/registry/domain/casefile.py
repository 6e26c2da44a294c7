"""The case file's status machine: identified → assessing → plan_active → monitoring → closed / transferred.

A case can be closed or transferred from any open status; after monitoring the plan can be adjusted again
(monitoring → plan_active, at the evaluation phase); a closed case is reopened into assessment when the child
is in difficulty again. A transferred case has left the town for good: the receiving town opens its own.

`CaseFile` is the case itself as the use cases change it: its status, named staff, risk level and when the
next follow-up visit is due. Its assessments, plan and visits are kept beside it (assessment.py, plans.py,
visits.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime

from services.registry.domain import visits
from services.registry.domain.codes import CaseStatus, RiskLevel
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


@dataclass(frozen=True)
class CaseStaff:
    """Who holds the case: the people named, and the portal users they are (gateway account ids; notify tells
    them, not only the roles' inboxes). Any may be empty."""

    responsible_person: str = ""  # 专人 named by the village or residents' committee
    social_worker: str = ""
    child_director: str = ""
    responsible_user_id: str = ""
    social_worker_user_id: str = ""
    child_director_user_id: str = ""


STAFF_FIELDS = tuple(f.name for f in fields(CaseStaff))


@dataclass
class CaseFile:
    case_id: str
    child_id: str
    status: CaseStatus
    opened_at: datetime
    staff: CaseStaff = field(default_factory=CaseStaff)
    status_reason: str = ""
    status_changed_at: datetime | None = None
    risk_level: RiskLevel | None = None  # none until the first assessment
    next_visit_due: date | None = None
    overdue_raised_for: date | None = None  # the due date a VisitOverdue was raised for (once each)
    version: int = 1  # as read; a save based on an older one than the stored one is refused

    @property
    def history_key(self) -> tuple[str, str, str]:
        return self.child_id, "case_file", self.case_id

    def history_values(self) -> dict[str, object]:
        """The fields the change history follows, as stored."""
        return {
            "status": self.status.value,
            "status_reason": self.status_reason,
            **asdict(self.staff),
            "risk_level": self.risk_level.value if self.risk_level else "",
        }

    def assign(self, staff: CaseStaff) -> CaseStaff | None:
        """Name the case's staff; returns who held it before when that changed (None when nothing did)."""
        before, self.staff = self.staff, staff
        return before if staff != before else None

    def change_status(self, target: CaseStatus, progress: CaseProgress, reason: str, at: datetime) -> CaseStatus:
        """Move the case to `target` if allowed now (check_transition); returns the status it left."""
        current = self.status
        check_transition(current, target, progress, reason)
        self.status, self.status_changed_at = target, at
        if reason:
            self.status_reason = reason
        return current

    def schedule_visits(self, *, last_contact: date | None, merged: bool = False) -> None:
        """When the next visit is due, from the status, the risk level and the last contact."""
        if merged:
            self.next_visit_due = None  # a merged duplicate is followed through the surviving record
            return
        self.next_visit_due = visits.next_visit_due(
            status=self.status, risk_level=self.risk_level, last_contact=last_contact
        )

    def visit_overdue(self, today: date) -> tuple[date, int] | None:
        """The due date and days overdue when a VisitOverdue is to be raised now (once per due date)."""
        due = self.next_visit_due
        if due is None or due >= today or self.overdue_raised_for == due:
            return None
        self.overdue_raised_for = due
        return due, visits.days_overdue(due, today)
