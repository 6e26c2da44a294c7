"""The policy catalogue of the classified guarantee (儿童福利分类保障) and the monthly amount it yields.

A district's policy is versioned data with effective dates: which benefits exist, their monthly standard in
integer fen, the ages they cover, which supplements stack on which base, and how several bases combine (by
default only the higher standard is paid, not the sum). Amounts here are pure arithmetic on dates and fen;
nothing in this module reads a clock or a database, so every figure can be computed by hand in a test.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from platform_runtime.errors import FieldViolation, InvalidInput
from services.benefits.domain.insurance import anniversary


class Kind(StrEnum):
    BASE = "base"  # a basic living allowance (基本生活费) standard
    SUPPLEMENT = "supplement"  # paid only on days the child also qualifies for one of its bases
    INSURANCE = "insurance"  # a yearly premium bought for the child, not paid to the family


class Combine(StrEnum):
    HIGHER = "higher"  # among bases, only the highest amount of the month is paid
    ADD = "add"  # this base is paid on top of the others (the policy says so)


@dataclass(frozen=True)
class BenefitRule:
    code: str
    name: str
    kind: Kind
    amount_fen: int  # monthly standard; for insurance the yearly premium
    fund: str  # the budget line the money comes from, for the finance bureau's supervision
    min_age_days: int = 0
    max_age_years: int | None = 18  # cover ends the day before this birthday
    stacks_on: tuple[str, ...] = ()  # supplements: the bases they are paid with
    combine: Combine = Combine.HIGHER
    prorate: bool = True  # partial months paid by calendar days; otherwise a whole month for any day
    categories: tuple[str, ...] = ()  # register categories (困境类别) that qualify; ending them all suspends it
    documents: tuple[str, ...] = ()  # the application's documents checklist (申报材料)
    review_months: int = 12  # an approved entitlement is reviewed (复核) this often; yearly unless the policy says


@dataclass(frozen=True)
class PolicyVersion:
    district: str
    version: int
    effective_from: date
    effective_until: date | None  # last day in effect; None while in force
    rules: tuple[BenefitRule, ...]
    sample: bool = False  # demo amounts, not a district's real standards
    arrears_months: int = 12  # how far back a retroactive approval is paid
    rule_by_code: dict[str, BenefitRule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule_by_code", {rule.code: rule for rule in self.rules})

    def in_effect(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_until is None or day <= self.effective_until)


def validate(policy: PolicyVersion) -> None:
    """Every problem with a policy at once; a policy that passes can be computed with."""
    problems: list[FieldViolation] = []
    if len(policy.district) != 6 or not policy.district.isdigit():
        problems.append(FieldViolation("district", "a district is a 6-digit division code"))
    if policy.effective_until is not None and policy.effective_until < policy.effective_from:
        problems.append(FieldViolation("effective_until", "ends before it starts"))
    if not 0 <= policy.arrears_months <= 60:
        problems.append(FieldViolation("arrears_months", "between 0 and 60"))
    codes = [rule.code for rule in policy.rules]
    if not codes:
        problems.append(FieldViolation("rules", "a policy has at least one benefit"))
    if len(set(codes)) != len(codes):
        problems.append(FieldViolation("rules", "benefit codes must be unique"))
    bases = {rule.code for rule in policy.rules if rule.kind is Kind.BASE}
    for index, rule in enumerate(policy.rules):
        where = f"rules[{index}]"
        if not rule.code or not rule.code.replace("_", "").isalnum() or len(rule.code) > 40:
            problems.append(FieldViolation(f"{where}.code", "letters, digits and _ (at most 40)"))
        if not rule.name.strip():
            problems.append(FieldViolation(f"{where}.name", "required"))
        if not isinstance(rule.amount_fen, int) or not 0 <= rule.amount_fen <= 10_000_000:
            problems.append(FieldViolation(f"{where}.amount_fen", "whole fen between 0 and 100,000 yuan"))
        if not rule.fund.strip():
            problems.append(FieldViolation(f"{where}.fund", "required"))
        if rule.min_age_days < 0 or (rule.max_age_years is not None and not 0 < rule.max_age_years <= 25):
            problems.append(FieldViolation(f"{where}.age", "ages must be positive (at most 25 years)"))
        if not 1 <= rule.review_months <= 60:
            problems.append(FieldViolation(f"{where}.review_months", "between 1 and 60 months"))
        if rule.kind is Kind.SUPPLEMENT and not rule.stacks_on:
            problems.append(FieldViolation(f"{where}.stacks_on", "a supplement names the bases it stacks on"))
        if rule.kind is not Kind.SUPPLEMENT and rule.stacks_on:
            problems.append(FieldViolation(f"{where}.stacks_on", "only supplements stack on a base"))
        for base in rule.stacks_on:
            if base not in bases:
                problems.append(FieldViolation(f"{where}.stacks_on", f"{base} is not a base of this policy"))
    if problems:
        raise InvalidInput(problems)


def policy_for(day: date, policies: Iterable[PolicyVersion]) -> PolicyVersion | None:
    """The version in effect on `day` (the latest to start, when versions overlap)."""
    in_effect = [policy for policy in policies if policy.in_effect(day)]
    return max(in_effect, key=lambda policy: (policy.effective_from, policy.version), default=None)


# -- months and days --------------------------------------------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_after(day: date, count: int) -> date:
    """`day` moved `count` months on, clamped to the end of a shorter month (31 January + 1 = 28/29 February)."""
    month = add_months(month_start(day), count)
    return month.replace(day=min(day.day, month_end(month).day))


def months_between(first: date, last: date) -> list[date]:
    """The first days of every month from `first`'s to `last`'s, both included."""
    months, month = [], month_start(first)
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return months


def prorated(amount_fen: int, days: int, days_in_month: int) -> int:
    """amount × days / days in month, rounded half up to the fen (integers only)."""
    return (2 * amount_fen * days + days_in_month) // (2 * days_in_month)


# -- the computation ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """An approved entitlement period of one child to one benefit (both days included)."""

    benefit_code: str
    starts_on: date
    ends_on: date | None = None


@dataclass(frozen=True)
class Line:
    """What is due to one child for one benefit for one month, and why."""

    benefit_code: str
    service_month: date
    amount_fen: int
    days: int
    days_in_month: int
    explanation: str


def _days(rule: BenefitRule, grant: Grant, birth_date: date, month: date) -> set[int]:
    """The days (as ordinals) of `month` the grant and the rule's ages both cover."""
    first = max(month, grant.starts_on, birth_date + timedelta(days=rule.min_age_days))
    last = month_end(month)
    if grant.ends_on is not None:
        last = min(last, grant.ends_on)
    if rule.max_age_years is not None:
        last = min(last, anniversary(birth_date, rule.max_age_years) - timedelta(days=1))
    return set(range(first.toordinal(), last.toordinal() + 1))


