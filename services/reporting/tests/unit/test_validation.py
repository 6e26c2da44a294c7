from dataclasses import replace
from datetime import date, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from minorprot.reporting.v1 import reporting_pb2
from stdnum.cn import ric

from services.reporting.adapters import messages
from services.reporting.domain.errors import InvalidInput
from services.reporting.domain.model import AgencyKind, Channel, Reporter, ReporterRole
from services.reporting.domain.validation import (
    CHANNEL_POLICIES,
    NARRATIVE_MAX_CHARS,
    NARRATIVE_MIN_CHARS,
    identity_number_problem,
    is_valid_phone,
    validate_submission,
)
from services.reporting.tests.unit.builders import (
    NOW,
    POLICE_OFFICER,
    RESIDENT,
    TEACHER,
    born,
    child,
    identity_number,
    submission,
)


def problems(sub) -> dict[str, str]:
    """field -> message of every violation, or {} when the submission is valid."""
    try:
        validate_submission(sub, NOW)
    except InvalidInput as error:
        return {v.field: v.message for v in error.violations}
    return {}


# --- channels -------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", list(Channel))
def test_every_channel_accepts_its_minimal_valid_report(channel):
    assert problems(submission(channel)) == {}


def test_every_channel_has_a_policy():
    assert set(CHANNEL_POLICIES) == set(Channel)


@pytest.mark.parametrize(
    "channel",
    [Channel.MANDATED_REPORTER, Channel.AGENCY_SHARE, Channel.RELATIVE, Channel.NEIGHBOUR, Channel.PUBLIC_NAMED],
)
def test_identified_channels_require_a_reporter(channel):
    assert "reporter" in problems(submission(channel, reporter=None))


@pytest.mark.parametrize(
    "channel",
    [Channel.MANDATED_REPORTER, Channel.AGENCY_SHARE, Channel.RELATIVE, Channel.NEIGHBOUR, Channel.PUBLIC_NAMED],
)
def test_identified_channels_require_name_and_phone(channel):
    identified = {Channel.MANDATED_REPORTER: TEACHER, Channel.AGENCY_SHARE: POLICE_OFFICER}.get(channel, RESIDENT)
    nameless = replace(identified, name=" ", phone=None)
    assert {"reporter.name", "reporter.phone"} <= problems(submission(channel, reporter=nameless)).keys()


def test_mandated_reporter_needs_organisation_and_role():
    reporter = Reporter("王老师", "13800138000")
    found = problems(submission(Channel.MANDATED_REPORTER, reporter=reporter))
    assert found.keys() == {"reporter.organisation", "reporter.role"}


def test_agency_share_needs_organisation_and_agency_kind():
    reporter = Reporter("李警官", "13800138000")
    found = problems(submission(Channel.AGENCY_SHARE, reporter=reporter))
    assert found.keys() == {"reporter.organisation", "reporter.agency"}


@pytest.mark.parametrize("role", list(ReporterRole))
def test_mandated_reporter_accepts_every_role(role):
    reporter = replace(TEACHER, role=role)
    assert problems(submission(Channel.MANDATED_REPORTER, reporter=reporter)) == {}


@pytest.mark.parametrize("agency", list(AgencyKind))
def test_agency_share_accepts_every_agency(agency):
    reporter = replace(POLICE_OFFICER, agency=agency)
    assert problems(submission(Channel.AGENCY_SHARE, reporter=reporter)) == {}


def test_role_and_agency_are_rejected_on_other_channels():
    reporter = Reporter("赵女士", "13912345678", role=ReporterRole.TEACHER, agency=AgencyKind.POLICE)
    assert problems(submission(Channel.NEIGHBOUR, reporter=reporter)).keys() == {"reporter.role", "reporter.agency"}


@pytest.mark.parametrize("channel", [Channel.STAFF_HOTLINE, Channel.STAFF_WALK_IN])
def test_staff_channels_accept_a_caller_who_stays_anonymous(channel):
    assert problems(submission(channel, reporter=None)) == {}
    assert problems(submission(channel, reporter=Reporter(phone="13912345678"))) == {}


