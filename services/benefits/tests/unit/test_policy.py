"""The classified guarantee's arithmetic, with every figure computed by hand (amounts in fen)."""

from dataclasses import replace
from datetime import date

import pytest

from platform_runtime.errors import InvalidInput
from services.benefits.domain.policy import (
    BenefitRule,
    Combine,
    Grant,
    Kind,
    Line,
    PolicyVersion,
    due_lines,
    month_lines,
    months_after,
    policy_for,
    prorated,
    sample_policy,
    validate,
)

POLICY = sample_policy("110111")
MAY = date(2024, 5, 1)  # 31 days
BORN = date(2015, 3, 9)
LONG_AGO = date(2020, 1, 1)


def amounts(lines: list[Line]) -> dict[str, int]:
    return {line.benefit_code: line.amount_fen for line in lines}


def by_month(lines: list[Line]) -> list[tuple[date, str, int]]:
    return [(line.service_month, line.benefit_code, line.amount_fen) for line in lines]


def test_a_whole_month_is_the_monthly_standard() -> None:
    (line,) = month_lines(POLICY, BORN, [Grant("BLA_ORPHAN", LONG_AGO)], MAY)
    assert (line.amount_fen, line.days, line.days_in_month) == (144_000, 31, 31)
    assert line.explanation == "BLA_ORPHAN v1: 144000 fen/month, 31/31 days"


def test_a_partial_month_is_prorated_by_calendar_days_half_up() -> None:
    # from 17 May: 15 of 31 days; 144000 × 15 / 31 = 69677.42 -> 69677
    assert amounts(month_lines(POLICY, BORN, [Grant("BLA_ORPHAN", date(2024, 5, 17))], MAY)) == {"BLA_ORPHAN": 69_677}
    # until 10 February 2024, a leap year: 10 of 29 days; 120000 × 10 / 29 = 41379.31 -> 41379
    grant = Grant("BLA_DISABLED", date(2023, 1, 1), date(2024, 2, 10))
    assert amounts(month_lines(POLICY, BORN, [grant], date(2024, 2, 1))) == {"BLA_DISABLED": 41_379}
    # 0.5 and 1.5 round up, 1.25 down
    assert (prorated(1, 1, 2), prorated(3, 1, 2), prorated(5, 1, 4)) == (1, 2, 1)


def test_a_policy_may_pay_a_whole_month_for_any_day() -> None:
    rules = tuple(replace(r, prorate=False) if r.code == "BLA_POOR" else r for r in POLICY.rules)
    (line,) = month_lines(replace(POLICY, rules=rules), BORN, [Grant("BLA_POOR", date(2024, 5, 31))], MAY)
    assert (line.amount_fen, line.explanation) == (80_000, "BLA_POOR v1: 80000 fen/month, whole month")


def test_several_bases_pay_the_higher_standard_not_the_sum() -> None:
    grants = [Grant("BLA_ORPHAN", LONG_AGO), Grant("BLA_POOR", LONG_AGO)]
    (line,) = month_lines(POLICY, BORN, grants, MAY)
    assert (line.benefit_code, line.amount_fen) == ("BLA_ORPHAN", 144_000)
    assert line.explanation.endswith("the higher standard, instead of BLA_POOR")


def test_the_higher_standard_is_compared_after_pro_rating() -> None:
    # orphan from 17 May: 69677; poor family for the whole month: 80000 -> the poor-family base is the higher
    grants = [Grant("BLA_ORPHAN", date(2024, 5, 17)), Grant("BLA_POOR", LONG_AGO)]
    assert amounts(month_lines(POLICY, BORN, grants, MAY)) == {"BLA_POOR": 80_000}


def test_a_base_the_policy_adds_is_paid_on_top() -> None:
    rules = tuple(replace(r, combine=Combine.ADD) if r.code == "BLA_POOR" else r for r in POLICY.rules)
    grants = [Grant("BLA_ORPHAN", LONG_AGO), Grant("BLA_POOR", LONG_AGO)]
    lines = month_lines(replace(POLICY, rules=rules), BORN, grants, MAY)
    assert amounts(lines) == {"BLA_ORPHAN": 144_000, "BLA_POOR": 80_000}


