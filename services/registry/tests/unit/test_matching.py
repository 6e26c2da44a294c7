import random
from datetime import date

import pytest
from pypinyin import lazy_pinyin

from services.registry.domain.codes import Sex
from services.registry.domain.errors import InvalidInput
from services.registry.domain.matching import (
    DEFAULT_THRESHOLD,
    EXACT,
    GIVEN_CHARACTER_MISSING,
    HOMOPHONE,
    NAMES_DIFFER,
    NICKNAME,
    ONE_CHARACTER_DIFFERS,
    ONLY_FAMILY_NAME_EQUAL,
    ONLY_GIVEN_CHARACTER_DIFFERS,
    PINYIN_SIMILAR,
    SWAPPED,
    ChildFacts,
    NameAgreement,
    compare_names,
    index_keys,
    lookup_keys,
    name_sound_key,
    one_digit_away,
    parse_name,
    rank_candidates,
    read_pinyin,
    score_match,
)
from services.registry.domain.synthetic import generate_children

RECORD = ChildFacts(
    name="王小明",
    identity_key="key-1",
    birth_date=date(2015, 3, 10),
    sex=Sex.MALE,
    guardian_names=("王建国", "李秀英"),
    division_code="110111008001",
    school="良乡中心小学",
)


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "family", "given", "pinyin"),
    [
        ("王小明", "王", "小明", ("wang", "xiao", "ming")),
        ("欧阳娜娜", "欧阳", "娜娜", ("ou", "yang", "na", "na")),
        ("司马光", "司马", "光", ("si", "ma", "guang")),
        ("诸葛亮", "诸葛", "亮", ("zhu", "ge", "liang")),
        ("曾小凡", "曾", "小凡", ("zeng", "xiao", "fan")),  # surname reading, not "ceng"
        ("单田芳", "单", "田芳", ("shan", "tian", "fang")),
        ("王 小明", "王", "小明", ("wang", "xiao", "ming")),
        ("阿依古丽·买买提", "买买提", "阿依古丽", ("mai", "mai", "ti", "a", "yi", "gu", "li")),
        ("阿依古丽.买买提", "买买提", "阿依古丽", ("mai", "mai", "ti", "a", "yi", "gu", "li")),
    ],
)
def test_parse_name(name: str, family: str, given: str, pinyin: tuple[str, ...]) -> None:
    parsed = parse_name(name)
    assert (parsed.family, parsed.given, parsed.pinyin) == (family, given, pinyin)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("王小明", "王小明", EXACT),
        ("王小明", "王 小明", EXACT),
        ("王小明", "王晓明", HOMOPHONE),
        ("张伟", "章威", HOMOPHONE),
        ("曾小凡", "增小凡", HOMOPHONE),
        ("王小明", "小明王", SWAPPED),
        ("欧阳娜娜", "娜娜欧阳", SWAPPED),
        ("司马光", "光司马", SWAPPED),
        ("王小明", "晓明王", SWAPPED),  # swapped and homophone
        ("王小明", "王明", GIVEN_CHARACTER_MISSING),
        ("王小明", "王小", GIVEN_CHARACTER_MISSING),
        ("欧阳娜娜", "欧阳娜", GIVEN_CHARACTER_MISSING),
        ("王小明", "王大明", ONE_CHARACTER_DIFFERS),
        ("王小明", "汪小敏", ONE_CHARACTER_DIFFERS),  # one syllable differs: ming / min
        ("张伟", "臧伟", PINYIN_SIMILAR),  # zh / z confusion in a two-character name
        # A two-character name whose given character differs: a slip or a sibling, never linked unseen.
        ("张伟", "张强", ONLY_GIVEN_CHARACTER_DIFFERS),
        ("张小伟", "张大强", ONLY_FAMILY_NAME_EQUAL),
        ("小明", "王小明", NICKNAME),
        ("阿雨", "李思雨", NICKNAME),
        ("小雨", "李思明", NAMES_DIFFER),
        ("张伟", "李强", NAMES_DIFFER),
    ],
)
def test_compare_names(a: str, b: str, expected: NameAgreement) -> None:
    assert compare_names(a, b) == expected
    assert compare_names(b, a) == expected


def test_name_agreements_are_ordered_by_strength() -> None:
    weights = [
        a.weight
        for a in (
            EXACT,
            HOMOPHONE,
            SWAPPED,
            GIVEN_CHARACTER_MISSING,
            ONE_CHARACTER_DIFFERS,
            PINYIN_SIMILAR,
            ONLY_FAMILY_NAME_EQUAL,
            NAMES_DIFFER,
        )
    ]
    assert weights == sorted(weights, reverse=True)


