"""The 0–3 insurance (重大疾病和意外伤害保险): who is insured, and until when.

The plan insures every child aged 0–3 with local household registration (全区所有0-3岁户籍婴幼儿). Ages and
dates are policy data with effective dates, so a district can change them from a given day; the policy in
effect on the day the child is registered decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


@dataclass(frozen=True)
class InsurancePolicy:
    code: str
    name: str
    effective_from: date
    effective_until: date | None  # last day in effect; None while in force
    min_age_days: int
    max_age_years: int

    def in_effect(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_until is None or day <= self.effective_until)


# Fangshan's published terms (2016–17): children with local household registration, 30 days to 3 years.
INSURANCE_POLICIES: tuple[InsurancePolicy, ...] = (
    InsurancePolicy(
        code="INFANT_INSURANCE_0_3",
        name="0-3岁户籍婴幼儿重大疾病和意外伤害保险",
        effective_from=date(2014, 1, 1),
        effective_until=None,
        min_age_days=30,
        max_age_years=3,
    ),
)


class Ineligible(StrEnum):
    NO_POLICY = "no_policy_in_effect"
    NO_BIRTH_DATE = "birth_date_unknown"
    NOT_LOCAL = "household_registration_not_local"
    TOO_YOUNG = "younger_than_minimum_age"
    TOO_OLD = "reached_maximum_age"


@dataclass(frozen=True)
class Child:
    birth_date: date | None
    household_division_code: str


@dataclass(frozen=True)
class Decision:
    policy_code: str
    covered_until: date | None  # set when eligible: the day before the birthday that ends cover
    ineligible: Ineligible | None = None

    @property
    def eligible(self) -> bool:
        return self.ineligible is None


def anniversary(birth_date: date, years: int) -> date:
    """The `years`-th birthday; a 29 February child has it on 1 March in common years."""
    try:
        return birth_date.replace(year=birth_date.year + years)
    except ValueError:
        return date(birth_date.year + years, 3, 1)


def is_local(household_division_code: str, tenant: str) -> bool:
    """Local household registration (户籍) means registered in the tenant's district (its first 6 digits)."""
    return household_division_code.startswith(tenant[:6])


def policy_in_effect(day: date, policies: Iterable[InsurancePolicy] = INSURANCE_POLICIES) -> InsurancePolicy | None:
    in_effect = [policy for policy in policies if policy.in_effect(day)]
    return max(in_effect, key=lambda policy: policy.effective_from, default=None)


def decide(child: Child, tenant: str, day: date, policies: Iterable[InsurancePolicy] = INSURANCE_POLICIES) -> Decision:
    """Whether the child is insured on `day` (the registration day), and until when."""
    policy = policy_in_effect(day, policies)
    if policy is None:
        return Decision("", None, Ineligible.NO_POLICY)
    if child.birth_date is None:
        return Decision(policy.code, None, Ineligible.NO_BIRTH_DATE)
    if not is_local(child.household_division_code, tenant):
        return Decision(policy.code, None, Ineligible.NOT_LOCAL)
    if day < child.birth_date + timedelta(days=policy.min_age_days):
        return Decision(policy.code, None, Ineligible.TOO_YOUNG)
    ends = anniversary(child.birth_date, policy.max_age_years)
    if day >= ends:
        return Decision(policy.code, None, Ineligible.TOO_OLD)
    return Decision(policy.code, ends - timedelta(days=1))
