"""Resident identity numbers (公民身份号码, GB 11643-1999).

Layout of the 18 characters: 6-digit address code, 8-digit birth date (YYYYMMDD), 3-digit
sequence code (odd = male, even = female), check character (ISO 7064 MOD 11-2, `0-9` or `X`).

Decisions:
- The checksum is computed by `stdnum.cn.ric`, but we do not call its `validate()`: it also rejects
  address codes missing from its table, and old or retired address codes occur in real numbers.
  An unknown address code is reported as `address_code_known=False`, never as an error.
- 15-digit first-generation numbers are REJECTED, not converted. They carry no check character,
  so converting one would manufacture a valid-looking checksum for whatever typo it contains;
  first-generation cards have been void since 2013-01-01, and nobody born after 1999 ever held
  one, so no minor in the register can have one. The message asks for the 18-digit number.
- Error messages never repeat the number or its parts: they reach logs and import reports.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from platform_runtime.pii import normalize_identity_number as normalize_identity_number  # re-exported for callers
from services.registry.domain.codes import Sex
from services.registry.domain.errors import InvalidInput

IDENTITY_NUMBER_LENGTH = 18
LEGACY_IDENTITY_NUMBER_LENGTH = 15
EARLIEST_BIRTH_YEAR = 1900

_ALLOWED_CHECK_CHARACTERS = frozenset("0123456789X")


@dataclass(frozen=True)
class IdentityNumber:
    """A checked 18-character identity number and what it encodes."""

    number: str = field(repr=False)  # kept out of repr so it never lands in a log by accident
    address_code: str = field(repr=False)
    birth_date: date = field(repr=False)
    sex: Sex
    address_code_known: bool


def parse_identity_number(
    raw: str, *, as_of: date | None = None, field_name: str = "identity_number"
) -> IdentityNumber:
    """Normalise and check a number; raise InvalidInput(field_name, reason) if it is not valid.

    `as_of` (usually today) rejects birth dates in the future; without it that check is skipped.
    """
    number = normalize_identity_number(raw)

    def invalid(reason: str) -> InvalidInput:
        return InvalidInput(field_name, reason)

    if not number:
        raise invalid("is empty")
    if len(number) == LEGACY_IDENTITY_NUMBER_LENGTH and number.isdigit():
        raise invalid(
            "is a 15-digit first-generation number: it has no check character and has been void "
            "since 2013-01-01; enter the 18-digit number of the current card"
        )
    if len(number) != IDENTITY_NUMBER_LENGTH:
        raise invalid(f"must have {IDENTITY_NUMBER_LENGTH} characters, has {len(number)}")
    if not (number[:-1].isascii() and number[:-1].isdigit()) or (number[-1] not in _ALLOWED_CHECK_CHARACTERS):
        raise invalid("must be 17 digits followed by a digit or X")
    if number[-1] != ric.calc_check_digit(number):
        raise invalid("check character does not match (typing error?)")

    birth_date = _encoded_birth_date(number)
    if birth_date is None:
        raise invalid("the birth date part is not a real date")
    if birth_date.year < EARLIEST_BIRTH_YEAR:
        raise invalid(f"the birth date part is before {EARLIEST_BIRTH_YEAR}")
    if as_of is not None and birth_date > as_of:
        raise invalid(f"the birth date part is after {as_of.isoformat()}")

    return IdentityNumber(
        number=number,
        address_code=number[:6],
        birth_date=birth_date,
        sex=Sex.MALE if int(number[14:17]) % 2 == 1 else Sex.FEMALE,
        address_code_known=_address_code_known(number),
    )


def is_valid_identity_number(raw: str, *, as_of: date | None = None) -> bool:
    try:
        parse_identity_number(raw, as_of=as_of)
    except InvalidInput:
        return False
    return True


def cross_check_identity(
    identity: IdentityNumber, *, birth_date: date | None = None, sex: Sex | None = None
) -> list[str]:
    """Problems between the number and a separately recorded birth date / sex (empty if none).

    An unknown or unspecified sex (GB/T 2261.1 codes 0 and 9) is not a contradiction.
    """
    problems: list[str] = []
    if birth_date is not None and birth_date != identity.birth_date:
        problems.append("birth date differs from the birth date encoded in the identity number")
    if sex is not None and sex.is_known and sex is not identity.sex:
        parity = "odd" if identity.sex is Sex.MALE else "even"
        problems.append(
            f"sex is recorded as {sex.label} but the identity number's sequence code is {parity} ({identity.sex.label})"
        )
    return problems


def make_identity_number(address_code: str, birth_date: date, sequence: int) -> str:
    """Build a valid number (used for synthetic data and tests). sequence is 0-999; odd = male."""
    if len(address_code) != 6 or not address_code.isdigit():
        raise InvalidInput("address_code", "must be 6 digits")
    if not 0 <= sequence <= 999:
        raise InvalidInput("sequence", "must be between 0 and 999")
    body = f"{address_code}{birth_date:%Y%m%d}{sequence:03d}"
    # calc_check_digit expects the check position present; its value is ignored.
    return body + ric.calc_check_digit(body + "0")


def _encoded_birth_date(number: str) -> date | None:
    try:
        return ric.get_birth_date(number)
    except ValidationError:
        return None


def _address_code_known(number: str) -> bool:
    return _area_known(number[:6], number[6:10])


@functools.lru_cache(maxsize=1 << 16)
def _area_known(area: str, year: str) -> bool:
    """Whether the area code was assigned in the birth year: all stdnum reads of a number. Cached, as a
    lookup in its table costs more than the rest of a number's checks and a survey repeats a few areas."""
    try:
        ric.get_birth_place(f"{area}{year}0101000")
    except ValidationError:
        return False
    return True
