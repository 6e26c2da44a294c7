"""Triage: urgency from the situation types and facts, crisis declarations, and the escort rules.

Rules are data (`TriageRuleSet`), versioned per tenant, so a town can tune them without a release;
the legal minimum (mandatory-reporting situations are at least URGENT) is applied on top of any set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.reporting.domain.errors import InvalidInput
from services.reporting.domain.model import (
    CHINA_STANDARD_TIME,
    MANDATORY_REPORTING_SITUATIONS,
    AgencyKind,
    Channel,
    CrisisAction,
    EscortDestination,
    Fact,
    SituationType,
    Submission,
    Urgency,
    most_urgent,
    requires_police_report,
)

DEFAULT_TENANT = "*"  # a rule set for every tenant that has none of its own


@dataclass(frozen=True)
class TriageRule:
    """Sets `urgency` when every condition holds; an empty condition always holds."""

    code: str
    urgency: Urgency
    reason: str
    any_of_situations: frozenset[SituationType] = frozenset()
    all_of_facts: frozenset[Fact] = frozenset()
    under_age: int | None = None  # holds only when the child's age is known and below this

    def matches(self, situations: frozenset[SituationType], facts: frozenset[Fact], age: int | None) -> bool:
        if self.any_of_situations and not self.any_of_situations & situations:
            return False
        if not self.all_of_facts <= facts:
            return False
        return self.under_age is None or (age is not None and age < self.under_age)


@dataclass(frozen=True)
class TriageRuleSet:
    version: int
    tenant: str
    effective_from: datetime
    rules: tuple[TriageRule, ...]


@dataclass(frozen=True)
class CrisisDeclared:
    """Decision that a report is a crisis, and what must happen at once."""

    actions: tuple[CrisisAction, ...]
    rule_codes: tuple[str, ...]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class TriageDecision:
    urgency: Urgency
    rule_set_version: int
    matched_rules: tuple[TriageRule, ...]
    police_report_required: bool  # any of the nine situations, whatever the urgency
    crisis: CrisisDeclared | None

    @property
    def rule_codes(self) -> tuple[str, ...]:
        return tuple(rule.code for rule in self.matched_rules)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(rule.reason for rule in self.matched_rules)


@dataclass(frozen=True)
class EscortDecision:
    destination: EscortDestination
    reason: str
    dna_sampling: bool  # blood for the national anti-trafficking DNA database (打拐DNA数据库)


_S = SituationType
_CRISIS = Urgency.CRISIS
_URGENT = Urgency.URGENT

# The legal minimum, applied on top of every rule set.
MANDATORY_REPORTING_FLOOR = TriageRule(
    "URGENT_MANDATORY_REPORTING",
    _URGENT,
    "mandatory-reporting situation: report to the police immediately (强制报告)",
    any_of_situations=MANDATORY_REPORTING_SITUATIONS,
)

DEFAULT_RULE_SET = TriageRuleSet(
    version=1,
    tenant=DEFAULT_TENANT,
    effective_from=datetime(2014, 1, 1, tzinfo=CHINA_STANDARD_TIME),
    rules=(
        TriageRule(
            "CRISIS_SEXUAL_ASSAULT",
            _CRISIS,
            "sexual assault, or injury to private parts",
            any_of_situations=frozenset(
                {
                    _S.PRIVATE_PARTS_INJURY,
                    _S.GIRL_UNDER_14_SEXUAL_ASSAULT,
                    _S.GIRL_14_PLUS_PREGNANT_BY_ASSAULT,
                }
            ),
        ),
        TriageRule(
            "CRISIS_VIOLENCE_INJURY",
            _CRISIS,
            "injuries, malnutrition or impaired consciousness suspected from violence or abuse",
            any_of_situations=frozenset({_S.VIOLENCE_INJURY_SIGNS}),
        ),
        TriageRule(
            "CRISIS_ABUSE_WITH_INJURY",
            _CRISIS,
            "neglect or domestic violence with injuries",
            any_of_situations=frozenset({_S.IMPROPERLY_GUARDED, _S.NO_EFFECTIVE_GUARDIAN}),
            all_of_facts=frozenset({Fact.INJURED}),
        ),
        TriageRule(
            "CRISIS_ABANDONMENT",
            _CRISIS,
            "abandoned or long without care",
            any_of_situations=frozenset({_S.ABANDONED_OR_UNCARED}),
        ),
        TriageRule(
            "CRISIS_TRAFFICKING",
            _CRISIS,
            # The plan's category joins trafficking with illegal employment; escalate both.
            "unknown origin, missing, trafficked or illegally employed",
            any_of_situations=frozenset({_S.UNKNOWN_ORIGIN_MISSING_TRAFFICKED, _S.TRAFFICKED_OR_ILLEGALLY_EMPLOYED}),
        ),
        TriageRule(
            "CRISIS_WANDERING_ALONE",
            _CRISIS,
            "child wandering alone",
            any_of_situations=frozenset({_S.WANDERING}),
            all_of_facts=frozenset({Fact.CHILD_ALONE}),
        ),
        TriageRule(
            "CRISIS_YOUNG_CHILD_ALONE",
            _CRISIS,
            "child under 6 without an adult",
            all_of_facts=frozenset({Fact.CHILD_ALONE}),
            under_age=6,
        ),
        TriageRule(
            "CRISIS_ORGANISED_BEGGING",
            _CRISIS,
            "organised begging",
            any_of_situations=frozenset({_S.ORGANISED_BEGGING}),
        ),
        TriageRule(
            "CRISIS_IMMINENT_DANGER",
            _CRISIS,
            "other serious harm or imminent danger",
            any_of_situations=frozenset({_S.OTHER_SERIOUS_HARM}),
        ),
        TriageRule("URGENT_INJURED", _URGENT, "child injured", all_of_facts=frozenset({Fact.INJURED})),
        TriageRule("URGENT_CHILD_ALONE", _URGENT, "child without an adult", all_of_facts=frozenset({Fact.CHILD_ALONE})),
    ),
)

# Situations in which the child has nobody looking after them now: a crisis then needs a shelter.
UNATTENDED_SITUATIONS = frozenset({_S.DE_FACTO_UNATTENDED, _S.ABANDONED_OR_UNCARED, _S.NO_EFFECTIVE_GUARDIAN})
ESCORTING_AGENCIES = frozenset({AgencyKind.POLICE, AgencyKind.URBAN_MANAGEMENT})
ESCORT_MINOR_OFFENCES_MIN_AGE = 6


def select_rule_set(rule_sets: Iterable[TriageRuleSet], tenant: str, at: datetime) -> TriageRuleSet:
    """The tenant's newest set in effect at `at`, else the newest shared set, else `DEFAULT_RULE_SET`."""
    in_effect = [rule_set for rule_set in rule_sets if rule_set.effective_from <= at]
    for wanted in (tenant, DEFAULT_TENANT):
        candidates = [rule_set for rule_set in in_effect if rule_set.tenant == wanted]
        if candidates:
            return max(candidates, key=lambda rule_set: (rule_set.effective_from, rule_set.version))
    return DEFAULT_RULE_SET