@pytest.mark.parametrize("channel", [Channel.STAFF_HOTLINE, Channel.STAFF_WALK_IN])
def test_staff_channels_reject_an_empty_reporter(channel):
    assert "reporter" in problems(submission(channel, reporter=Reporter(name="  ")))


def test_anonymous_public_report_must_not_carry_a_reporter():
    found = problems(submission(Channel.PUBLIC_ANONYMOUS, reporter=Reporter("赵女士", "13912345678")))
    assert found.keys() == {"reporter"}


# --- all problems at once ---------------------------------------------------------------------------


def with_wrong_check_character(number: str) -> str:
    return number[:-1] + ("1" if number[-1] == "0" else "0")


def test_all_problems_are_reported_together():
    bad = submission(
        Channel.MANDATED_REPORTER,
        reporter=Reporter(phone="12345"),
        child=child(
            description=None,
            approximate_age=18,
            identity_number=with_wrong_check_character(identity_number("11011120150301123")),
        ),
        place=replace(submission().place, division_code="990000000"),
        occurred_at=NOW + timedelta(days=1),
        situations=frozenset(),
        narrative="太短",
    )
    assert problems(bad).keys() == {
        "reporter.name",
        "reporter.phone",
        "reporter.organisation",
        "reporter.role",
        "child",
        "child.approximate_age",
        "child.identity_number",
        "place.division_code",
        "occurred_at",
        "situations",
        "narrative",
    }


# --- place, time, narrative, situations ---------------------------------------------------------------


@pytest.mark.parametrize("code", ["110111008", "110111008001", "810000000", "650102001"])
def test_valid_division_codes(code):
    place = replace(submission().place, division_code=code)
    assert problems(submission(place=place)) == {}


@pytest.mark.parametrize("code", ["", "11011100", "1101110080", "1101110080011", "11011100a", "990111008", "000000000"])
def test_invalid_division_codes(code):
    place = replace(submission().place, division_code=code)
    assert "place.division_code" in problems(submission(place=place))


def test_occurred_at_may_be_a_little_ahead_for_clock_skew_but_not_more():
    assert problems(submission(occurred_at=NOW + timedelta(minutes=5))) == {}
    assert "occurred_at" in problems(submission(occurred_at=NOW + timedelta(minutes=5, seconds=1)))


def test_occurred_at_needs_a_time_zone():
    assert "occurred_at" in problems(submission(occurred_at=NOW.replace(tzinfo=None)))


def test_now_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone"):
        validate_submission(submission(), NOW.replace(tzinfo=None))


def test_narrative_length_bounds():
    assert problems(submission(narrative="字" * NARRATIVE_MIN_CHARS)) == {}
    assert problems(submission(narrative="字" * NARRATIVE_MAX_CHARS)) == {}
    assert "narrative" in problems(submission(narrative="字" * (NARRATIVE_MIN_CHARS - 1)))
    assert "narrative" in problems(submission(narrative="  " + "字" * (NARRATIVE_MIN_CHARS - 1) + "   "))
    assert "narrative" in problems(submission(narrative="字" * (NARRATIVE_MAX_CHARS + 1)))


def test_at_least_one_situation_type():
    assert "situations" in problems(submission(situations=frozenset()))


def test_place_text_length_is_bounded():
    place = replace(submission().place, text="路" * 201)
    assert "place.text" in problems(submission(place=place))


# --- phones ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    ["13800138000", "19912345678", "+8613800138000", "010-69351234", "01069351234", "0571-8888888", "010-69351234-123"],
)
def test_valid_phones(phone):
    assert is_valid_phone(phone)
    assert problems(submission(reporter=Reporter("赵女士", phone))) == {}


@pytest.mark.parametrize(
    "phone", ["12800138000", "1380013800", "138001380001", "69351234", "010-0935123", "110", "138 0013 8000", "abc"]
)
def test_invalid_phones(phone):
    assert not is_valid_phone(phone)
    assert "reporter.phone" in problems(submission(reporter=Reporter("赵女士", phone)))


# --- the child --------------------------------------------------------------------------------------------