def test_supplements_stack_on_their_base() -> None:
    grants = [Grant(code, LONG_AGO) for code in ("BLA_DISABLED", "NURSING", "NUTRITION")]
    lines = month_lines(POLICY, BORN, grants, MAY)
    assert amounts(lines) == {"BLA_DISABLED": 120_000, "NURSING": 30_000, "NUTRITION": 20_000}
    assert sum(line.amount_fen for line in lines) == 170_000


def test_a_supplement_without_its_base_is_not_paid_and_follows_the_base_days() -> None:
    assert month_lines(POLICY, BORN, [Grant("NURSING", LONG_AGO)], MAY) == []
    # the base from 17 May, 15 of 31 days: 120000 × 15/31 = 58064.52 -> 58065; 30000 × 15/31 = 14516.13 -> 14516
    grants = [Grant("BLA_DISABLED", date(2024, 5, 17)), Grant("NURSING", LONG_AGO)]
    assert amounts(month_lines(POLICY, BORN, grants, MAY)) == {"BLA_DISABLED": 58_065, "NURSING": 14_516}


def test_a_supplement_stays_when_its_base_is_outdone_by_a_higher_one() -> None:
    # a severely disabled orphan: the orphan standard (144000) replaces the disability one (120000), nursing stays
    grants = [Grant(code, LONG_AGO) for code in ("BLA_ORPHAN", "BLA_DISABLED", "NURSING")]
    assert amounts(month_lines(POLICY, BORN, grants, MAY)) == {"BLA_ORPHAN": 144_000, "NURSING": 30_000}


def test_cover_ends_the_day_before_the_eighteenth_birthday() -> None:
    # born 20 May 2006: 18 on 20 May 2024, paid 1–19 May: 144000 × 19 / 31 = 88258.06 -> 88258
    born = date(2006, 5, 20)
    assert amounts(month_lines(POLICY, born, [Grant("BLA_ORPHAN", LONG_AGO)], MAY)) == {"BLA_ORPHAN": 88_258}
    assert month_lines(POLICY, born, [Grant("BLA_ORPHAN", LONG_AGO)], date(2024, 6, 1)) == []


def test_a_leap_day_child_turns_eighteen_on_the_first_of_march() -> None:
    born = date(2008, 2, 29)
    grants = [Grant("BLA_ORPHAN", LONG_AGO)]
    assert amounts(month_lines(POLICY, born, grants, date(2026, 2, 1))) == {"BLA_ORPHAN": 144_000}
    assert month_lines(POLICY, born, grants, date(2026, 3, 1)) == []


def test_a_minimum_age_counts_from_the_birth_date() -> None:
    # a base from the age of 30 days: born 10 May 2024 -> from 9 June, 22 of 30 days: 80000 × 22/30 = 58666.67 -> 58667
    rules = tuple(replace(r, min_age_days=30) if r.code == "BLA_POOR" else r for r in POLICY.rules)
    policy = replace(POLICY, rules=rules)
    grants = [Grant("BLA_POOR", LONG_AGO)]
    assert month_lines(policy, date(2024, 5, 10), grants, MAY) == []
    assert amounts(month_lines(policy, date(2024, 5, 10), grants, date(2024, 6, 1))) == {"BLA_POOR": 58_667}


def test_no_birth_date_no_payment() -> None:
    assert month_lines(POLICY, None, [Grant("BLA_ORPHAN", LONG_AGO)], MAY) == []


def test_a_retroactive_approval_brings_arrears_from_its_start() -> None:
    # approved in May from 15 February 2024 (a leap year): 15 of 29 days, 144000 × 15/29 = 74482.76 -> 74483
    lines = due_lines([POLICY], BORN, [Grant("BLA_ORPHAN", date(2024, 2, 15))], MAY)
    assert by_month(lines) == [
        (date(2024, 2, 1), "BLA_ORPHAN", 74_483),
        (date(2024, 3, 1), "BLA_ORPHAN", 144_000),
        (date(2024, 4, 1), "BLA_ORPHAN", 144_000),
        (date(2024, 5, 1), "BLA_ORPHAN", 144_000),
    ]
    assert sum(line.amount_fen for line in lines) == 506_483


