"""Routing: which units a discovery report is referred to, why, and by when.

Rules are data: a district keeps versioned rule sets with effective dates (a new version, never an edit of one
in use), and a report is routed by the set in effect on the day it was received. Each rule can be tried alone
and a preview explains, rule by rule, what a case would be routed to and why. Situation and fact codes are the
contract's (`reporting.v1.SubmitReportRequest.situation_types` / `facts`, platform_runtime.vocabulary).

`PLAN_RULES` are the pilot plan's rules, the set a district starts from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from platform_runtime.errors import FieldViolation, InvalidInput
from services.referral.domain import agencies as units

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
    age: int | None = None  # the child's approximate age, when the reporter gave one


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
    any_of_facts: frozenset[str] = frozenset()
    min_age: int | None = None  # holds only when the age is known and at least this
    crisis_only: bool = False
    # Applies only when no other rule routed the report (someone must always look at it).
    fallback: bool = False
    # Once accepted, the time the agency has to complete it.
    complete_within: timedelta = timedelta(days=30)
    # Where the referral goes when this agency rejects it; empty: to the leading group office.
    reroute_to: str = ""
    # Of the rules of one group only the first that holds applies (the escort rules: one destination).
    group: str = ""
    # The route asks the benefits service for an application of this kind (BenefitApplicationRequested).
    benefit_code: str = ""

    def in_effect(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_until is None or day <= self.effective_until)

    def matches(self, report: ReportFacts) -> bool:
        """`not why_not(report)`, without writing the reasons (routing asks this of every rule)."""
        return (
            (not self.crisis_only or report.crisis)
            and (not self.any_of_situations or not self.any_of_situations.isdisjoint(report.situations))
            and self.all_of_facts <= report.facts
            and (not self.any_of_facts or not self.any_of_facts.isdisjoint(report.facts))
            and (self.min_age is None or (report.age is not None and report.age >= self.min_age))
        )

    def why_not(self, report: ReportFacts) -> str:
        """Empty when the rule holds for the report; otherwise the first condition that fails, in words."""
        if self.crisis_only and not report.crisis:
            return "only for a crisis"
        if self.any_of_situations and not self.any_of_situations & report.situations:
            return f"none of the situations {', '.join(sorted(self.any_of_situations))}"
        if not self.all_of_facts <= report.facts:
            return f"not every fact of {', '.join(sorted(self.all_of_facts))}"
        if self.any_of_facts and not self.any_of_facts & report.facts:
            return f"none of the facts {', '.join(sorted(self.any_of_facts))}"
        if self.min_age is not None and (report.age is None or report.age < self.min_age):
            return f"age not known to be {self.min_age} or more"
        return ""


@dataclass(frozen=True)
class Route:
    agency_code: str
    reason: str
    rule_code: str
    due_in: timedelta
    urgent: bool
    complete_within: timedelta = timedelta(days=30)
    reroute_to: str = ""
    benefit_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleVerdict:
    """One rule's part in a preview: whether it applied, and why (not)."""

    rule_code: str
    agency_code: str
    applied: bool
    why: str


@dataclass(frozen=True)
class Preview:
    routes: list[Route]
    verdicts: list[RuleVerdict] = field(default_factory=list)


# A report triaged urgent or crisis is urgent for every unit it goes to: none of them may take a week.
URGENT_REPORT_DUE_IN = timedelta(days=1)
PILOT_START = date(2014, 1, 1)
ESCORT_MIN_AGE_SECOND_CENTRE = 6
WORKING_AGE = 16


