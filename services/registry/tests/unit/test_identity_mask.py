"""The masked identity number cannot be completed from what a caller sees beside it.

A caller of the register sees the masked number with the birth date, the sex and the town (whose district
code is the number's region). Everything else in an 18-character number is the three sequence digits
(the last one's parity is the sex) and the check character, computed from the rest.
"""

from __future__ import annotations

from datetime import date

import pytest

from platform_runtime.pii import mask_identity_number
from services.registry.domain.identity import is_valid_identity_number, make_identity_number

REGION = "110111"  # the town's district: known to anyone who knows where the child lives
BIRTH = date(2016, 5, 12)


def completions(masked: str, *, region: str, birth: date, male: bool) -> list[str]:
    """Every valid number of that region, birth date and sex that masks to `masked`."""
    found = []
    for sequence in range(1000):
        if (sequence % 2 == 1) != male:
            continue
        number = make_identity_number(region, birth, sequence)
        if is_valid_identity_number(number) and mask_identity_number(number) == masked:
            found.append(number)
    return found


@pytest.mark.parametrize("sequence", [0, 1, 123, 456, 997])
def test_a_masked_number_with_birth_date_sex_and_town_leaves_dozens_of_candidates(sequence: int) -> None:
    number = make_identity_number(REGION, BIRTH, sequence)
    candidates = completions(mask_identity_number(number), region=REGION, birth=BIRTH, male=sequence % 2 == 1)
    assert number in candidates
    # 500 sequence numbers of that sex, one in eleven with the shown check character.
    assert len(candidates) >= 30, candidates


def test_the_old_mask_completed_to_the_one_number() -> None:
    number = make_identity_number(REGION, BIRTH, 123)
    old_mask = number[:6] + "********" + number[-4:]
    every = (make_identity_number(REGION, BIRTH, sequence) for sequence in range(1000))
    candidates = [n for n in every if n[:6] + "********" + n[-4:] == old_mask]
    assert candidates == [number]


def test_the_mask_shows_no_digit_of_region_birth_date_or_sequence() -> None:
    number = make_identity_number(REGION, BIRTH, 123)
    masked = mask_identity_number(number)
    assert masked[:17] == "*" * 17
    assert masked[17] == number[17]
