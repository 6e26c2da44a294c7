"""The guardianship and needs assessment: checked findings and the computed risk level, case by case."""

import pytest

from platform_runtime import errors
from services.registry.domain.assessment import (
    DomainFinding,
    check_assessment_allowed,
    check_findings,
    risk_level,
)
from services.registry.domain.codes import AssessmentDomain, AssessmentKind, CaseStatus, RiskLevel
from services.registry.domain.errors import Conflict

D = AssessmentDomain


def scored(**scores: int) -> list[DomainFinding]:
    """All six domains, 0 unless given; a finding for every concern."""
    return [DomainFinding(d, scores.get(d.value, 0), "情况说明" if scores.get(d.value, 0) else "") for d in D]


@pytest.mark.parametrize(
    ("scores", "level", "reason"),
    [
        ({}, RiskLevel.LOW, "no serious concern"),
        ({"health": 2}, RiskLevel.LOW, "at most one moderate"),
        ({"health": 1, "education": 1, "livelihood": 1, "psychology": 1}, RiskLevel.LOW, "no serious"),
        # medium
        ({"education": 3}, RiskLevel.MEDIUM, "serious concern: 教育就学(严重)"),
        ({"safety": 2}, RiskLevel.MEDIUM, "protection concern: 人身安全(中度)"),
        ({"guardianship": 2}, RiskLevel.MEDIUM, "protection concern: 监护状况(中度)"),
        ({"health": 2, "psychology": 2}, RiskLevel.MEDIUM, "2 concerns"),
        # high
        ({"livelihood": 4}, RiskLevel.HIGH, "critical: 基本生活(危急)"),
        ({"safety": 3}, RiskLevel.HIGH, "serious protection concern: 人身安全(严重)"),
        ({"guardianship": 3}, RiskLevel.HIGH, "serious protection concern"),
        ({"health": 3, "education": 3}, RiskLevel.HIGH, "2 serious concerns"),
    ],
)
def test_risk_level(scores: dict[str, int], level: RiskLevel, reason: str) -> None:
    result = risk_level(scored(**scores))
    assert result.level is level
    assert any(reason in r for r in result.reasons), result.reasons


def test_every_rule_that_applies_is_given_as_a_reason() -> None:
    result = risk_level(scored(safety=4, guardianship=3, health=3))
    assert result.level is RiskLevel.HIGH
    assert len(result.reasons) == 3


def test_findings_come_back_in_the_domains_order() -> None:
    findings = list(reversed(scored(health=1)))
    assert [f.domain for f in check_findings(findings)] == list(D)


def test_every_problem_with_the_findings_is_reported_at_once() -> None:
    findings = [
        DomainFinding(D.SAFETY, 5),
        DomainFinding(D.GUARDIANSHIP, 3, ""),
        DomainFinding(D.HEALTH, 0),
        DomainFinding(D.HEALTH, 1, "感冒"),
    ]
    with pytest.raises(errors.InvalidInput) as refused:
        check_findings(findings)
    fields = sorted(v.field for v in refused.value.violations)
    assert fields == [
        "domains.education",
        "domains.guardianship",  # a concern without words
        "domains.health",  # twice
        "domains.livelihood",
        "domains.psychology",
        "domains.safety",  # out of range
    ]


@pytest.mark.parametrize("status", [CaseStatus.ASSESSING, CaseStatus.PLAN_ACTIVE, CaseStatus.MONITORING])
def test_assessments_are_recorded_while_the_case_is_worked_on(status: CaseStatus) -> None:
    check_assessment_allowed(AssessmentKind.RE_ASSESSMENT, status, previous_assessments=1)


@pytest.mark.parametrize("status", [CaseStatus.IDENTIFIED, CaseStatus.CLOSED, CaseStatus.TRANSFERRED])
def test_no_assessment_before_assessing_or_after_closing(status: CaseStatus) -> None:
    with pytest.raises(Conflict):
        check_assessment_allowed(AssessmentKind.INITIAL, status, previous_assessments=0)


def test_one_initial_assessment_then_re_assessments() -> None:
    check_assessment_allowed(AssessmentKind.INITIAL, CaseStatus.ASSESSING, previous_assessments=0)
    with pytest.raises(Conflict, match="re-assessment"):
        check_assessment_allowed(AssessmentKind.INITIAL, CaseStatus.ASSESSING, previous_assessments=1)
    with pytest.raises(Conflict, match="initial assessment first"):
        check_assessment_allowed(AssessmentKind.RE_ASSESSMENT, CaseStatus.MONITORING, previous_assessments=0)