def test_child_needs_a_name_or_a_description():
    assert "child" in problems(submission(child=child(description=None)))
    assert "child" in problems(submission(child=child(name="  ", description=" ")))
    assert problems(submission(child=child(name="张小明", description=None))) == {}


@pytest.mark.parametrize(("age", "ok"), [(-1, False), (0, True), (17, True), (18, False)])
def test_approximate_age_is_0_to_17(age, ok):
    assert ("child.approximate_age" not in problems(submission(child=child(approximate_age=age)))) is ok


def test_birth_date_must_make_a_minor_and_not_be_in_the_future():
    assert problems(submission(child=child(birth_date=born(17)))) == {}
    assert "child.birth_date" in problems(submission(child=child(birth_date=born(18))))
    assert "child.birth_date" in problems(submission(child=child(birth_date=NOW.date() + timedelta(days=1))))


def test_a_valid_identity_number_is_accepted_in_upper_or_lower_case():
    number = identity_number("11011120150301123")
    assert problems(submission(child=child(identity_number=number))) == {}
    candidates = (identity_number(f"110111201503011{n:02d}") for n in range(100))
    ending_in_x = next(number for number in candidates if number.endswith("X"))
    assert problems(submission(child=child(identity_number=ending_in_x.lower()))) == {}


def test_an_unknown_or_retired_address_code_is_not_a_reason_to_reject():
    # 110103 (崇文区) was merged away in 2010; python-stdnum's validate() would reject such numbers.
    assert identity_number_problem(identity_number("11010320150301123"), NOW.date()) is None
    assert identity_number_problem(identity_number("99999920150301123"), NOW.date()) is None


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("11011120150301123", "17 digits"),
        ("11011120150301123A", "17 digits"),
        ("1101112015030112301", "17 digits"),
        ("110111201502301230", "impossible birth date"),
        ("110111203001011230", "future"),
    ],
)
def test_malformed_identity_numbers(number, problem):
    assert problem in (identity_number_problem(number, NOW.date()) or "")


def test_every_wrong_check_character_is_caught():
    good = identity_number("11011120150301123")
    assert with_wrong_check_character(good) != good
    for wrong in set("0123456789X") - {good[-1]}:
        assert "check character" in (identity_number_problem(good[:-1] + wrong, NOW.date()) or "")


def test_local_check_agrees_with_python_stdnum():
    for sequence in range(0, 1000, 7):
        first17 = f"11011120150301{sequence:03d}"
        assert identity_number_problem(identity_number(first17), NOW.date()) is None
        assert ric.calc_check_digit(identity_number(first17)) == identity_number(first17)[-1]


def test_identity_number_must_agree_with_the_birth_date():
    number = identity_number("11011120150301123")
    assert problems(submission(child=child(identity_number=number, birth_date=date(2015, 3, 1)))) == {}
    found = problems(submission(child=child(identity_number=number, birth_date=date(2015, 3, 2))))
    assert "differs" in found["child.identity_number"]


def test_long_child_fields_and_too_many_guardians_are_rejected():
    found = problems(submission(child=child(name="名" * 51, school="校" * 101, guardian_names=tuple(["张三"] * 11))))
    assert {"child.name", "child.school", "child.guardian_names"} <= found.keys()


def test_digits_of_other_scripts_are_not_digits_of_an_identity_number_or_phone():
    number = identity_number("11011120150301123")
    arabic_indic = number.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert "17 digits" in (identity_number_problem(arabic_indic, NOW.date()) or "")
    assert not is_valid_phone("١٣٩١٢٣٤٥٦٧٨")


def test_a_full_width_identity_number_is_folded_before_it_is_checked_and_stored():
    number = identity_number("11011120150301123")
    full_width = " ".join(number).translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    request = reporting_pb2.SubmitReportRequest(
        channel=reporting_pb2.CHANNEL_MANDATED_REPORTER,
        child=reporting_pb2.ChildDescription(identity_number=full_width),
        occurred_at=Timestamp(seconds=int(NOW.timestamp())),
    )
    assert messages.submission(request).child.identity_number == number