# --- scoring -------------------------------------------------------------------------------------


def test_same_identity_number_is_a_match_whatever_else() -> None:
    result = score_match(ChildFacts(identity_key="key-1"), RECORD)
    assert result.is_match()
    assert result.reasons == ("same identity number",)


def test_twin_with_a_different_identity_number_is_not_a_match() -> None:
    twin = ChildFacts(
        name="王小亮",
        identity_key="key-2",
        birth_date=RECORD.birth_date,
        sex=Sex.MALE,
        guardian_names=RECORD.guardian_names,
        division_code=RECORD.division_code,
    )
    result = score_match(twin, RECORD)
    assert not result.is_match()
    assert result.reasons[0] == "different identity numbers"
    without_number = score_match(ChildFacts(**{**twin.__dict__, "identity_key": None}), RECORD)
    assert without_number.score > result.score


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("王晓明", "name pinyin equal (homophone)"),
        ("小明王", "given/family name swapped"),
        ("王明", "one given-name character missing"),
        ("王大明", "one character differs (typo)"),
    ],
)
def test_noisy_names_with_the_same_birth_date_match(name: str, reason: str) -> None:
    probe = ChildFacts(name=name, birth_date=date(2015, 3, 10), sex=Sex.MALE, division_code="110111008")
    result = score_match(probe, RECORD)
    assert result.is_match(), result
    assert reason in result.reasons
    assert "same birth date" in result.reasons
    assert "same town/street" in result.reasons


@pytest.mark.parametrize(("reported", "registered"), [("小明", "王小明"), ("阿明", "王小明"), ("王强", "王明")])
def test_loose_name_agreements_are_shown_but_never_called_a_match(reported: str, registered: str) -> None:
    """A nickname, or a two-character name whose given character differs, with everything else agreeing."""
    probe = ChildFacts(
        name=reported,
        birth_date=RECORD.birth_date,
        sex=Sex.MALE,
        guardian_names=RECORD.guardian_names,
        division_code=RECORD.division_code,
        school=RECORD.school,
    )
    result = score_match(probe, ChildFacts(**{**RECORD.__dict__, "name": registered}))
    assert 0.3 < result.score < DEFAULT_THRESHOLD
    assert "a person should confirm: the names agree only loosely" in result.reasons


def test_an_identity_number_one_digit_off_is_a_typing_error_not_another_child() -> None:
    number = "110111201503100018"
    near = one_digit_away(number)
    assert len(near) == 17 * 9 + 10 and number not in near and all(len(n) == 18 for n in near)
    typed = "110111201503100048"  # one wrong sequence digit
    probe = ChildFacts(
        name="王小明", identity_key="typed", identity_near_keys=frozenset({"key-1"}), birth_date=RECORD.birth_date
    )
    assert typed[:14] == number[:14]
    result = score_match(probe, RECORD)
    assert result.is_match()
    assert "identity number one digit off (a typing error?)" in result.reasons
    assert "id:key-1" in lookup_keys(probe)
    elsewhere = score_match(ChildFacts(**{**probe.__dict__, "identity_near_keys": frozenset()}), RECORD)
    assert elsewhere.reasons[0] == "different identity numbers"


def test_sex_mismatch_is_a_strong_negative() -> None:
    probe = ChildFacts(name="王小明", birth_date=date(2015, 3, 10), division_code="110111008001")
    assert score_match(probe, RECORD).is_match()
    mismatch = score_match(ChildFacts(**{**probe.__dict__, "sex": Sex.FEMALE}), RECORD)
    assert not mismatch.is_match()
    assert mismatch.reasons[0] == "sex differs"


def test_unknown_sex_is_no_evidence() -> None:
    probe = ChildFacts(name="王小明", sex=Sex.UNKNOWN)
    assert "sex differs" not in score_match(probe, RECORD).reasons
    assert "same sex" not in score_match(probe, RECORD).reasons


@pytest.mark.parametrize(
    ("birth_date", "reason"),
    [
        (date(2015, 3, 10), "same birth date"),
        (date(2015, 4, 9), "birth date within 30 days (30 apart)"),
        (date(2015, 10, 3), "birth day and month swapped"),
        (date(2015, 4, 10), "birth dates 31 days apart"),
        (date(2012, 3, 10), "birth dates 3 years apart"),
    ],
)
def test_birth_date_tolerance(birth_date: date, reason: str) -> None:
    assert reason in score_match(ChildFacts(name="王小明", birth_date=birth_date), RECORD).reasons


