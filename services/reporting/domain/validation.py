"""Field-level checks of a submitted report. All problems are collected and raised together."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from typing import TypeGuard

from services.reporting.domain.errors import InvalidInput, Violation
from services.reporting.domain.model import (
    CHINA_STANDARD_TIME,
    Channel,
    ChildInfo,
    Place,
    Reporter,
    SituationType,
    Submission,
)

NARRATIVE_MIN_CHARS = 10  # Chinese is dense: ten characters already say who, where and what.
NARRATIVE_MAX_CHARS = 10_000
MAX_AGE = 17
# Agency systems' clocks may run slightly ahead of ours; do not reject their reports for it.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)

# Upper bounds keep the public form from being used to store arbitrary data.
MAX_CHARS: Mapping[str, int] = {
    "child.name": 50,
    "child.description": 2000,
    "child.school": 100,
    "child.guardian_names": 50,
    "place.text": 200,
    "reporter.name": 50,
    "reporter.organisation": 100,
}
MAX_GUARDIAN_NAMES = 10

# First two digits of GB/T 2260 codes: provinces, autonomous regions, municipalities, Taiwan, HK, Macao.
PROVINCE_CODES = frozenset(
    {
        *("11", "12", "13", "14", "15"),
        *("21", "22", "23"),
        *("31", "32", "33", "34", "35", "36", "37"),
        *("41", "42", "43", "44", "45", "46"),
        *("50", "51", "52", "53", "54"),
        *("61", "62", "63", "64", "65"),
        *("71", "81", "82"),
    }
)
_DIVISION_CODE = re.compile(r"\d{9}|\d{12}", re.ASCII)
_MOBILE = re.compile(r"(?:\+86)?1[3-9]\d{9}", re.ASCII)
# Area code (010, 0571, ...), an optional hyphen, a 7-8 digit local number, an optional extension.
_LANDLINE = re.compile(r"0\d{2,3}-?[2-9]\d{6,7}(?:-\d{1,6})?", re.ASCII)
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_IDENTITY_NUMBER = re.compile(r"\d{17}[\dX]", re.ASCII)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"


class ReporterPresence(Enum):
    REQUIRED = "required"  # name and phone
    OPTIONAL = "optional"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class ChannelPolicy:
    reporter: ReporterPresence
    organisation_required: bool = False
    role_required: bool = False
    agency_required: bool = False


CHANNEL_POLICIES: Mapping[Channel, ChannelPolicy] = {
    # Reporters with special duties and agencies answer for their reports: who and from where.
    Channel.MANDATED_REPORTER: ChannelPolicy(ReporterPresence.REQUIRED, organisation_required=True, role_required=True),
    Channel.AGENCY_SHARE: ChannelPolicy(ReporterPresence.REQUIRED, organisation_required=True, agency_required=True),
    # Staff enter a caller's or visitor's report; the caller may decline to give a name.
    Channel.STAFF_HOTLINE: ChannelPolicy(ReporterPresence.OPTIONAL),
    Channel.STAFF_WALK_IN: ChannelPolicy(ReporterPresence.OPTIONAL),
    Channel.RELATIVE: ChannelPolicy(ReporterPresence.REQUIRED),
    Channel.NEIGHBOUR: ChannelPolicy(ReporterPresence.REQUIRED),
    Channel.PUBLIC_NAMED: ChannelPolicy(ReporterPresence.REQUIRED),
    Channel.PUBLIC_ANONYMOUS: ChannelPolicy(ReporterPresence.FORBIDDEN),
}


def validate_submission(submission: Submission, now: datetime) -> None:
    """Raise `InvalidInput` listing every problem with `submission`; `now` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(CHINA_STANDARD_TIME).date()
    violations = [
        *_reporter_problems(submission.channel, submission.reporter),
        *_child_problems(submission.child, today),
        *_place_problems(submission.place),
        *_occurred_at_problems(submission.occurred_at, now),
        *_situation_problems(submission.situations),
        *_narrative_problems(submission.narrative),
    ]
    if violations:
        raise InvalidInput(violations)


def is_mobile(phone: str) -> bool:
    """A mainland mobile number (1[3-9] + 9 digits, optional +86): one that can take an SMS."""
    return bool(_MOBILE.fullmatch(phone))


def is_email(text: str) -> bool:
    return bool(_EMAIL.fullmatch(text))


def is_valid_phone(phone: str) -> bool:
    """Mainland mobile (1[3-9] + 9 digits, optional +86) or a landline with its area code."""
    return bool(_MOBILE.fullmatch(phone) or _LANDLINE.fullmatch(phone))


def division_code_problem(code: str) -> str | None:
    if not _DIVISION_CODE.fullmatch(code):
        return "must be 9 or 12 digits (GB/T 2260 town or village code)"
    if code[:2] not in PROVINCE_CODES:
        return f"does not start with a province code: {code[:2]}"
    return None


