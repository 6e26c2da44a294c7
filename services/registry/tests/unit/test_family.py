"""Family facts: what is checked, and the snapshot the derived-category rules read."""

from datetime import date

import pytest

from platform_runtime import errors
from services.registry.domain.codes import (
    DifficultyCategory,
    DisabilityGrade,
    DisabilityType,
    GuardianStatus,
    Relationship,
)
from services.registry.domain.family import FamilyMember, check_member, child_snapshot
from services.registry.domain.rules import DEFAULT_RULES, evaluate

S = GuardianStatus
ON = date(2024, 6, 1)


def father(status: GuardianStatus = S.NORMAL, since: date | None = None, until: date | None = None) -> FamilyMember:
    return FamilyMember(Relationship.FATHER, "王大", True, status, since, until, evidence="判决书")


def mother(status: GuardianStatus = S.NORMAL, since: date | None = None) -> FamilyMember:
    return FamilyMember(Relationship.MOTHER, "李梅", status is S.NORMAL, status, since, evidence="派出所证明")


def derived(*members: FamilyMember, on: date = ON) -> set[DifficultyCategory]:
    snapshot = child_snapshot(
        birth_date=date(2015, 3, 10),
        household_registration_code="110111008",
        district_code="110111",
        members=members,
        on=on,
    )
    assert snapshot is not None
    return {d.category for d in evaluate(DEFAULT_RULES, snapshot, on)}


def test_only_legal_parents_reach_the_rules() -> None:
    grandmother = FamilyMember(Relationship.PATERNAL_GRANDMOTHER, "张秀", guardian=True)
    snapshot = child_snapshot(
        birth_date=date(2015, 3, 10),
        household_registration_code="110111008",
        district_code="110111",
        members=[father(), grandmother, mother()],
        on=ON,
    )
    assert snapshot is not None
    assert [p.relationship for p in snapshot.parents] == [Relationship.FATHER, Relationship.MOTHER]


def test_a_de_facto_unattended_child_is_derived_from_the_family() -> None:
    imprisoned = father(S.IMPRISONED_OR_DETAINED, since=date(2022, 1, 1))
    missing = mother(S.MISSING, since=date(2023, 1, 1))
    assert DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019 in derived(imprisoned, missing)


def test_a_situation_that_has_ended_no_longer_counts() -> None:
    released = father(S.IMPRISONED_OR_DETAINED, since=date(2021, 1, 1), until=date(2024, 5, 31))
    missing = mother(S.MISSING, since=date(2023, 1, 1))
    assert DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019 not in derived(released, missing)
    assert DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019 in derived(released, missing, on=date(2024, 5, 31))


def test_no_birth_date_no_snapshot() -> None:
    assert (
        child_snapshot(birth_date=None, household_registration_code="", district_code="110111", members=[], on=ON)
        is None
    )


def test_disability_facts_count_whatever_the_status() -> None:
    disabled = FamilyMember(
        Relationship.FATHER,
        "王大",
        disability_type=DisabilityType.INTELLECTUAL,
        disability_grade=DisabilityGrade.GRADE_3,
    )
    assert DifficultyCategory.DE_FACTO_UNATTENDED_MCA_2019 in derived(disabled, mother(S.DECEASED, date(2020, 1, 1)))


def test_member_facts_are_checked_all_at_once() -> None:
    member = FamilyMember(
        Relationship.MOTHER,
        "李梅",
        guardian=True,
        status=S.DECEASED,
        status_since=None,
        status_until=date(2020, 1, 1),
        disability_type=DisabilityType.VISUAL,
    )
    with pytest.raises(errors.InvalidInput) as refused:
        check_member(member)
    assert sorted(v.field for v in refused.value.violations) == [
        "disability_grade",
        "evidence",
        "guardian",
        "status_since",
    ]
    check_member(mother(S.MISSING, date(2023, 1, 1)))
    with pytest.raises(errors.InvalidInput, match="ends before it starts"):
        check_member(father(S.IMPRISONED_OR_DETAINED, since=date(2024, 1, 1), until=date(2023, 1, 1)))