def test_birth_date_closer_scores_higher() -> None:
    def score(day: date) -> float:
        return score_match(ChildFacts(name="王小明", birth_date=day), RECORD).score

    assert score(date(2015, 3, 10)) > score(date(2015, 3, 25)) > score(date(2015, 6, 1)) > score(date(2012, 3, 10))


def test_approximate_age_is_checked_against_the_birth_date() -> None:
    # Born 2015-03-10: 9 years old on 2024-06-01.
    fits = ChildFacts(name="王小明", approximate_age=10, age_observed_on=date(2024, 6, 1))
    wrong = ChildFacts(name="王小明", approximate_age=14, age_observed_on=date(2024, 6, 1))
    assert "stated age 10 fits the birth date" in score_match(fits, RECORD).reasons
    assert "stated age 14 does not fit the birth date (age 9)" in score_match(wrong, RECORD).reasons


def test_approximate_age_needs_the_day_it_was_given() -> None:
    with pytest.raises(InvalidInput):
        ChildFacts(approximate_age=5)


@pytest.mark.parametrize(
    ("division", "reason"),
    [
        ("110111008001", "same village/community"),
        ("110111008", "same town/street"),
        ("110111008002", "same town/street"),
        ("110111101", "same district"),
        ("110111", "same district"),
        ("130602", "different district"),
    ],
)
def test_location_same_village_beats_same_town_beats_same_district(division: str, reason: str) -> None:
    assert reason in score_match(ChildFacts(name="王小明", division_code=division), RECORD).reasons


def test_location_weights_are_ordered() -> None:
    def score(division: str) -> float:
        return score_match(ChildFacts(name="王小明", division_code=division), RECORD).score

    assert score("110111008001") > score("110111008") > score("110111101") > score("130602")


@pytest.mark.parametrize(
    ("guardians", "reason"),
    [
        (("王建国",), "a guardian name matches"),
        (("李秀英", "某某"), "a guardian name matches"),
        (("王健国",), "a guardian name matches"),  # homophone
        (("王建军",), "a guardian name is similar"),
        (("赵大海",), "no guardian name in common"),
    ],
)
def test_guardian_names_overlap(guardians: tuple[str, ...], reason: str) -> None:
    assert reason in score_match(ChildFacts(name="王小明", guardian_names=guardians), RECORD).reasons


def test_same_school_is_evidence_and_a_different_school_is_not_against() -> None:
    same = score_match(ChildFacts(name="王小明", school="良乡中心小学"), RECORD)
    other = score_match(ChildFacts(name="王小明", school="窦店中学"), RECORD)
    none = score_match(ChildFacts(name="王小明"), RECORD)
    assert "same school" in same.reasons
    assert same.score > other.score == none.score


def test_other_names_used_are_compared_too() -> None:
    record = ChildFacts(name="王小明", other_names=("王明明",), birth_date=date(2015, 3, 10))
    result = score_match(ChildFacts(name="王明明", birth_date=date(2015, 3, 10)), record)
    assert "same name" in result.reasons


def test_nothing_in_common_scores_near_zero_and_scores_stay_in_range() -> None:
    empty = score_match(ChildFacts(), RECORD)
    assert 0.0 < empty.score < 0.01
    assert empty.reasons == ()
    full = score_match(RECORD, RECORD)
    assert DEFAULT_THRESHOLD < full.score <= 1.0
    assert full.reasons[0] == "same identity number"


def test_rank_candidates_orders_filters_and_limits() -> None:
    candidates = [
        ("far", ChildFacts(name="李强", birth_date=date(2010, 1, 1))),
        ("best", RECORD),
        ("close", ChildFacts(name="王晓明", birth_date=date(2015, 3, 12), sex=Sex.MALE)),
    ]
    probe = ChildFacts(name="王小明", birth_date=date(2015, 3, 10), sex=Sex.MALE, division_code="110111008001")
    ranked = rank_candidates(probe, candidates)
    assert [r.record_id for r in ranked] == ["best", "close", "far"]
    assert [r.record_id for r in rank_candidates(probe, candidates, limit=1)] == ["best"]
    assert [r.record_id for r in rank_candidates(probe, candidates, min_score=0.5)] == ["best", "close"]


# --- blocking keys -------------------------------------------------------------------------------