def explain(
    report: ReportFacts,
    day: date,
    rules: Iterable[RoutingRule],
    directory: Mapping[str, object] | None = None,
    *,
    verdicts_wanted: bool = True,
) -> Preview:
    """The routes of `report` on `day` and, rule by rule, why each applied or not."""
    directory = units.DIRECTORY if directory is None else directory
    in_effect = [rule for rule in rules if rule.in_effect(day)]
    verdicts: list[RuleVerdict] = []
    matched: list[RoutingRule] = []
    groups_taken: dict[str, str] = {}
    for rule in in_effect:
        if rule.fallback:
            continue
        # Routing alone needs no reasons written: only the preview does.
        why = rule.why_not(report) if verdicts_wanted else ("" if rule.matches(report) else "no")
        if not why and rule.group and rule.group in groups_taken:
            why = f"rule {groups_taken[rule.group]} of group {rule.group} applied first"
        if not why:
            matched.append(rule)
            if rule.group:
                groups_taken[rule.group] = rule.code
        verdicts.append(RuleVerdict(rule.code, rule.agency_code, not why, why or "all conditions hold"))
    for rule in in_effect:
        if not rule.fallback:
            continue
        why = "another rule routed the report" if matched else rule.why_not(report)
        if not why:
            matched.append(rule)
        verdicts.append(RuleVerdict(rule.code, rule.agency_code, not why, why or "no other rule routed the report"))
    report_urgent = report.urgency is not Urgency.NORMAL or report.crisis
    routes: dict[str, Route] = {}
    for rule in matched:
        if rule.agency_code not in directory:
            raise ValueError(f"rule {rule.code} names unknown agency {rule.agency_code}")
        due_in = min(rule.due_in, URGENT_REPORT_DUE_IN) if report_urgent else rule.due_in
        benefits = (rule.benefit_code,) if rule.benefit_code else ()
        candidate = Route(
            rule.agency_code,
            rule.reason,
            rule.code,
            due_in,
            rule.urgent or report_urgent,
            rule.complete_within,
            rule.reroute_to,
            benefits,
        )
        current = routes.get(rule.agency_code)
        if current is None:
            routes[rule.agency_code] = candidate
            continue
        # One referral per unit: the more pressing rule leads, and the unit reads every task it was given.
        lead, other = (candidate, current) if candidate.due_in < current.due_in else (current, candidate)
        routes[rule.agency_code] = Route(
            lead.agency_code,
            f"{lead.reason}; {other.reason}",
            lead.rule_code,
            lead.due_in,
            lead.urgent or other.urgent,
            min(lead.complete_within, other.complete_within),
            lead.reroute_to or other.reroute_to,
            tuple(dict.fromkeys(lead.benefit_codes + other.benefit_codes)),
        )
    return Preview(list(routes.values()), verdicts)


def route(
    report: ReportFacts, day: date, rules: Iterable[RoutingRule], directory: Mapping[str, object] | None = None
) -> list[Route]:
    """One route per agency, in rule order; where two rules name one agency, the more pressing one leads."""
    return explain(report, day, rules, directory, verdicts_wanted=False).routes


# -- rules as data (JSON) ------------------------------------------------------------------------------------

_DURATIONS = ("due_in", "complete_within")


