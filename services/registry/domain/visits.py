"""Follow-up visits (随访制度): how often a child is visited, set by the risk level of the last assessment.

The intervals are policy data with effective dates, like the rules of derived categories: a district that
changes them adds a policy with a later `effective_from`, and each due date is computed with the policy in
force on the day it counts from. The schedule counts from the last contact, a visit or an assessment (an
assessment is done with the child and family, so it counts as a visit).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.registry.domain.codes import CaseStatus, RiskLevel
from services.registry.domain.errors import InvalidInput


@dataclass(frozen=True)
class VisitPolicy:
    code: str
    effective_from: date
    interval_days: Mapping[RiskLevel, int]
    source: str = ""

    def __post_init__(self) -> None:
        missing = [level.value for level in RiskLevel if self.interval_days.get(level, 0) < 1]
        if missing:
            raise InvalidInput("interval_days", f"policy {self.code}: no interval of 1+ days for {missing}")


DEFAULT_VISIT_POLICIES: tuple[VisitPolicy, ...] = (
    VisitPolicy(
        code="VISIT-2014",
        effective_from=date(2014, 1, 1),
        interval_days={RiskLevel.HIGH: 7, RiskLevel.MEDIUM: 30, RiskLevel.LOW: 90},
        source="房山区未成年人社会保护试点方案 (2014): 随访制度; intervals set by the district",
    ),
)


def policy_in_force(policies: Iterable[VisitPolicy], on: date) -> VisitPolicy:
    candidates = [p for p in policies if p.effective_from <= on]
    if not candidates:
        raise InvalidInput("visit_policy", f"no visit policy in force on {on.isoformat()}")
    return max(candidates, key=lambda p: p.effective_from)


def next_visit_due(
    *,
    status: CaseStatus,
    risk_level: RiskLevel | None,
    last_contact: date | None,
    policies: Iterable[VisitPolicy] = DEFAULT_VISIT_POLICIES,
) -> date | None:
    """When the next visit is due; None when no visit is scheduled (not assessed yet, or case closed)."""
    if not status.is_open or status is CaseStatus.IDENTIFIED or risk_level is None or last_contact is None:
        return None
    policy = policy_in_force(policies, last_contact)
    return last_contact + timedelta(days=policy.interval_days[risk_level])


def days_overdue(due: date, today: date) -> int:
    """0 on the due day itself: a visit is overdue from the day after."""
    return max((today - due).days, 0)


@dataclass(frozen=True)
class Visit:
    """A follow-up visit (随访) as recorded: who went, when, what they found."""

    visit_id: str
    child_id: str
    visited_on: date
    visitor: str
    findings: str
    recorded_by: str
    recorded_at: datetime

    @property
    def history_key(self) -> tuple[str, str, str]:
        return self.child_id, "visit", self.visit_id

    def history_values(self) -> dict[str, object]:
        return {"visited_on": self.visited_on, "visitor": self.visitor, "findings": self.findings}
