from datetime import date

import pytest
from stdnum.cn import ric

from services.registry.domain.codes import Sex
from services.registry.domain.errors import DomainError, InvalidInput
from services.registry.domain.identity import (
    cross_check_identity,
    is_valid_identity_number,
    make_identity_number,
    normalize_identity_number,
    parse_identity_number,
)

# The example number printed in GB 11643-1999 (Beijing Chaoyang, 1949-12-31, female).
STANDARD_EXAMPLE = "11010519491231002X"


def with_check_character(first_17: str) -> str:
    return first_17 + ric.calc_check_digit(first_17 + "0")


def reason_for(raw: str, as_of: date | None = None) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_identity_number(raw, as_of=as_of)
    assert caught.value.field == "identity_number"
    return caught.value.reason


def test_standard_example_is_valid_and_decoded() -> None:
    identity = parse_identity_number(STANDARD_EXAMPLE)
    assert identity.number == STANDARD_EXAMPLE
    assert identity.address_code == "110105"
    assert identity.birth_date == date(1949, 12, 31)
    assert identity.sex is Sex.FEMALE  # sequence 002 is even
    assert identity.address_code_known


@pytest.mark.parametrize(
    "raw",
    ["11010519491231002x", " 110105 19491231 002X ", "110105\t19491231002x\n", "１１０１０５１９４９１２３１００２ｘ"],
)
def test_normalisation_strips_spaces_upper_cases_x_and_folds_full_width(raw: str) -> None:
    assert normalize_identity_number(raw) == STANDARD_EXAMPLE
    assert parse_identity_number(raw).number == STANDARD_EXAMPLE


def test_odd_sequence_is_male() -> None:
    number = make_identity_number("110111", date(2012, 5, 1), 37)
    assert parse_identity_number(number).sex is Sex.MALE


def test_wrong_check_character_is_rejected() -> None:
    wrong = STANDARD_EXAMPLE[:-1] + "1"
    assert "check character" in reason_for(wrong)
    assert not is_valid_identity_number(wrong)


def test_single_digit_typo_is_caught_by_the_checksum() -> None:
    typo = STANDARD_EXAMPLE[:8] + "5" + STANDARD_EXAMPLE[9:]  # 1949 -> 1959
    assert "check character" in reason_for(typo)


def test_fifteen_digit_legacy_number_is_rejected_with_a_clear_message() -> None:
    reason = reason_for("110105491231002")
    assert "15-digit" in reason and "18-digit" in reason


@pytest.mark.parametrize("raw", ["", "   ", "1101051949123100", "11010519491231002X1"])
def test_wrong_length_is_rejected(raw: str) -> None:
    reason_for(raw)


@pytest.mark.parametrize("raw", ["1101051949123100AX", "X10105194912310021", "11010519491231002Y"])
def test_non_digits_are_rejected(raw: str) -> None:
    assert "17 digits" in reason_for(raw)


@pytest.mark.parametrize("birth", ["20230230", "20231301", "20230000", "20190229"])
def test_impossible_birth_date_is_rejected_even_with_a_correct_checksum(birth: str) -> None:
    assert "not a real date" in reason_for(with_check_character(f"110111{birth}001"))


def test_leap_day_birth_date_is_accepted() -> None:
    assert parse_identity_number(with_check_character("11011120200229001")).birth_date == date(2020, 2, 29)


def test_birth_year_before_1900_is_rejected() -> None:
    assert "before 1900" in reason_for(with_check_character("11011118991231001"))


def test_birth_date_after_as_of_is_rejected_only_when_as_of_is_given() -> None:
    number = make_identity_number("110111", date(2024, 6, 2), 1)
    assert "after 2024-06-01" in reason_for(number, as_of=date(2024, 6, 1))
    assert parse_identity_number(number, as_of=date(2024, 6, 2)).birth_date == date(2024, 6, 2)
    assert parse_identity_number(number).birth_date == date(2024, 6, 2)


def test_unknown_address_code_alone_is_not_a_reason_to_reject() -> None:
    number = make_identity_number("990099", date(2015, 3, 4), 12)
    identity = parse_identity_number(number)
    assert not identity.address_code_known
    assert identity.address_code == "990099"
    assert is_valid_identity_number(number)


def test_field_name_can_be_given_for_guardian_numbers() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_identity_number("123", field_name="guardians[0].identity_number")
    assert caught.value.field == "guardians[0].identity_number"
    assert isinstance(caught.value, DomainError)


def test_error_messages_and_repr_never_contain_the_number() -> None:
    wrong = STANDARD_EXAMPLE[:-1] + "1"
    assert wrong not in reason_for(wrong)
    assert STANDARD_EXAMPLE not in repr(parse_identity_number(STANDARD_EXAMPLE))


def test_cross_check_agrees_with_matching_birth_date_and_sex() -> None:
    identity = parse_identity_number(STANDARD_EXAMPLE)
    assert cross_check_identity(identity, birth_date=date(1949, 12, 31), sex=Sex.FEMALE) == []
    assert cross_check_identity(identity) == []


def test_cross_check_lists_each_contradiction() -> None:
    identity = parse_identity_number(STANDARD_EXAMPLE)
    problems = cross_check_identity(identity, birth_date=date(1949, 12, 30), sex=Sex.MALE)
    assert len(problems) == 2
    assert "birth date" in problems[0]
    assert "男性" in problems[1] and "even" in problems[1]


@pytest.mark.parametrize("sex", [Sex.UNKNOWN, Sex.UNSPECIFIED])
def test_cross_check_ignores_unknown_or_unspecified_sex(sex: Sex) -> None:
    assert cross_check_identity(parse_identity_number(STANDARD_EXAMPLE), sex=sex) == []


def test_make_identity_number_builds_valid_numbers_and_checks_its_input() -> None:
    for sequence in (0, 1, 500, 999):
        number = make_identity_number("110111", date(2010, 1, 31), sequence)
        assert ric.is_valid(number)
        assert number[14:17] == f"{sequence:03d}"
    with pytest.raises(InvalidInput):
        make_identity_number("11011", date(2010, 1, 1), 1)
    with pytest.raises(InvalidInput):
        make_identity_number("110111", date(2010, 1, 1), 1000)
