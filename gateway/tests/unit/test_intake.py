from datetime import UTC, datetime
from typing import Any

import pytest
from minorprot.common.v1 import common_pb2
from minorprot.reporting.v1 import reporting_pb2
from werkzeug.datastructures import MultiDict

from gateway import intake
from gateway.clients import BackendError
from platform_runtime.errors import FieldViolation, InvalidInput

TOWN = "110111008"


def payload(**changes: Any) -> dict[str, Any]:
    base = {
        "channel": "staff_hotline",
        "child": {"name": "张小明", "sex": "male", "birth_date": "2015-03-02", "approximate_age": ""},
        "place": {"division_code": "", "text": "良乡东路"},
        "occurred_at": "2025-05-01T10:30",
        "situation_types": ["wandering"],
        "facts": ["child_alone"],
        "narrative": "在车站附近独自徘徊两天。",
        "reporter": {},
    }
    return base | changes


def test_form_fields_become_the_nested_payload() -> None:
    form = MultiDict(
        [
            ("channel", "staff_hotline"),
            ("child.name", "张小明"),
            ("place.text", "车站"),
            ("situation_types", "wandering"),
            ("situation_types", "out_of_school"),
            ("csrf_token", "t"),
        ]
    )
    assert intake.payload_from_form(form) == {
        "channel": "staff_hotline",
        "child": {"name": "张小明"},
        "place": {"text": "车站"},
        "situation_types": ["wandering", "out_of_school"],
        "facts": [],
    }


def test_a_complete_payload_becomes_the_request() -> None:
    request = intake.build_request(payload(), default_division=TOWN)
    assert request.channel == reporting_pb2.CHANNEL_STAFF_HOTLINE
    assert request.child.sex == common_pb2.SEX_MALE
    assert (request.child.birth_date.year, request.child.birth_date.month, request.child.birth_date.day) == (2015, 3, 2)
    assert request.division_code == TOWN  # the user's town unless another code is given
    assert list(request.situation_types) == ["wandering"] and list(request.facts) == ["child_alone"]
    assert not request.HasField("reporter")


def test_a_local_time_is_beijing_time_and_an_offset_is_kept() -> None:
    beijing = intake.build_request(payload(), default_division=TOWN).occurred_at.ToDatetime(tzinfo=UTC)
    assert beijing == datetime(2025, 5, 1, 2, 30, tzinfo=UTC)
    explicit = intake.build_request(payload(occurred_at="2025-05-01T10:30:00+00:00"), default_division=TOWN)
    assert explicit.occurred_at.ToDatetime(tzinfo=UTC) == datetime(2025, 5, 1, 10, 30, tzinfo=UTC)


def test_every_unreadable_field_is_reported_at_once() -> None:
    bad = payload(
        channel="carrier_pigeon",
        child={"birth_date": "2015-02-30", "approximate_age": "seven", "sex": "x"},
        occurred_at="yesterday",
        situation_types=["wandering", "bogus"],
    )
    with pytest.raises(InvalidInput) as raised:
        intake.build_request(bad, default_division=TOWN)
    fields = {violation.field for violation in raised.value.violations}
    assert fields == {
        "channel",
        "child.birth_date",
        "child.approximate_age",
        "child.sex",
        "occurred_at",
        "situation_types",
    }


def test_an_anonymous_report_never_carries_a_reporter() -> None:
    request = intake.build_request(
        payload(channel="public_anonymous", reporter={"name": "李四", "phone": "13900000000"}), default_division=TOWN
    )
    assert not request.HasField("reporter")


def test_reporter_role_and_agency_apply_only_to_their_channels() -> None:
    reporter = {
        "name": "陈老师",
        "phone": "13900000004",
        "organisation": "中心小学",
        "role": "teacher",
        "agency": "police",
    }
    mandated = intake.build_request(payload(channel="mandated_reporter", reporter=reporter), default_division=TOWN)
    assert (mandated.reporter.role, mandated.agency_kind) == ("teacher", "")
    shared = intake.build_request(payload(channel="agency_share", reporter=reporter), default_division=TOWN)
    assert (shared.reporter.role, shared.agency_kind) == ("", "police")
    hotline = intake.build_request(payload(reporter={"role": "teacher"}), default_division=TOWN)
    assert not hotline.HasField("reporter")  # nothing left of the reporter once the role does not apply


def test_the_receipt_goes_by_sms_or_e_mail_only_when_the_box_is_ticked() -> None:
    ticked = {"consent": "yes", "address": "13900000000", "locale": "en"}
    anonymous = intake.build_request(payload(channel="public_anonymous", receipt_contact=ticked), default_division=TOWN)
    assert not anonymous.HasField("reporter")  # the address is for the receipt alone
    assert (anonymous.receipt_contact.consent, anonymous.receipt_contact.address) == (True, "13900000000")
    assert anonymous.receipt_contact.locale == "en"
    json_api = intake.build_request(payload(receipt_contact={"consent": True}), default_division=TOWN)
    assert json_api.receipt_contact.consent and not json_api.receipt_contact.address
    # Only the page's language: nothing asked for.
    untouched = intake.build_request(payload(receipt_contact={"locale": "zh-CN"}), default_division=TOWN)
    assert not untouched.HasField("receipt_contact")
    # An address without the tick goes on, for the service to refuse (nobody waits for a message never sent).
    unticked = intake.build_request(payload(receipt_contact={"address": "a@b.cn"}), default_division=TOWN)
    assert (unticked.receipt_contact.consent, unticked.receipt_contact.address) == (False, "a@b.cn")


def test_guardian_names_may_be_typed_in_one_field() -> None:
    request = intake.build_request(
        payload(child={"name": "小明", "guardian_names": "张三、李四, 王五"}), default_division=TOWN
    )
    assert list(request.child.guardian_names) == ["张三", "李四", "王五"]


def test_service_violations_land_on_the_form_fields() -> None:
    error = BackendError(
        "INVALID_ARGUMENT",
        "bad",
        (
            FieldViolation("situations", "choose at least one situation type"),
            FieldViolation("division_code", "must lie within town 110111008"),
            FieldViolation("reporter.phone", "must be a mainland mobile number"),
        ),
    )
    assert intake.form_errors(error) == {
        "situation_types": ["choose at least one situation type"],
        "place.division_code": ["must lie within town 110111008"],
        "reporter.phone": ["must be a mainland mobile number"],
    }


def test_a_service_refusal_without_fields_is_shown_for_the_whole_form() -> None:
    assert intake.form_errors(BackendError("INVALID_ARGUMENT", "nope")) == {"": ["nope"]}


def test_other_failures_are_not_the_forms_to_show() -> None:
    assert intake.form_errors(BackendError("UNAVAILABLE", "down")) is None
    assert intake.form_errors(BackendError("PERMISSION_DENIED", "no")) is None
