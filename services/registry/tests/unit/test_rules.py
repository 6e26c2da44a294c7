"""Derived categories, case by case against the definitions (民发〔2019〕62号 and its 2020 extension,
the pilot plan's 0-3 insurance, the age of majority)."""

import json
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from services.registry.domain.codes import (
    DifficultyCategory,
    DisabilityGrade,
    DisabilityType,
    GuardianStatus,
    Relationship,
)
from services.registry.domain.errors import Conflict, InvalidInput
from services.registry.domain.rules import (
    DEFAULT_RULES,
    ChildSnapshot,
    DerivedCategory,
    ParentSnapshot,
    RuleDefinition,
    add_months,
    age_in_years,
    anniversary,
    check_rule_set,
    evaluate,
)

ON = date(2024, 6, 1)
DISTRICT = "110111"
S = GuardianStatus
DFU = DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019
INFANT = DifficultyCategory.INFANT_0_3_LOCAL
AGEING = DifficultyCategory.AGEING_OUT


def father(status: GuardianStatus = S.NORMAL, since: date | None = None, **more: Any) -> ParentSnapshot:
    return ParentSnapshot(Relationship.FATHER, status, since, **more)


def mother(status: GuardianStatus = S.NORMAL, since: date | None = None, **more: Any) -> ParentSnapshot:
    return ParentSnapshot(Relationship.MOTHER, status, since, **more)


def child(
    *parents: ParentSnapshot, born: date = date(2015, 3, 10), registration: str | None = "110111008"
) -> ChildSnapshot:
    return ChildSnapshot(
        birth_date=born, household_registration_code=registration, district_code=DISTRICT, parents=parents
    )


def derived(
    snapshot: ChildSnapshot, on: date = ON, rules: tuple[RuleDefinition, ...] = DEFAULT_RULES
) -> dict[DifficultyCategory, DerivedCategory]:
    return {d.category: d for d in evaluate(rules, snapshot, on)}


def is_de_facto_unattended(*parents: ParentSnapshot, on: date = ON) -> bool:
    return DFU in derived(child(*parents), on)


LONG_AGO = date(2023, 1, 1)  # well over 6 months before ON


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2024, 1, 15), 6, date(2024, 7, 15)),
        (date(2023, 8, 31), 6, date(2024, 2, 29)),  # leap year: end of February
        (date(2024, 8, 31), 6, date(2025, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 6, 1), -6, date(2023, 12, 1)),
        (date(2008, 2, 29), 12 * 18, date(2026, 2, 28)),
    ],
)
def test_add_months_clamps_to_the_end_of_shorter_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_age_and_anniversaries_of_a_leap_day_birth() -> None:
    born = date(2008, 2, 29)
    assert anniversary(born, 1) == date(2009, 2, 28)
    assert anniversary(born, 4) == date(2012, 2, 29)
    assert age_in_years(born, date(2009, 2, 27)) == 0
    assert age_in_years(born, date(2009, 2, 28)) == 1
    assert age_in_years(born, date(2026, 2, 27)) == 17
    assert age_in_years(born, date(2026, 2, 28)) == 18


# --- 事实无人抚养: both parents in a listed situation --------------------------------------------


def test_both_parents_normal_is_not_de_facto_unattended() -> None:
    assert not is_de_facto_unattended(father(), mother())


def test_both_parents_imprisoned_for_6_months_or_more() -> None:
    result = derived(child(father(S.IMPRISONED_OR_DETAINED, LONG_AGO), mother(S.IMPRISONED_OR_DETAINED, LONG_AGO)))
    assert result[DFU].rule_code == "DFU-2020-125"
    assert result[DFU].reason.startswith("both parents")
    assert "父亲" in result[DFU].reason and "母亲" in result[DFU].reason


def test_imprisonment_counts_from_exactly_6_months_after_it_started() -> None:
    other = mother(S.MISSING, LONG_AGO)
    assert is_de_facto_unattended(father(S.IMPRISONED_OR_DETAINED, date(2023, 12, 1)), other)
    assert not is_de_facto_unattended(father(S.IMPRISONED_OR_DETAINED, date(2023, 12, 2)), other)


def test_a_sentence_of_6_months_or_more_counts_from_its_first_day() -> None:
    other = mother(S.MISSING, LONG_AGO)
    started = date(2024, 5, 20)
    five_years = father(S.IMPRISONED_OR_DETAINED, started, status_until=date(2029, 5, 19))
    exactly_six_months = father(S.IMPRISONED_OR_DETAINED, started, status_until=date(2024, 11, 20))
    five_months = father(S.IMPRISONED_OR_DETAINED, started, status_until=date(2024, 10, 20))
    assert is_de_facto_unattended(five_years, other)
    assert is_de_facto_unattended(exactly_six_months, other)
    assert not is_de_facto_unattended(five_months, other)


