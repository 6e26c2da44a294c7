from enum import StrEnum

import pytest

from services.registry.domain import codes
from services.registry.domain.codes import (
    DERIVED_CATEGORIES,
    CategoryGroup,
    DifficultyCategory,
    DisabilityGrade,
    DisabilityType,
    Ethnicity,
    GuardianStatus,
    LabelledEnum,
    Relationship,
    Sex,
)

ALL_ENUMS = [
    Sex,
    Ethnicity,
    GuardianStatus,
    Relationship,
    DisabilityType,
    DisabilityGrade,
    CategoryGroup,
    DifficultyCategory,
]


@pytest.mark.parametrize("enum_class", ALL_ENUMS)
def test_every_member_has_a_chinese_label_and_is_a_str_enum(enum_class: type[LabelledEnum]) -> None:
    assert issubclass(enum_class, StrEnum)
    for member in enum_class:
        assert member.label
        assert any("\u4e00" <= ch <= "\u9fff" for ch in member.label), member
        assert enum_class(member.value) is member
        assert str(member) == member.value


def test_sex_codes_follow_gb_t_2261_1() -> None:
    assert [s.value for s in Sex] == ["0", "1", "2", "9"]
    assert Sex("1").label == "男性"
    assert Sex.MALE.is_known and Sex.FEMALE.is_known
    assert not Sex.UNKNOWN.is_known and not Sex.UNSPECIFIED.is_known


def test_ethnicity_has_the_56_nationalities_plus_97_and_98() -> None:
    values = [e.value for e in Ethnicity]
    assert values == [f"{n:02d}" for n in range(1, 57)] + ["97", "98"]
    assert Ethnicity("01").label == "汉族"
    assert Ethnicity("08").label == "壮族"
    assert Ethnicity("56").label == "基诺族"
    assert Ethnicity("97").label == "其他"
    assert Ethnicity("98").label == "外国血统中国籍人士"
    assert len({e.label for e in Ethnicity}) == 58


def test_guardian_statuses() -> None:
    assert {s.value for s in GuardianStatus} == {
        "normal",
        "imprisoned_or_detained",
        "compulsory_drug_rehab",
        "seriously_ill",
        "severely_disabled",
        "deceased",
        "missing",
        "deported",
        "guardianship_revoked",
    }


def test_disability_types_and_grades_follow_gb_t_26341() -> None:
    assert len(DisabilityType) == 7
    assert DisabilityType.INTELLECTUAL.label == "智力残疾"
    assert [g.value for g in DisabilityGrade] == ["1", "2", "3", "4"]
    assert DisabilityGrade.GRADE_1.label == "一级"


def test_parents_are_birth_and_adoptive_parents() -> None:
    parents = {r for r in Relationship if r.is_parent}
    assert parents == {
        Relationship.FATHER,
        Relationship.MOTHER,
        Relationship.ADOPTIVE_FATHER,
        Relationship.ADOPTIVE_MOTHER,
    }


def test_difficulty_categories_by_group() -> None:
    by_group: dict[CategoryGroup, set[str]] = {}
    for category in DifficultyCategory:
        by_group.setdefault(category.group, set()).add(category.value)
    assert by_group[CategoryGroup.PILOT_PLAN] == {
        "de_facto_unattended",
        "improperly_guarded",
        "poverty",
        "wandering",
        "other_trafficked_or_employed",
    }
    assert by_group[CategoryGroup.TRACKED] == {"intellectual_or_mental", "out_of_school", "no_effective_guardian"}
    assert len(by_group[CategoryGroup.NATIONAL_2016]) == 3
    assert by_group[CategoryGroup.DERIVED] == {"de_facto_unattended_mca_2019", "infant_0_3_local", "ageing_out"}
    assert {c.value for c in DERIVED_CATEGORIES} == by_group[CategoryGroup.DERIVED]
    assert DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019.label == "事实无人抚养儿童"
    assert not DifficultyCategory.DE_FACTO_UNATTENDED.is_derived


def test_labels_are_kept_per_enum_even_when_values_coincide() -> None:
    assert Sex.MALE.value == DisabilityGrade.GRADE_1.value == "1"
    assert Sex.MALE.label != DisabilityGrade.GRADE_1.label


def test_a_missing_label_is_caught_at_import() -> None:
    class Incomplete(LabelledEnum):
        A = "a"
        B = "b"

    with pytest.raises(RuntimeError, match="B"):
        codes._set_labels(Incomplete, {Incomplete.A: "甲"})