def _amount(rule: BenefitRule, days: int, days_in_month: int) -> int:
    if days == 0:
        return 0
    return prorated(rule.amount_fen, days, days_in_month) if rule.prorate else rule.amount_fen


def month_lines(policy: PolicyVersion, birth_date: date | None, grants: Sequence[Grant], month: date) -> list[Line]:
    """The amounts due for `month` (its first day) under `policy`; benefits with nothing due are left out.

    Bases combine by the higher monthly amount (after pro-rating) unless a base says `add`; a supplement is
    paid for the days the child also qualifies for one of its bases, even when that base is outdone by a
    higher one (a severely disabled orphan keeps the nursing subsidy). Insurance is not a monthly payment.
    """
    if birth_date is None:
        return []
    days_in_month = month_end(month).day
    eligible: dict[str, set[int]] = {}
    for grant in grants:
        rule = policy.rule_by_code.get(grant.benefit_code)
        if rule is None or rule.kind is Kind.INSURANCE:
            continue
        eligible.setdefault(rule.code, set()).update(_days(rule, grant, birth_date, month))

    def line(rule: BenefitRule, days: int, why: str) -> Line:
        share = f"{days}/{days_in_month} days" if rule.prorate else "whole month"
        text = f"{rule.code} v{policy.version}: {rule.amount_fen} fen/month, {share}{why}"
        return Line(rule.code, month, _amount(rule, days, days_in_month), days, days_in_month, text)

    lines: list[Line] = []
    bases = [policy.rule_by_code[code] for code in sorted(eligible) if policy.rule_by_code[code].kind is Kind.BASE]
    higher = [line(rule, len(eligible[rule.code]), "") for rule in bases if rule.combine is Combine.HIGHER]
    if higher:
        best = max(higher, key=lambda candidate: candidate.amount_fen)  # first in code order on a tie
        outdone = [other.benefit_code for other in higher if other is not best and other.amount_fen]
        why = f"; the higher standard, instead of {', '.join(outdone)}" if outdone else ""
        lines.append(line(policy.rule_by_code[best.benefit_code], best.days, why))
    lines += [
        line(rule, len(eligible[rule.code]), "; added to the base") for rule in bases if rule.combine is Combine.ADD
    ]
    for code in sorted(eligible):
        rule = policy.rule_by_code[code]
        if rule.kind is not Kind.SUPPLEMENT:
            continue
        with_base: set[int] = set()
        for base in rule.stacks_on:
            with_base |= eligible.get(base, set())
        days = eligible[code] & with_base
        lines.append(line(rule, len(days), f"; stacked on {'/'.join(rule.stacks_on)}"))
    return [entry for entry in lines if entry.amount_fen > 0]