def test_compulsory_drug_rehabilitation_of_6_months_or_more() -> None:
    other = mother(S.IMPRISONED_OR_DETAINED, LONG_AGO)
    assert is_de_facto_unattended(father(S.COMPULSORY_DRUG_REHAB, LONG_AGO), other)
    # The statutory order is two years: with its end date recorded it counts at once.
    two_year_order = father(S.COMPULSORY_DRUG_REHAB, date(2024, 5, 1), status_until=date(2026, 5, 1))
    assert is_de_facto_unattended(two_year_order, other)
    assert not is_de_facto_unattended(father(S.COMPULSORY_DRUG_REHAB, date(2024, 5, 1)), other)
    assert not is_de_facto_unattended(father(S.COMPULSORY_DRUG_REHAB, None), other)


def test_missing_counts_after_6_months_without_contact() -> None:
    other = mother(S.SERIOUSLY_ILL)
    assert is_de_facto_unattended(father(S.MISSING, date(2023, 12, 1)), other)
    assert not is_de_facto_unattended(father(S.MISSING, date(2023, 12, 2)), other)
    assert not is_de_facto_unattended(father(S.MISSING, None), other)  # cannot tell how long


def test_missing_since_the_31st_counts_on_the_last_day_of_february() -> None:
    parents = (father(S.MISSING, date(2023, 8, 31)), mother(S.MISSING, date(2023, 8, 31)))
    assert not is_de_facto_unattended(*parents, on=date(2024, 2, 28))
    assert is_de_facto_unattended(*parents, on=date(2024, 2, 29))


@pytest.mark.parametrize(
    ("disability_type", "grade", "qualifies"),
    [
        (DisabilityType.PHYSICAL, DisabilityGrade.GRADE_1, True),
        (DisabilityType.VISUAL, DisabilityGrade.GRADE_2, True),
        (DisabilityType.HEARING, DisabilityGrade.GRADE_3, False),
        (DisabilityType.MULTIPLE, DisabilityGrade.GRADE_3, False),
        (DisabilityType.MENTAL, DisabilityGrade.GRADE_3, True),
        (DisabilityType.INTELLECTUAL, DisabilityGrade.GRADE_4, True),
        (DisabilityType.MENTAL, DisabilityGrade.GRADE_4, True),
    ],
)
def test_severe_disability_is_grade_1_2_or_3_4_for_mental_and_intellectual(
    disability_type: DisabilityType, grade: DisabilityGrade, qualifies: bool
) -> None:
    disabled = father(S.SEVERELY_DISABLED, LONG_AGO, disability_type=disability_type, disability_grade=grade)
    assert is_de_facto_unattended(disabled, mother(S.IMPRISONED_OR_DETAINED, LONG_AGO)) is qualifies


def test_severely_disabled_status_without_a_grade_is_not_enough() -> None:
    assert not is_de_facto_unattended(father(S.SEVERELY_DISABLED, LONG_AGO), mother(S.MISSING, LONG_AGO))


def test_disability_counts_whatever_the_status_field_says() -> None:
    disabled = father(disability_type=DisabilityType.PHYSICAL, disability_grade=DisabilityGrade.GRADE_1)
    assert is_de_facto_unattended(disabled, mother(S.MISSING, LONG_AGO))


def test_serious_illness_by_status_or_by_flag() -> None:
    other = mother(S.MISSING, LONG_AGO)
    assert is_de_facto_unattended(father(S.SERIOUSLY_ILL), other)
    assert is_de_facto_unattended(father(seriously_ill=True), other)


def test_a_status_dated_in_the_future_does_not_count_yet() -> None:
    assert not is_de_facto_unattended(father(S.MISSING, date(2024, 7, 1)), mother(S.MISSING, LONG_AGO))


# --- 事实无人抚养: one parent deceased --------------------------------------------------------------


def test_one_parent_deceased_and_the_other_in_a_listed_situation() -> None:
    result = derived(child(father(S.DECEASED, date(2020, 1, 1)), mother(S.COMPULSORY_DRUG_REHAB, LONG_AGO)))
    assert result[DFU].reason.startswith("one parent absent")


def test_one_parent_missing_and_the_other_in_a_listed_situation() -> None:
    assert is_de_facto_unattended(father(S.MISSING, LONG_AGO), mother(S.SERIOUSLY_ILL))


def test_one_parent_deceased_and_the_other_normal_is_not() -> None:
    assert not is_de_facto_unattended(father(S.DECEASED, LONG_AGO), mother())


def test_both_parents_deceased_is_an_orphan_not_de_facto_unattended() -> None:
    assert not is_de_facto_unattended(father(S.DECEASED, LONG_AGO), mother(S.DECEASED, LONG_AGO))