def identity_number_problem(number: str, today: date) -> str | None:
    """Check a GB 11643 resident identity number: shape, birth date, ISO 7064 MOD 11-2 check character.

    The address code is not checked: old and retired codes occur in real numbers.
    """
    number = number.upper()
    if not _IDENTITY_NUMBER.fullmatch(number):
        return "must be 17 digits followed by a digit or X"
    birth = identity_birth_date(number)
    if birth is None:
        return "contains an impossible birth date"
    if birth > today:
        return "contains a birth date in the future"
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK_CHARS[total % 11] != number[17]:
        return "check character does not match (typo?)"
    return None


def identity_birth_date(number: str) -> date | None:
    """The birth date encoded in digits 7-14 of an 18-character identity number, None if impossible."""
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def _given(text: str | None) -> TypeGuard[str]:
    return text is not None and text.strip() != ""


def _too_long(field: str, text: str | None) -> Iterator[Violation]:
    limit = MAX_CHARS[field]
    if text is not None and len(text.strip()) > limit:
        yield Violation(field, f"must be at most {limit} characters")


def _reporter_problems(channel: Channel, reporter: Reporter | None) -> Iterator[Violation]:
    policy = CHANNEL_POLICIES[channel]
    if reporter is None:
        if policy.reporter is ReporterPresence.REQUIRED:
            yield Violation("reporter", f"is required for the {channel.value} channel")
        return
    if policy.reporter is ReporterPresence.FORBIDDEN:
        yield Violation("reporter", "must be empty for an anonymous report")
        return
    if policy.reporter is ReporterPresence.REQUIRED:
        if not _given(reporter.name):
            yield Violation("reporter.name", f"is required for the {channel.value} channel")
        if not _given(reporter.phone):
            yield Violation("reporter.phone", f"is required for the {channel.value} channel")
    elif not (_given(reporter.name) or _given(reporter.phone)):
        yield Violation("reporter", "give a name or a phone, or leave the reporter out")
    if _given(reporter.phone) and not is_valid_phone(reporter.phone):
        yield Violation("reporter.phone", "must be a mainland mobile number or a landline with area code")
    if policy.organisation_required and not _given(reporter.organisation):
        yield Violation("reporter.organisation", f"is required for the {channel.value} channel")
    if policy.role_required and reporter.role is None:
        yield Violation("reporter.role", "is required for a reporter with special duties")
    if not policy.role_required and reporter.role is not None:
        yield Violation("reporter.role", "only applies to the mandated_reporter channel")
    if policy.agency_required and reporter.agency is None:
        yield Violation("reporter.agency", "is required for agency information sharing")
    if not policy.agency_required and reporter.agency is not None:
        yield Violation("reporter.agency", "only applies to the agency_share channel")
    yield from _too_long("reporter.name", reporter.name)
    yield from _too_long("reporter.organisation", reporter.organisation)


def _child_problems(child: ChildInfo, today: date) -> Iterator[Violation]:
    if not (_given(child.name) or _given(child.description)):
        yield Violation("child", "give the child's name or a description")
    if child.approximate_age is not None and not 0 <= child.approximate_age <= MAX_AGE:
        yield Violation("child.approximate_age", f"must be between 0 and {MAX_AGE}")
    if child.birth_date is not None:
        age = child.age_on(today)
        if child.birth_date > today:
            yield Violation("child.birth_date", "must not be in the future")
        elif age is not None and age > MAX_AGE:
            yield Violation("child.birth_date", f"the child must be {MAX_AGE} or younger")
    if child.identity_number is not None:
        problem = identity_number_problem(child.identity_number, today)
        if problem is not None:
            yield Violation("child.identity_number", problem)
        elif child.birth_date not in (None, identity_birth_date(child.identity_number)):
            yield Violation("child.identity_number", "birth date differs from child.birth_date")
    yield from _too_long("child.name", child.name)
    yield from _too_long("child.description", child.description)
    yield from _too_long("child.school", child.school)
    if len(child.guardian_names) > MAX_GUARDIAN_NAMES:
        yield Violation("child.guardian_names", f"at most {MAX_GUARDIAN_NAMES} names")
    for name in child.guardian_names:
        yield from _too_long("child.guardian_names", name)


def _place_problems(place: Place) -> Iterator[Violation]:
    problem = division_code_problem(place.division_code)
    if problem is not None:
        yield Violation("place.division_code", problem)
    yield from _too_long("place.text", place.text)


def _occurred_at_problems(occurred_at: datetime, now: datetime) -> Iterator[Violation]:
    if occurred_at.tzinfo is None:
        yield Violation("occurred_at", "must include a time zone")
    elif occurred_at > now + CLOCK_SKEW_ALLOWANCE:
        yield Violation("occurred_at", "must not be in the future")


def _situation_problems(situations: frozenset[SituationType]) -> Iterator[Violation]:
    if not situations:
        yield Violation("situations", "choose at least one situation type")


def _narrative_problems(narrative: str) -> Iterator[Violation]:
    length = len(narrative.strip())
    if length < NARRATIVE_MIN_CHARS:
        yield Violation("narrative", f"must be at least {NARRATIVE_MIN_CHARS} characters")
    elif length > NARRATIVE_MAX_CHARS:
        yield Violation("narrative", f"must be at most {NARRATIVE_MAX_CHARS} characters")