def shares_a_key(probe: ChildFacts, record: ChildFacts = RECORD) -> bool:
    return bool(lookup_keys(probe) & index_keys(record))


@pytest.mark.parametrize(
    "probe",
    [
        ChildFacts(name="王晓明", birth_date=date(2015, 3, 10)),  # homophone
        ChildFacts(name="小明王", birth_date=date(2015, 3, 10)),  # swapped
        ChildFacts(name="王大明", birth_date=date(2015, 5, 1)),  # typo and shifted date
        ChildFacts(name="王明", birth_date=date(2015, 2, 20)),  # dropped character and shifted date
        ChildFacts(name="汪小明", birth_date=date(2015, 3, 10)),  # family typo
        ChildFacts(name="王小明", approximate_age=9, age_observed_on=date(2024, 6, 1)),  # age only
        ChildFacts(name="王小明", division_code="110111105"),  # no birth date, same district
        ChildFacts(name="王大明", guardian_names=("李秀英",)),  # only the guardian is certain
        ChildFacts(name="王小明"),  # nothing but the name
        ChildFacts(identity_key="key-1"),  # identity only
    ],
)
def test_noisy_probes_share_a_blocking_key_with_the_record(probe: ChildFacts) -> None:
    assert shares_a_key(probe)


def test_birth_date_shifted_across_new_year_still_shares_a_key() -> None:
    record = ChildFacts(name="王小明", birth_date=date(2014, 12, 20))
    probe = ChildFacts(name="王小明", birth_date=date(2015, 1, 10))
    assert shares_a_key(probe, record)


@pytest.mark.parametrize(
    "probe",
    [
        ChildFacts(name="小明", birth_date=date(2015, 3, 10)),  # a nickname and the birth date
        ChildFacts(name="阿明", birth_date=date(2014, 3, 10), guardian_names=("王建国",)),  # and a parent
        ChildFacts(name="王大红", birth_date=date(2015, 3, 10)),  # only the family name and the birth date right
    ],
)
def test_nicknames_and_a_wrong_given_name_share_a_key_with_the_record(probe: ChildFacts) -> None:
    assert shares_a_key(probe, RECORD)


def test_unrelated_child_shares_no_key() -> None:
    assert not shares_a_key(ChildFacts(name="李强", birth_date=date(2010, 7, 1), division_code="110111101"))


def test_name_only_key_is_looked_up_only_when_nothing_else_is_known() -> None:
    assert any(k.startswith("p:") for k in index_keys(RECORD))
    assert any(k.startswith("p:") for k in lookup_keys(ChildFacts(name="王小明")))
    assert not any(k.startswith("p:") for k in lookup_keys(ChildFacts(name="王小明", birth_date=date(2015, 3, 10))))


def test_keys_hold_pinyin_not_characters() -> None:
    for key in index_keys(RECORD):
        assert all(not ("\u4e00" <= ch <= "\u9fff") for ch in key), key


def test_a_common_name_proves_less_than_a_rare_one() -> None:
    probe = ChildFacts(name="王小明", birth_date=date(2015, 3, 10))
    counts = {name_sound_key("王小明"): 50}
    plain = score_match(probe, RECORD)
    common = score_match(probe, RECORD, name_count=lambda key: counts.get(key, 1))
    assert common.score < plain.score
    assert "same name, a name 50 children in the register share" in common.reasons
    rare = score_match(probe, RECORD, name_count=lambda key: 1)
    assert rare.score == plain.score


def test_name_sound_key_is_shared_by_homophones_and_swaps_and_stored_for_every_record() -> None:
    assert name_sound_key("王小明") == name_sound_key("王晓明") == name_sound_key("小明王")
    assert name_sound_key("王小明") in index_keys(RECORD)


def test_fast_name_pinyin_reads_exactly_as_pypinyin() -> None:
    """Blocking keys stored for the register were made with lazy_pinyin: the fast reading must never differ."""
    rng = random.Random(11)
    names = {c.name for c in generate_children(3000, rng=rng, as_of=date(2026, 1, 1))}
    han = [chr(code) for code in range(0x4E00, 0x9FA6)]
    names |= {"".join(rng.choice(han) for _ in range(rng.randint(1, 5))) for _ in range(5000)}
    # Dictionary words read as words (长乐, 单于...), letters and digits kept whole, extension-A characters.
    names |= {"王长乐", "单于明", "张乐乐", "Anna李", "李2号", "阿依古丽买买提", "㐀明"}
    assert [n for n in names if read_pinyin(n) != lazy_pinyin(n)] == []