def rule_to_dict(rule: RoutingRule) -> dict[str, Any]:
    return {
        "code": rule.code,
        "agency_code": rule.agency_code,
        "reason": rule.reason,
        "due_in_minutes": int(rule.due_in.total_seconds() // 60),
        "complete_within_minutes": int(rule.complete_within.total_seconds() // 60),
        "urgent": rule.urgent,
        "any_of_situations": sorted(rule.any_of_situations),
        "all_of_facts": sorted(rule.all_of_facts),
        "any_of_facts": sorted(rule.any_of_facts),
        "min_age": rule.min_age,
        "crisis_only": rule.crisis_only,
        "fallback": rule.fallback,
        "reroute_to": rule.reroute_to,
        "group": rule.group,
        "benefit_code": rule.benefit_code,
    }


def rule_from_dict(data: Mapping[str, Any], effective_from: date, directory: Mapping[str, object]) -> RoutingRule:
    """A rule from its stored or submitted form; InvalidInput names every field that is wrong."""
    problems: list[FieldViolation] = []
    code = str(data.get("code", "")).strip()
    prefix = f"rules.{code or '?'}"

    def text(name: str, required: bool = False, limit: int = 400) -> str:
        value = str(data.get(name) or "").strip()
        if required and not value:
            problems.append(FieldViolation(f"{prefix}.{name}", "is required"))
        if len(value) > limit:
            problems.append(FieldViolation(f"{prefix}.{name}", f"must be at most {limit} characters"))
        return value

    def minutes(name: str, default: int) -> timedelta:
        value = data.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 366 * 24 * 60:
            problems.append(FieldViolation(f"{prefix}.{name}", "must be a whole number of minutes up to a year"))
            return timedelta(minutes=default)
        return timedelta(minutes=value)

    def codes(name: str) -> frozenset[str]:
        value = data.get(name) or []
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
            problems.append(FieldViolation(f"{prefix}.{name}", "must be a list of codes"))
            return frozenset()
        return frozenset(v.strip() for v in value)

    if not code or len(code) > 60 or not code.replace("_", "").isalnum():
        problems.append(FieldViolation("rules.code", "must be 1 to 60 letters, digits or underscores"))
    agency = text("agency_code", required=True, limit=40)
    if agency and agency not in directory:
        problems.append(FieldViolation(f"{prefix}.agency_code", f"{agency} is not in the district's directory"))
    reroute = text("reroute_to", limit=40)
    if reroute and reroute not in directory:
        problems.append(FieldViolation(f"{prefix}.reroute_to", f"{reroute} is not in the district's directory"))
    min_age = data.get("min_age")
    if min_age is not None and (not isinstance(min_age, int) or isinstance(min_age, bool) or not 0 <= min_age < 18):
        problems.append(FieldViolation(f"{prefix}.min_age", "must be an age from 0 to 17"))
        min_age = None
    rule = RoutingRule(
        code=code,
        agency_code=agency,
        reason=text("reason", required=True),
        due_in=minutes("due_in_minutes", 5 * 24 * 60),
        effective_from=effective_from,
        urgent=bool(data.get("urgent", False)),
        any_of_situations=codes("any_of_situations"),
        all_of_facts=codes("all_of_facts"),
        any_of_facts=codes("any_of_facts"),
        min_age=min_age,
        crisis_only=bool(data.get("crisis_only", False)),
        fallback=bool(data.get("fallback", False)),
        complete_within=minutes("complete_within_minutes", 30 * 24 * 60),
        reroute_to=reroute,
        group=text("group", limit=40),
        benefit_code=text("benefit_code", limit=40),
    )
    if problems:
        raise InvalidInput(problems)
    return rule


def rules_from_list(
    data: Iterable[Mapping[str, Any]], effective_from: date, directory: Mapping[str, object]
) -> tuple[RoutingRule, ...]:
    rules = []
    problems: list[FieldViolation] = []
    for item in data:
        try:
            rules.append(rule_from_dict(item, effective_from, directory))
        except InvalidInput as invalid:
            problems.extend(invalid.violations)
    seen: set[str] = set()
    for rule in rules:
        if rule.code in seen:
            problems.append(FieldViolation(f"rules.{rule.code}", "the same code twice"))
        seen.add(rule.code)
    if not rules and not problems:
        problems.append(FieldViolation("rules", "a rule set needs at least one rule"))
    if problems:
        raise InvalidInput(problems)
    return tuple(rules)


# -- the plan's rules ----------------------------------------------------------------------------------------


def _rule(code: str, agency: str, reason: str, due_in: timedelta, **conditions: Any) -> RoutingRule:
    return RoutingRule(code, agency, reason, due_in, PILOT_START, **conditions)


def _any(*codes: str) -> frozenset[str]:
    return frozenset(codes)


AT_ONCE = timedelta(hours=1)
WORKING_WEEK = timedelta(days=5)
BEGGING = _any("begging_with_adults")

# Order matters only within a group (first that holds) and for the order of the referrals opened.
PLAN_RULES: tuple[RoutingRule, ...] = (
    _rule(
        "CRISIS_RELIEF_STATION",
        units.CIVIL_AFFAIRS,
        "危机介入和及时庇护 crisis intervention and emergency shelter at 区民政局救助管理站",
        timedelta(hours=2),
        urgent=True,
        crisis_only=True,
    ),
    _rule(
        "MANDATORY_REPORT_POLICE",
        units.POLICE,
        "强制报告情形 mandatory-reporting situation: report to the police immediately",
        AT_ONCE,
        urgent=True,
        any_of_situations=MANDATORY_REPORTING_SITUATIONS,
    ),
    # The escort rules (护送): begging with adults first, then a child wandering alone by age and offences.
    _rule(
        "ESCORT_BEGGING_RELIEF_STATION",
        units.POLICE,
        "与成年人共同乞讨: 护送至区救助管理站进行身份甄别 escort to the district relief station for identity verification",
        AT_ONCE,
        urgent=True,
        any_of_facts=BEGGING,
        group="escort",
    ),
    _rule(
        "ESCORT_BEGGING_ORGANISED",
        units.POLICE,
        "组织乞讨: 护送至区救助管理站进行身份甄别 escort to the district relief station for identity verification",
        AT_ONCE,
        urgent=True,
        any_of_situations=_any("organised_begging"),
        group="escort",
    ),
    _rule(
        "ESCORT_SECOND_CENTRE",
        units.POLICE,
        "独自流浪、6岁以上有轻微违法行为: 护送至市第二未成年人救助保护中心 escort to the city's second centre",
        AT_ONCE,
        urgent=True,
        any_of_situations=_any("wandering"),
        all_of_facts=_any("child_alone", "minor_offences"),
        min_age=ESCORT_MIN_AGE_SECOND_CENTRE,
        group="escort",
    ),
    _rule(
        "ESCORT_RESCUE_CENTRE",
        units.POLICE,
        "独自流浪: 护送至市未成年人救助保护中心 escort to the city minor rescue and protection centre",
        AT_ONCE,
        urgent=True,
        any_of_situations=_any("wandering"),
        all_of_facts=_any("child_alone"),
        group="escort",
    ),
    # Where the escorted child is received (same order, so the destination matches the escort).
    _rule(
        "RECEIVE_RELIEF_STATION",
        units.RELIEF_STATION,
        "身份甄别 identity verification of a child found begging with adults",
        timedelta(hours=4),
        any_of_facts=BEGGING,
        group="receive",
    ),
    _rule(
        "RECEIVE_RELIEF_STATION_ORGANISED",
        units.RELIEF_STATION,
        "身份甄别 identity verification of a child found in organised begging",
        timedelta(hours=4),
        any_of_situations=_any("organised_begging"),
        group="receive",
    ),
    _rule(
        "RECEIVE_SECOND_CENTRE",
        units.CITY_SECOND_CENTRE,
        "接收独自流浪、有轻微违法行为的未成年人 receive a child of 6 or over with minor offences",
        timedelta(hours=4),
        any_of_situations=_any("wandering"),
        all_of_facts=_any("child_alone", "minor_offences"),
        min_age=ESCORT_MIN_AGE_SECOND_CENTRE,
        group="receive",
    ),
    _rule(
        "RECEIVE_RESCUE_CENTRE",
        units.CITY_RESCUE_CENTRE,
        "接收独自流浪的未成年人 receive a child found wandering alone",
        timedelta(hours=4),
        any_of_situations=_any("wandering"),
        all_of_facts=_any("child_alone"),
        group="receive",
    ),
    _rule(
        "UNKNOWN_ORIGIN_DNA",
        units.POLICE,
        "来历不明: 采血录入全国打拐DNA数据库 take a blood sample for the anti-trafficking DNA database",
        timedelta(days=1),
        any_of_situations=_any("unknown_origin_missing_trafficked"),
    ),
    _rule(
        "WANDERING_CIVIL_AFFAIRS",
        units.CIVIL_AFFAIRS,
        "流浪经历 wandering history: rescue, return and risk assessment",
        WORKING_WEEK,
        any_of_situations=_any("wandering"),
    ),
    _rule(
        "SCHOOLING_EDUCATION",
        units.EDUCATION,
        "失学辍学逃学: 学校尽快通知监护人和村(居)委会, 劝返复学 school tells the guardian and village committee",
        WORKING_WEEK,
        any_of_situations=_any("out_of_school", "poverty_dropout_risk"),
        reroute_to=units.TOWN_GOVERNMENT,
    ),
    _rule(
        "MEDICAL_HEALTH",
        units.HEALTH,
        "医疗救治: 定点医院先救治后救助 treatment first at the designated hospital",
        timedelta(hours=2),
        urgent=True,
        any_of_facts=_any("injured"),
    ),
    _rule(
        "LEGAL_AID_JUSTICE",
        units.JUSTICE,
        "法律援助; 服刑在教人员未成年子女 legal aid; children of prisoners",
        WORKING_WEEK,
        any_of_situations=_any("de_facto_unattended", "trafficked_or_illegally_employed"),
    ),
    _rule(
        "VIOLENCE_WOMENS_FEDERATION",
        units.WOMENS_FEDERATION,
        "监护不当或暴力 improper guardianship or violence: rights protection and family education",
        WORKING_WEEK,
        any_of_situations=_any("improperly_guarded", "violence_injury_signs"),
    ),
    _rule(
        "VIOLENCE_COURT",
        units.COURT,
        "家庭暴力: 人身安全保护令 protection order against domestic violence",
        timedelta(days=3),
        any_of_situations=_any("violence_injury_signs"),
    ),
    _rule(
        "GUARDIANSHIP_TOWN",
        units.TOWN_GOVERNMENT,
        "监护不当或暴力 improper guardianship or violence: guardianship guidance and assistance plan",
        WORKING_WEEK,
        any_of_situations=_any("improperly_guarded", "violence_injury_signs"),
    ),
    _rule(
        "DISABILITY_FEDERATION",
        units.DISABLED_PERSONS_FEDERATION,
        "智障或精神异常 intellectual disability or mental abnormality: rehabilitation and supervision",
        WORKING_WEEK,
        any_of_situations=_any("intellectual_or_mental"),
    ),
    _rule(
        "WORKING_AGE_HUMAN_RESOURCES",
        units.HUMAN_RESOURCES,
        "劳动年龄流浪未成年人: 就业扶持与技能培训 skills training for a working-age street minor",
        WORKING_WEEK,
        any_of_situations=_any("wandering"),
        min_age=WORKING_AGE,
    ),
    _rule(
        "POVERTY_CIVIL_AFFAIRS",
        units.CIVIL_AFFAIRS,
        "家庭贫困: 指导家庭申请基本生活费 guide the family to apply for the basic living allowance",
        WORKING_WEEK,
        any_of_situations=_any("poverty_dropout_risk"),
        benefit_code="basic_living",
    ),
    _rule(
        "DEFAULT_TOWN_ASSESSMENT",
        units.TOWN_GOVERNMENT,
        "监护情况与需求评估 guardianship and needs assessment",
        WORKING_WEEK,
        fallback=True,
    ),
)

# The rules used where a district has saved none of its own.
ROUTING_RULES = PLAN_RULES
