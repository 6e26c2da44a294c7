"""Guardianship and needs assessment (监护情况与需求评估): six domains, each scored, and the risk level.

Each domain gets a concern score from 0 (no concern) to 4 (critical: the child is in danger now) and a
finding in words. The risk level is computed, never chosen, so the same facts always give the same
level and the same visit schedule. Safety and guardianship weigh more: they are what protection is for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from platform_runtime import errors
from services.registry.domain.codes import AssessmentDomain, AssessmentKind, CaseStatus, RiskLevel
from services.registry.domain.errors import Conflict

MIN_SCORE, MAX_SCORE = 0, 4
SCORE_LABELS = {0: "无问题", 1: "轻微", 2: "中度", 3: "严重", 4: "危急"}
CRITICAL, SERIOUS, MODERATE = 4, 3, 2
PROTECTION_DOMAINS = frozenset({AssessmentDomain.SAFETY, AssessmentDomain.GUARDIANSHIP})


@dataclass(frozen=True)
class DomainFinding:
    domain: AssessmentDomain
    score: int
    finding: str = ""


@dataclass(frozen=True)
class RiskResult:
    level: RiskLevel
    reasons: tuple[str, ...]


def check_findings(findings: Iterable[DomainFinding]) -> tuple[DomainFinding, ...]:
    """Every domain exactly once, scores in range, and a finding in words for any concern (score ≥ 2).

    Returns the findings in the domains' order; raises InvalidInput with every problem at once.
    """
    given = list(findings)
    problems: list[errors.FieldViolation] = []
    counts = Counter(f.domain for f in given)
    for domain in AssessmentDomain:
        if counts[domain] == 0:
            problems.append(errors.FieldViolation(f"domains.{domain.value}", "is missing: every domain is assessed"))
        elif counts[domain] > 1:
            problems.append(errors.FieldViolation(f"domains.{domain.value}", "is given more than once"))
    for finding in given:
        field = f"domains.{finding.domain.value}"
        if not MIN_SCORE <= finding.score <= MAX_SCORE:
            problems.append(errors.FieldViolation(field, f"score must be {MIN_SCORE} to {MAX_SCORE}"))
        elif finding.score >= MODERATE and not finding.finding.strip():
            problems.append(errors.FieldViolation(field, "a concern (score 2 or more) needs a finding in words"))
    if problems:
        raise errors.InvalidInput(problems)
    order = list(AssessmentDomain)
    return tuple(sorted(given, key=lambda f: order.index(f.domain)))


def risk_level(findings: Iterable[DomainFinding]) -> RiskResult:
    """High: any domain critical, safety or guardianship serious, or two domains serious.
    Medium: any domain serious, safety or guardianship moderate, or two domains moderate.
    Low: otherwise. The reasons say which rule decided, in the staff's words."""
    scores = {f.domain: f.score for f in findings}

    def domains_at(score: int) -> list[AssessmentDomain]:
        return [d for d in AssessmentDomain if scores.get(d, 0) >= score]

    def named(domains: list[AssessmentDomain]) -> str:
        return "、".join(f"{d.label}({SCORE_LABELS[scores[d]]})" for d in domains)

    critical, serious, moderate = domains_at(CRITICAL), domains_at(SERIOUS), domains_at(MODERATE)
    serious_protection = [d for d in serious if d in PROTECTION_DOMAINS]
    moderate_protection = [d for d in moderate if d in PROTECTION_DOMAINS]

    high = [
        *([f"critical: {named(critical)}"] if critical else []),
        *([f"serious protection concern: {named(serious_protection)}"] if serious_protection else []),
        *([f"{len(serious)} serious concerns: {named(serious)}"] if len(serious) >= 2 else []),
    ]
    if high:
        return RiskResult(RiskLevel.HIGH, tuple(high))
    medium = [
        *([f"serious concern: {named(serious)}"] if serious else []),
        *([f"protection concern: {named(moderate_protection)}"] if moderate_protection else []),
        *([f"{len(moderate)} concerns: {named(moderate)}"] if len(moderate) >= 2 else []),
    ]
    if medium:
        return RiskResult(RiskLevel.MEDIUM, tuple(medium))
    return RiskResult(RiskLevel.LOW, ("no serious concern and at most one moderate one",))


# Assessments are recorded while the case is worked on; a re-assessment needs a first one to compare with.
ASSESSABLE_STATUSES = frozenset({CaseStatus.ASSESSING, CaseStatus.PLAN_ACTIVE, CaseStatus.MONITORING})


def check_assessment_allowed(kind: AssessmentKind, status: CaseStatus, previous_assessments: int) -> None:
    if status not in ASSESSABLE_STATUSES:
        raise Conflict(f"assessments are recorded while the case is being assessed or worked on, not {status.value}")
    if kind is AssessmentKind.INITIAL and previous_assessments:
        raise Conflict("the child already has an initial assessment: record a re-assessment")
    if kind is AssessmentKind.RE_ASSESSMENT and not previous_assessments:
        raise Conflict("a re-assessment needs an initial assessment first")


@dataclass(frozen=True)
class Assessment:
    """An assessment as recorded (never changed afterwards)."""

    assessment_id: str
    child_id: str
    kind: AssessmentKind
    assessed_on: date
    assessor: str
    findings: tuple[DomainFinding, ...]
    risk: RiskResult
    summary: str
    recorded_by: str
    recorded_at: datetime

    @property
    def history_key(self) -> tuple[str, str, str]:
        return self.child_id, "assessment", self.assessment_id

    def history_values(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "assessed_on": self.assessed_on,
            "assessor": self.assessor,
            "domains": [{"domain": f.domain.value, "score": f.score, "finding": f.finding} for f in self.findings],
            "risk_level": self.risk.level.value,
            "risk_reasons": list(self.risk.reasons),
            "summary": self.summary,
        }