def due_lines(
    policies: Sequence[PolicyVersion], birth_date: date | None, grants: Sequence[Grant], period: date
) -> list[Line]:
    """Everything due up to the run's month `period`: that month, and the months before it a retroactive
    approval reaches back to (arrears), each under the policy in effect on that month's first day."""
    current = policy_for(period, policies)
    if current is None or not grants:
        return []
    earliest = max(min(grant.starts_on for grant in grants), add_months(period, -current.arrears_months))
    lines: list[Line] = []
    for month in months_between(earliest, period):
        policy = policy_for(month, policies)
        if policy is not None:
            lines += month_lines(policy, birth_date, grants, month)
    return lines


# -- sample data -------------------------------------------------------------------------------------------

# Demo standards only (sample=True): the pilot plan names no amounts. 1,440 yuan a month is the national
# average for orphans and de-facto unattended children in Q3 2023; the others are made up for the demo.
BASIC_LIVING = "basic_living"
SUPPLEMENTS = "supplements"
INSURANCE_FUND = "infant_insurance"
APPLY = ("申请书", "户口簿", "监护人身份证明")


def sample_policy(district: str, effective_from: date = date(2024, 1, 1)) -> PolicyVersion:
    return PolicyVersion(
        district=district,
        version=1,
        effective_from=effective_from,
        effective_until=None,
        sample=True,
        rules=(
            BenefitRule(
                "BLA_ORPHAN", "孤儿基本生活费", Kind.BASE, 144_000, BASIC_LIVING, documents=(*APPLY, "父母死亡证明")
            ),
            BenefitRule(
                "BLA_NO_CARE",
                "事实无人抚养儿童基本生活费",
                Kind.BASE,
                144_000,
                BASIC_LIVING,
                categories=("de_facto_unattended_mca_2019", "de_facto_unattended"),
                documents=(*APPLY, "父母情况证明"),
            ),
            BenefitRule(
                "BLA_DISABLED",
                "重残儿童基本生活费",
                Kind.BASE,
                120_000,
                BASIC_LIVING,
                categories=("national_own_disability",),
                documents=(*APPLY, "残疾证"),
            ),
            BenefitRule(
                "BLA_ILL", "重病儿童基本生活费", Kind.BASE, 120_000, BASIC_LIVING, documents=(*APPLY, "诊断证明")
            ),
            BenefitRule(
                "BLA_STREET",
                "流浪儿童基本生活费",
                Kind.BASE,
                100_000,
                BASIC_LIVING,
                categories=("wandering",),
                documents=APPLY,
            ),
            BenefitRule(
                "BLA_POOR",
                "低保低收入家庭儿童基本生活费",
                Kind.BASE,
                80_000,
                BASIC_LIVING,
                categories=("poverty", "national_family_poverty"),
                documents=(*APPLY, "低保或低收入证明"),
            ),
            BenefitRule(
                "NURSING",
                "家庭护理补贴",
                Kind.SUPPLEMENT,
                30_000,
                SUPPLEMENTS,
                stacks_on=("BLA_DISABLED",),
                documents=(*APPLY, "残疾证"),
            ),
            BenefitRule(
                "NUTRITION",
                "营养补贴",
                Kind.SUPPLEMENT,
                20_000,
                SUPPLEMENTS,
                stacks_on=("BLA_DISABLED", "BLA_ILL"),
                documents=APPLY,
            ),
            BenefitRule(
                "REHAB",
                "医疗康复补贴",
                Kind.SUPPLEMENT,
                50_000,
                SUPPLEMENTS,
                stacks_on=("BLA_ILL",),
                documents=(*APPLY, "诊断证明"),
            ),
            BenefitRule(
                "INFANT_INSURANCE_0_3",
                "0-3岁户籍婴幼儿重大疾病和意外伤害保险",
                Kind.INSURANCE,
                4_500,
                INSURANCE_FUND,
                min_age_days=30,
                max_age_years=3,
                categories=("infant_0_3_local",),
            ),
        ),
    )
