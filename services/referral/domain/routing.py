"""Routing: which member units a discovery report is referred to, why, and by when.

Rules are data with effective dates, so a district can change them from a given day without rewriting
history: a report is routed by the rules in effect on the day it was received. Situation and fact codes
are the contract's (`reporting.v1.SubmitReportRequest.situation_types` / `facts`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from services.referral.domain.agencies import (
    CIVIL_AFFAIRS,
    DIRECTORY,
    DISABLED_PERSONS_FEDERATION,
    EDUCATION,
    POLICE,
    TOWN_GOVERNMENT,
    WOMENS_FEDERATION,
)

# The nine situations of the 2020 mandatory-reporting rules (强制报告): each obliges an immediate police report.
MANDATORY_REPORTING_SITUATIONS = frozenset(
    {
        "private_parts_injury",
        "girl_under_14_sexual_assault",
        "girl_14_plus_pregnant_by_assault",
        "violence_injury_signs",
        "abnormal_injury_or_death",
        "abandoned_or_uncared",
        "unknown_origin_missing_trafficked",
        "organised_begging",
        "other_serious_harm",
    }
)


class Urgency(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"
    CRISIS = "crisis"


@dataclass(frozen=True)
class ReportFacts:
    """What routing needs to know of a report; nothing that names the child or the reporter."""

    situations: frozenset[str]
    facts: frozenset[str] = frozenset()
    urgency: Urgency = Urgency.NORMAL
    crisis: bool = False


@dataclass(frozen=True)
class RoutingRule:
    """Refers a report to `agency_code` when every condition holds (an empty condition always holds)."""

    code: str
    agency_code: str
    reason: str
    due_in: timedelta
    effective_from: date
    effective_until: date | None = None  # last day in effect; None while in force
    urgent: bool = False
    any_of_situations: frozenset[str] = frozenset()
    all_of_facts: frozenset[str] = frozenset()
    crisis_only: bool = False
    # Applies only when no other rule routed the report (someone must always look at it).
    fallback: bool = False
    # Once accepted, the time the agency has to complete it.
    complete_within: timedelta = timedelta(days=30)
    # Where the referral goes when this agency rejects it; empty: to the leading group office.
    reroute_to: str = ""

    def in_effect(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_until is None or day <= self.effective_until)

    def matches(self, report: ReportFacts) -> bool:
        if self.crisis_only and not report.crisis:
            return False
        if self.any_of_situations and not self.any_of_situations & report.situations:
            return False
        return self.all_of_facts <= report.facts


@dataclass(frozen=True)
class Route:
    agency_code: str
    reason: str
    rule_code: str
    due_in: timedelta
    urgent: bool
    complete_within: timedelta = timedelta(days=30)
    reroute_to: str = ""


# A report triaged urgent or crisis is urgent for every unit it goes to: none of them may take a week.
URGENT_REPORT_DUE_IN = timedelta(days=1)
PILOT_START = date(2014, 1, 1)
# Due times are policy: "at once" (第一时间) for a crisis and the police, a working week otherwise.
ROUTING_RULES: tuple[RoutingRule, ...] = (
    RoutingRule(
        "CRISIS_RELIEF_STATION",
        CIVIL_AFFAIRS,
        "危机介入和及时庇护 crisis intervention and emergency shelter at 区民政局救助管理站",
        timedelta(hours=2),
        PILOT_START,
        urgent=True,
        crisis_only=True,
    ),
    RoutingRule(
        "MANDATORY_REPORT_POLICE",
        POLICE,
        "强制报告情形 mandatory-reporting situation: report to the police immediately",
        timedelta(hours=1),
        PILOT_START,
        urgent=True,
        any_of_situations=MANDATORY_REPORTING_SITUATIONS,
    ),
    RoutingRule(
        "WANDERING_CIVIL_AFFAIRS",
        CIVIL_AFFAIRS,
        "流浪经历 wandering history: rescue, return and risk assessment",
        timedelta(days=5),
        PILOT_START,
        any_of_situations=frozenset({"wandering"}),
    ),
    RoutingRule(
        "SCHOOLING_EDUCATION",
        EDUCATION,
        "失学辍学 out of school or at risk of dropping out: return to compulsory education",
        timedelta(days=5),
        PILOT_START,
        any_of_situations=frozenset({"out_of_school", "poverty_dropout_risk"}),
    ),
    RoutingRule(
        "GUARDIANSHIP_WOMENS_FEDERATION",
        WOMENS_FEDERATION,
        "监护不当或暴力 improper guardianship or violence: rights protection and family education",
        timedelta(days=5),
        PILOT_START,
        any_of_situations=frozenset({"improperly_guarded", "violence_injury_signs"}),
    ),
    RoutingRule(
        "GUARDIANSHIP_TOWN",
        TOWN_GOVERNMENT,
        "监护不当或暴力 improper guardianship or violence: guardianship guidance and assistance plan",
        timedelta(days=5),
        PILOT_START,
        any_of_situations=frozenset({"improperly_guarded", "violence_injury_signs"}),
    ),
    RoutingRule(
        "DISABILITY_FEDERATION",
        DISABLED_PERSONS_FEDERATION,
        "智障或精神异常 intellectual disability or mental abnormality: rehabilitation and supervision",
        timedelta(days=5),
        PILOT_START,
        any_of_situations=frozenset({"intellectual_or_mental"}),
    ),
    RoutingRule(
        "DEFAULT_TOWN_ASSESSMENT",
        TOWN_GOVERNMENT,
        "监护情况与需求评估 guardianship and needs assessment",
        timedelta(days=5),
        PILOT_START,
        fallback=True,
    ),
)


def route(report: ReportFacts, day: date, rules: Iterable[RoutingRule] = ROUTING_RULES) -> list[Route]:
    """One route per agency, in rule order; where two rules name one agency, the more pressing one wins."""
    in_effect = [rule for rule in rules if rule.in_effect(day)]
    matched = [rule for rule in in_effect if not rule.fallback and rule.matches(report)]
    if not matched:
        matched = [rule for rule in in_effect if rule.fallback and rule.matches(report)]
    report_urgent = report.urgency is not Urgency.NORMAL or report.crisis
    routes: dict[str, Route] = {}
    for rule in matched:
        if rule.agency_code not in DIRECTORY:
            raise ValueError(f"rule {rule.code} names unknown agency {rule.agency_code}")
        due_in = min(rule.due_in, URGENT_REPORT_DUE_IN) if report_urgent else rule.due_in
        candidate = Route(
            rule.agency_code,
            rule.reason,
            rule.code,
            due_in,
            rule.urgent or report_urgent,
            rule.complete_within,
            rule.reroute_to,
        )
        current = routes.get(rule.agency_code)
        if current is None or candidate.due_in < current.due_in:
            routes[rule.agency_code] = candidate
    return list(routes.values())