def test_arrears_reach_back_only_as_far_as_the_policy_says_and_each_month_uses_its_own_version() -> None:
    first = replace(POLICY, arrears_months=2, effective_until=date(2024, 3, 31))
    raised = tuple(replace(r, amount_fen=150_000) if r.code == "BLA_ORPHAN" else r for r in POLICY.rules)
    second = replace(POLICY, version=2, effective_from=date(2024, 4, 1), rules=raised, arrears_months=2)
    lines = due_lines([first, second], BORN, [Grant("BLA_ORPHAN", date(2023, 1, 1))], MAY)
    assert by_month(lines) == [
        (date(2024, 3, 1), "BLA_ORPHAN", 144_000),
        (date(2024, 4, 1), "BLA_ORPHAN", 150_000),
        (date(2024, 5, 1), "BLA_ORPHAN", 150_000),
    ]
    assert lines[0].explanation.startswith("BLA_ORPHAN v1") and lines[2].explanation.startswith("BLA_ORPHAN v2")


def test_the_version_in_effect_is_chosen_by_date() -> None:
    second = replace(POLICY, version=2, effective_from=date(2024, 4, 1))
    assert policy_for(date(2024, 3, 31), [POLICY, second]) is POLICY
    assert policy_for(date(2024, 4, 1), [POLICY, second]) is second
    assert policy_for(date(2023, 12, 31), [POLICY, second]) is None


def test_insurance_is_not_a_monthly_payment() -> None:
    assert month_lines(POLICY, date(2024, 1, 1), [Grant("INFANT_INSURANCE_0_3", LONG_AGO)], MAY) == []


def test_the_sample_policy_is_valid_and_marked_as_sample() -> None:
    validate(POLICY)
    assert POLICY.sample


def test_a_bad_policy_is_refused_with_every_problem() -> None:
    bad = PolicyVersion(
        district="11011",
        version=1,
        effective_from=date(2024, 2, 1),
        effective_until=date(2024, 1, 1),
        rules=(
            BenefitRule("A", "a", Kind.BASE, -1, "f"),
            BenefitRule("A", "", Kind.SUPPLEMENT, 10, "f", stacks_on=("NOPE",)),
        ),
    )
    with pytest.raises(InvalidInput) as refused:
        validate(bad)
    fields = {violation.field for violation in refused.value.violations}
    assert fields == {
        "district",
        "effective_until",
        "rules",
        "rules[0].amount_fen",
        "rules[1].name",
        "rules[1].stacks_on",
    }


def test_working_days_skip_weekends_and_holidays() -> None:
    from services.benefits.domain.applications import add_working_days, missing_documents

    # Friday 3 May 2024 + 15 working days = Friday 24 May; with Monday 6 May a holiday, Monday 27 May
    assert add_working_days(date(2024, 5, 3), 15) == date(2024, 5, 24)
    assert add_working_days(date(2024, 5, 3), 15, {date(2024, 5, 6)}) == date(2024, 5, 27)
    assert add_working_days(date(2024, 5, 4), 1) == date(2024, 5, 6)  # Saturday -> Monday
    assert missing_documents(["a", "b", "c"], ["b"]) == ["a", "c"]


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2024, 3, 1), 12, date(2025, 3, 1)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # a shorter month: its last day
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 11, 15), 3, date(2025, 2, 15)),
    ],
)
def test_a_review_cycle_counts_calendar_months(day, months, expected):
    assert months_after(day, months) == expected


def test_a_review_cycle_is_between_one_and_sixty_months():
    rule = replace(POLICY.rules[0], review_months=0)
    with pytest.raises(InvalidInput) as problems:
        validate(replace(POLICY, rules=(rule, *POLICY.rules[1:])))
    assert [v.field for v in problems.value.violations] == ["rules[0].review_months"]