def triage(submission: Submission, rule_set: TriageRuleSet) -> TriageDecision:
    situations, facts = submission.situations, submission.facts
    age = submission.child_age()
    matched = tuple(
        rule for rule in (*rule_set.rules, MANDATORY_REPORTING_FLOOR) if rule.matches(situations, facts, age)
    )
    urgency = most_urgent(rule.urgency for rule in matched)
    police = requires_police_report(situations)
    crisis = None
    if urgency is Urgency.CRISIS:
        crisis_rules = [rule for rule in matched if rule.urgency is Urgency.CRISIS]
        crisis = CrisisDeclared(
            actions=_crisis_actions(situations, facts, police),
            rule_codes=tuple(rule.code for rule in crisis_rules),
            reasons=tuple(rule.reason for rule in crisis_rules),
        )
    return TriageDecision(urgency, rule_set.version, matched, police, crisis)


def _crisis_actions(
    situations: frozenset[SituationType], facts: frozenset[Fact], police: bool
) -> tuple[CrisisAction, ...]:
    # The plan: report to the local government at once (第一时间向属地政府报告), always.
    actions = [CrisisAction.NOTIFY_TOWNSHIP_DUTY_OFFICER]
    if police:
        actions.append(CrisisAction.NOTIFY_POLICE)
    if Fact.CHILD_ALONE in facts or situations & UNATTENDED_SITUATIONS:
        actions.append(CrisisAction.ARRANGE_EMERGENCY_SHELTER)
    return tuple(actions)