def test_only_one_parent_recorded_cannot_be_decided() -> None:
    assert DFU not in derived(child(father(S.IMPRISONED_OR_DETAINED, LONG_AGO)))


def test_one_parent_in_a_situation_and_the_other_normal_is_not() -> None:
    assert not is_de_facto_unattended(father(S.IMPRISONED_OR_DETAINED, LONG_AGO), mother())


# --- 事实无人抚养: effective dates ---------------------------------------------------------------


@pytest.mark.parametrize("later_status", [S.GUARDIANSHIP_REVOKED, S.DEPORTED])
def test_revoked_guardianship_and_deportation_count_only_from_the_extension(later_status: GuardianStatus) -> None:
    parents = (father(later_status, date(2019, 1, 1)), mother(S.IMPRISONED_OR_DETAINED, date(2019, 1, 1)))
    assert not is_de_facto_unattended(*parents, on=date(2020, 12, 31))
    result = derived(child(*parents), on=date(2021, 1, 1))
    assert result[DFU].rule_code == "DFU-2020-125"
    assert later_status.label in result[DFU].reason


def test_base_rule_applies_between_its_dates() -> None:
    parents = (father(S.IMPRISONED_OR_DETAINED, date(2018, 1, 1)), mother(S.MISSING, date(2018, 1, 1)))
    assert not is_de_facto_unattended(*parents, on=date(2019, 6, 17))
    assert derived(child(*parents), on=date(2019, 6, 18))[DFU].rule_code == "DFU-2019-62"
    assert derived(child(*parents), on=date(2020, 12, 31))[DFU].rule_code == "DFU-2019-62"


def test_de_facto_unattended_ends_at_18() -> None:
    born = date(2006, 6, 2)  # 18 on 2024-06-02
    parents = (father(S.IMPRISONED_OR_DETAINED, LONG_AGO), mother(S.IMPRISONED_OR_DETAINED, LONG_AGO))
    assert DFU in derived(child(*parents, born=born), on=date(2024, 6, 1))
    assert DFU not in derived(child(*parents, born=born), on=date(2024, 6, 2))


def test_parameters_drive_the_rule() -> None:
    strict = tuple(
        replace(rule, parameters={**rule.parameters, "min_missing_months": 12}) if rule.category is DFU else rule
        for rule in DEFAULT_RULES
    )
    parents = (father(S.MISSING, date(2023, 9, 1)), mother(S.MISSING, date(2023, 9, 1)))  # 9 months
    assert DFU in derived(child(*parents))
    assert DFU not in derived(child(*parents), rules=strict)


# --- 0-3 with local household registration ----------------------------------------------------------


def test_infant_with_local_registration() -> None:
    result = derived(child(born=date(2022, 6, 2)))
    assert result[INFANT].rule_code == "INFANT-0-3-LOCAL"
    assert "110111" in result[INFANT].reason


def test_infant_category_ends_on_the_third_birthday() -> None:
    assert INFANT in derived(child(born=date(2021, 6, 2)))  # day before the 3rd birthday
    assert INFANT not in derived(child(born=date(2021, 6, 1)))  # 3rd birthday


def test_infant_from_the_day_of_birth() -> None:
    assert INFANT in derived(child(born=ON))


@pytest.mark.parametrize("registration", ["130602001", "110112001", None])
def test_infant_registered_elsewhere_or_unregistered_is_not_local(registration: str | None) -> None:
    assert INFANT not in derived(child(born=date(2023, 1, 1), registration=registration))


@pytest.mark.parametrize("registration", ["110111", "110111008", "110111008001"])
def test_registration_codes_of_any_precision_in_the_district_are_local(registration: str) -> None:
    assert INFANT in derived(child(born=date(2023, 1, 1), registration=registration))


def test_leap_day_infant_turns_3_on_28_february() -> None:
    snapshot = child(born=date(2020, 2, 29))
    assert INFANT in derived(snapshot, on=date(2023, 2, 27))
    assert INFANT not in derived(snapshot, on=date(2023, 2, 28))


def test_minimum_age_in_days_as_in_the_fangshan_insurance() -> None:
    from_30_days = RuleDefinition(
        code="INFANT-30D",
        category=INFANT,
        effective_from=date(2016, 1, 1),
        effective_to=None,
        parameters={"min_age_days": 30, "under_age_years": 3},
    )
    assert INFANT not in derived(child(born=date(2024, 5, 3)), rules=(from_30_days,))  # 29 days old
    assert INFANT in derived(child(born=date(2024, 5, 2)), rules=(from_30_days,))  # 30 days old


# --- ageing out at 18 -----------------------------------------------------------------------------


def test_not_ageing_out_more_than_6_months_before_18() -> None:
    assert AGEING not in derived(child(born=date(2006, 12, 2)))  # 18 on 2024-12-02


