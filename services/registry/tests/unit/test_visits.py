"""Follow-up visit schedules: intervals by risk level, as effective-dated policy data."""

from datetime import date

import pytest

from services.registry.domain.codes import CaseStatus, RiskLevel
from services.registry.domain.errors import InvalidInput
from services.registry.domain.visits import (
    DEFAULT_VISIT_POLICIES,
    VisitPolicy,
    days_overdue,
    next_visit_due,
    policy_in_force,
)

LAST = date(2024, 6, 1)


@pytest.mark.parametrize(
    ("risk", "due"),
    [(RiskLevel.HIGH, date(2024, 6, 8)), (RiskLevel.MEDIUM, date(2024, 7, 1)), (RiskLevel.LOW, date(2024, 8, 30))],
)
def test_the_interval_follows_the_risk_level(risk: RiskLevel, due: date) -> None:
    assert next_visit_due(status=CaseStatus.MONITORING, risk_level=risk, last_contact=LAST) == due


@pytest.mark.parametrize(
    ("status", "risk", "last"),
    [
        (CaseStatus.ASSESSING, None, LAST),  # not assessed yet
        (CaseStatus.IDENTIFIED, RiskLevel.HIGH, LAST),
        (CaseStatus.CLOSED, RiskLevel.HIGH, LAST),
        (CaseStatus.TRANSFERRED, RiskLevel.HIGH, LAST),
        (CaseStatus.PLAN_ACTIVE, RiskLevel.HIGH, None),
    ],
)
def test_no_visit_is_scheduled_without_a_risk_level_or_on_a_closed_case(
    status: CaseStatus, risk: RiskLevel | None, last: date | None
) -> None:
    assert next_visit_due(status=status, risk_level=risk, last_contact=last) is None


def test_the_policy_in_force_on_the_last_contact_decides() -> None:
    stricter = VisitPolicy("VISIT-2025", date(2025, 1, 1), {RiskLevel.HIGH: 3, RiskLevel.MEDIUM: 14, RiskLevel.LOW: 60})
    policies = (*DEFAULT_VISIT_POLICIES, stricter)
    assert policy_in_force(policies, date(2024, 12, 31)).code == "VISIT-2014"
    assert policy_in_force(policies, date(2025, 1, 1)).code == "VISIT-2025"
    assert next_visit_due(
        status=CaseStatus.MONITORING, risk_level=RiskLevel.HIGH, last_contact=date(2025, 2, 1), policies=policies
    ) == date(2025, 2, 4)
    with pytest.raises(InvalidInput):
        policy_in_force(policies, date(2013, 12, 31))


def test_a_policy_gives_every_risk_level_an_interval() -> None:
    with pytest.raises(InvalidInput, match="low"):
        VisitPolicy("BAD", date(2024, 1, 1), {RiskLevel.HIGH: 7, RiskLevel.MEDIUM: 30})


def test_a_visit_is_overdue_from_the_day_after_it_was_due() -> None:
    assert days_overdue(date(2024, 6, 8), date(2024, 6, 8)) == 0
    assert days_overdue(date(2024, 6, 8), date(2024, 6, 9)) == 1
    assert days_overdue(date(2024, 6, 8), date(2024, 6, 1)) == 0
