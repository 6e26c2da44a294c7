from datetime import date, timedelta

import pytest

from services.benefits.domain.insurance import (
    INSURANCE_POLICIES,
    Child,
    Decision,
    Ineligible,
    InsurancePolicy,
    anniversary,
    decide,
    is_local,
)

TENANT = "110111008"  # 良乡, Fangshan district 110111
LOCAL = "110111008001"
BORN = date(2023, 3, 15)
THIRD_BIRTHDAY = date(2026, 3, 15)


def on(
    day: date,
    birth_date: date | None = BORN,
    household: str = LOCAL,
    policies: tuple[InsurancePolicy, ...] = INSURANCE_POLICIES,
) -> Decision:
    return decide(Child(birth_date, household), TENANT, day, policies)


# --- the minimum age: 30 days ---------------------------------------------------------------------------


def test_a_child_29_days_old_is_too_young():
    decision = on(BORN + timedelta(days=29))
    assert not decision.eligible
    assert decision.ineligible is Ineligible.TOO_YOUNG
    assert decision.covered_until is None


def test_a_child_30_days_old_is_insured_until_the_day_before_the_third_birthday():
    decision = on(BORN + timedelta(days=30))
    assert decision.eligible
    assert decision.policy_code == "INFANT_INSURANCE_0_3"
    assert decision.covered_until == date(2026, 3, 14)


def test_a_newborn_is_too_young():
    assert on(BORN).ineligible is Ineligible.TOO_YOUNG


# --- the maximum age: the third birthday ends cover -----------------------------------------------------


def test_the_day_before_the_third_birthday_is_still_insured():
    decision = on(THIRD_BIRTHDAY - timedelta(days=1))
    assert decision.eligible
    assert decision.covered_until == THIRD_BIRTHDAY - timedelta(days=1)


def test_on_the_third_birthday_the_child_is_too_old():
    assert on(THIRD_BIRTHDAY).ineligible is Ineligible.TOO_OLD


def test_the_day_after_the_third_birthday_the_child_is_too_old():
    assert on(THIRD_BIRTHDAY + timedelta(days=1)).ineligible is Ineligible.TOO_OLD


def test_a_29_february_child_is_covered_to_28_february_of_the_third_year():
    born = date(2024, 2, 29)
    assert anniversary(born, 3) == date(2027, 3, 1)
    assert on(date(2024, 6, 1), birth_date=born).covered_until == date(2027, 2, 28)


# --- local household registration -----------------------------------------------------------------------


@pytest.mark.parametrize("household", ["110111009002", "110111008", "110111"])
def test_registration_anywhere_in_the_district_is_local(household):
    assert is_local(household, TENANT)
    assert on(BORN + timedelta(days=60), household=household).eligible


@pytest.mark.parametrize("household", ["110112001001", "130102001001", ""])
def test_registration_outside_the_district_or_unknown_is_not_local(household):
    assert on(BORN + timedelta(days=60), household=household).ineligible is Ineligible.NOT_LOCAL


def test_an_unknown_birth_date_cannot_be_decided():
    assert on(date(2024, 1, 1), birth_date=None).ineligible is Ineligible.NO_BIRTH_DATE


# --- effective-dated policy data ------------------------------------------------------------------------


def test_no_policy_before_the_first_one_took_effect():
    decision = on(date(2013, 12, 31), birth_date=date(2013, 6, 1))
    assert decision.ineligible is Ineligible.NO_POLICY
    assert decision.policy_code == ""


def test_the_policy_in_effect_on_the_day_decides():
    old = InsurancePolicy("OLD", "old", date(2014, 1, 1), date(2023, 12, 31), 30, 3)
    new = InsurancePolicy("NEW", "new", date(2024, 1, 1), None, 0, 6)
    policies = (old, new)
    assert on(date(2023, 12, 31), policies=policies).policy_code == "OLD"
    decision = on(date(2024, 1, 1), birth_date=date(2023, 12, 31), policies=policies)
    assert decision.policy_code == "NEW"
    assert decision.covered_until == date(2029, 12, 30)