def test_ageing_out_from_6_months_before_the_18th_birthday() -> None:
    result = derived(child(born=date(2006, 12, 1)))  # 18 on 2024-12-01, exactly 6 months on
    assert result[AGEING].reason == "turns 18 on 2024-12-01, within 6 months"
    assert result[AGEING].rule_code == "AGEING-OUT-18"


def test_the_day_before_the_18th_birthday_is_still_a_minor() -> None:
    assert derived(child(born=date(2006, 6, 2)))[AGEING].reason.startswith("turns 18 on 2024-06-02")


def test_on_the_18th_birthday_no_longer_a_minor() -> None:
    assert derived(child(born=date(2006, 6, 1)))[AGEING].reason == "turned 18 on 2024-06-01: no longer a minor"


def test_leap_day_birth_comes_of_age_on_28_february() -> None:
    snapshot = child(born=date(2004, 2, 29))
    assert derived(snapshot, on=date(2022, 2, 27))[AGEING].reason.startswith("turns 18 on 2022-02-28")
    assert derived(snapshot, on=date(2022, 2, 28))[AGEING].reason.startswith("turned 18 on 2022-02-28")


def test_months_before_is_a_parameter() -> None:
    twelve = RuleDefinition(
        code="AGEING-12M",
        category=AGEING,
        effective_from=date(2014, 1, 1),
        effective_to=None,
        parameters={"months_before": 12},
    )
    snapshot = child(born=date(2007, 3, 1))  # 18 on 2025-03-01
    assert AGEING not in derived(snapshot)
    assert AGEING in derived(snapshot, rules=(twelve,))


# --- several categories, evaluation errors, rule sets ----------------------------------------------


def test_a_child_can_be_in_several_derived_categories() -> None:
    parents = (father(S.DECEASED, LONG_AGO), mother(S.IMPRISONED_OR_DETAINED, LONG_AGO))
    assert set(derived(child(*parents, born=date(2022, 1, 1)))) == {DFU, INFANT}


def test_no_rule_in_force_derives_nothing() -> None:
    parents = (father(S.IMPRISONED_OR_DETAINED, LONG_AGO), mother(S.IMPRISONED_OR_DETAINED, LONG_AGO))
    assert derived(child(*parents, born=date(2012, 1, 1)), on=date(2013, 12, 31)) == {}


def test_birth_after_the_evaluation_date_is_invalid() -> None:
    with pytest.raises(InvalidInput):
        evaluate(DEFAULT_RULES, child(born=date(2024, 6, 2)), ON)


def test_default_rule_set_is_consistent() -> None:
    check_rule_set(DEFAULT_RULES)


def test_rule_set_with_a_repeated_code_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        check_rule_set([DEFAULT_RULES[2], replace(DEFAULT_RULES[3], code=DEFAULT_RULES[2].code)])


def test_rule_set_with_overlapping_versions_is_a_conflict() -> None:
    overlapping = replace(DEFAULT_RULES[0], effective_to=date(2021, 1, 1))
    with pytest.raises(Conflict, match="overlap"):
        check_rule_set([overlapping, DEFAULT_RULES[1]])


def make_rule(**changes: Any) -> RuleDefinition:
    fields: dict[str, Any] = {
        "code": "X",
        "category": AGEING,
        "effective_from": date(2020, 1, 1),
        "effective_to": None,
        "parameters": {"months_before": 6},
    }
    return RuleDefinition(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"category": DifficultyCategory.POVERTY}, "category"),
        ({"effective_to": date(2019, 12, 31)}, "effective_to"),
        ({"parameters": {}}, "parameters.months_before"),
        ({"parameters": {"months_before": -1}}, "parameters.months_before"),
        ({"parameters": {"months_before": True}}, "parameters.months_before"),
        ({"parameters": {"months_before": 6, "typo": 1}}, "parameters"),
    ],
)
def test_malformed_rule_definitions_are_rejected(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        make_rule(**changes)
    assert caught.value.field == field


def test_unknown_status_code_in_parameters_is_rejected() -> None:
    parameters = {**DEFAULT_RULES[0].parameters, "qualifying_statuses": ("missing", "on_holiday")}
    with pytest.raises(InvalidInput) as caught:
        replace(DEFAULT_RULES[0], parameters=parameters)
    assert caught.value.field == "parameters.qualifying_statuses"


def test_rule_definitions_round_trip_through_json() -> None:
    stored = json.loads(json.dumps(dict(DEFAULT_RULES[1].parameters)))
    reloaded = replace(DEFAULT_RULES[1], parameters=stored)
    parents = (father(S.DEPORTED, LONG_AGO), mother(S.MISSING, LONG_AGO))
    assert DFU in derived(child(*parents), rules=(reloaded,))