def escort_for(submission: Submission) -> EscortDecision | None:
    """The plan's escort rules, for reports shared by the police or urban management; None otherwise."""
    reporter = submission.reporter
    if submission.channel is not Channel.AGENCY_SHARE or reporter is None or reporter.agency not in ESCORTING_AGENCIES:
        return None
    situations, facts = submission.situations, submission.facts
    if Fact.BEGGING_WITH_ADULTS in facts or _S.ORGANISED_BEGGING in situations:
        return EscortDecision(
            EscortDestination.DISTRICT_RELIEF_STATION,
            "begging with parents or other adults: identity verification (身份甄别)",
            # "对来历不明的未成年人一律采血": every child of unknown origin found with beggars.
            dna_sampling=_S.UNKNOWN_ORIGIN_MISSING_TRAFFICKED in situations,
        )
    if Fact.CHILD_ALONE in facts and _S.WANDERING in situations:
        age = submission.child_age()
        if Fact.MINOR_OFFENCES in facts and age is not None and age >= ESCORT_MINOR_OFFENCES_MIN_AGE:
            return EscortDecision(
                EscortDestination.CITY_SECOND_MINOR_RESCUE_CENTRE,
                f"wandering alone, aged {ESCORT_MINOR_OFFENCES_MIN_AGE} or older, with minor offences",
                dna_sampling=False,
            )
        return EscortDecision(EscortDestination.CITY_MINOR_RESCUE_CENTRE, "wandering alone", dna_sampling=False)
    return None


def rule_set_to_dict(rule_set: TriageRuleSet) -> dict[str, Any]:
    """Plain JSON-ready form, for storing rule sets as data."""
    return {
        "version": rule_set.version,
        "tenant": rule_set.tenant,
        "effective_from": rule_set.effective_from.isoformat(),
        "rules": [
            {
                "code": rule.code,
                "urgency": rule.urgency.value,
                "reason": rule.reason,
                "any_of_situations": sorted(s.value for s in rule.any_of_situations),
                "all_of_facts": sorted(f.value for f in rule.all_of_facts),
                "under_age": rule.under_age,
            }
            for rule in rule_set.rules
        ],
    }


def rule_set_from_dict(data: Mapping[str, Any]) -> TriageRuleSet:
    """Inverse of `rule_set_to_dict`; raises `InvalidInput` on unknown codes or a missing key."""
    try:
        effective_from = datetime.fromisoformat(data["effective_from"])
        if effective_from.tzinfo is None:
            raise ValueError("effective_from needs a time zone")
        return TriageRuleSet(
            version=int(data["version"]),
            tenant=str(data["tenant"]),
            effective_from=effective_from,
            rules=tuple(
                TriageRule(
                    code=str(rule["code"]),
                    urgency=Urgency(rule["urgency"]),
                    reason=str(rule["reason"]),
                    any_of_situations=frozenset(SituationType(s) for s in rule["any_of_situations"]),
                    all_of_facts=frozenset(Fact(f) for f in rule["all_of_facts"]),
                    under_age=None if rule["under_age"] is None else int(rule["under_age"]),
                )
                for rule in data["rules"]
            ),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidInput.single("rule_set", f"not a valid triage rule set: {error!r}") from error
