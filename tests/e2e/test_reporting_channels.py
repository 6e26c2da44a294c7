"""Every discovery channel through its real entry point, the whole platform running as separate processes
on PostgreSQL and Kafka (the `platform` fixture):

- a teacher (mandated reporter) through the portal's REST API with her own account;
- member units' own systems over gRPC straight to the reporting service, with an `agency_system` token
  naming their agency (police, education, health, justice, court, procuratorate, women's federation);
- township staff entering hotline calls, walk-ins, relatives' and neighbours' reports through the API;
- the anonymous public through the portal's public HTML form.

Each channel's field errors come back field by field; crisis reports reach the crisis topic; reports about
one child from three channels end up on one case file, and the reporter's receipt shows the outcome only.
"""

from __future__ import annotations

import http.cookiejar
import re
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from minorprot.common.v1 import common_pb2
from minorprot.reporting.v1 import events_pb2, reporting_pb2, reporting_pb2_grpc
from stdnum.cn import ric

from platform_runtime.auth import Principal, Role, TokenIssuer
from platform_runtime.consumer import make_consumer
from platform_runtime.events import unpack
from platform_runtime.local_stack import dev_token_issuer
from platform_runtime.settings import KafkaSettings
from platform_runtime.topics import REPORTING_REPORT
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from tests.e2e.conftest import RunningStack
from tests.support.infra import DISTRICT, PILOT_TENANT
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

AGENCIES = ("police", "education", "health", "justice", "court", "procuratorate", "womens_federation")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_RECEIPT = re.compile(r"R-[0-9A-Z]{7}-[0-9A-Z]{7}-[0-9A-Z]{7}")


def occurred() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="minutes")


def report_body(channel: str, **changes: Any) -> dict[str, Any]:
    body = {
        "channel": channel,
        "child": {"name": "赵小川", "sex": "male", "approximate_age": 10},
        "place": {"division_code": PILOT_TENANT + "201", "text": "良乡镇某村"},
        "occurred_at": occurred(),
        "situation_types": ["out_of_school"],
        "narrative": "孩子已经两周没有到校,家中无人应答。",
    }
    return body | changes


def violations(reply: Any) -> set[str]:
    return {v["field"] for v in reply.get("violations", [])}


# -- the entry points ------------------------------------------------------------------------------------


@dataclass
class AgencySystem:
    """A member unit's own system: gRPC to the reporting service with a token naming its agency."""

    stub: reporting_pb2_grpc.ReportingServiceStub
    issuer: TokenIssuer

    def submit(self, agency: str, request: reporting_pb2.SubmitReportRequest) -> reporting_pb2.SubmitReportResponse:
        system = Principal(f"{agency}-system", f"{agency} system", Role.AGENCY_SYSTEM, PILOT_TENANT, DISTRICT, agency)
        metadata = (("authorization", f"Bearer {self.issuer.issue(system, 'reporting')}"),)
        reply: reporting_pb2.SubmitReportResponse = self.stub.SubmitReport(request, metadata=metadata)
        return reply


@pytest.fixture(scope="module")
def agency_system(platform: RunningStack) -> Iterator[AgencySystem]:
    config = platform.stack.config
    issuer = dev_token_issuer(config.data_dir)
    with grpc.insecure_channel(f"127.0.0.1:{config.grpc_port('reporting')}") as channel:
        yield AgencySystem(reporting_pb2_grpc.ReportingServiceStub(channel), issuer)


def agency_request(**changes: Any) -> reporting_pb2.SubmitReportRequest:
    stamp = reporting_pb2.SubmitReportRequest().occurred_at
    stamp.FromDatetime(datetime.now(UTC) - timedelta(hours=3))
    values: dict[str, Any] = {
        "channel": reporting_pb2.CHANNEL_AGENCY_SHARE,
        "child": reporting_pb2.ChildDescription(name="钱小雨", sex=common_pb2.SEX_FEMALE, approximate_age=12),
        "division_code": PILOT_TENANT + "202",
        "place_text": "良乡镇某村",
        "occurred_at": stamp,
        "situation_types": ["improperly_guarded"],
        "narrative": "接报:孩子长期无人照料,邻居反映常在外游荡至深夜。",
        "reporter": reporting_pb2.Reporter(name="值班员", phone="010-69351234", organisation="区属单位"),
    }
    return reporting_pb2.SubmitReportRequest(**{k: v for k, v in (values | changes).items() if v is not None})


class PublicForm:
    """A browser without scripts on the portal's public pages: cookies, the CSRF token, form posts."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def submit(self, fields: dict[str, str | list[str]]) -> tuple[int, str]:
        path = f"/public/{PILOT_TENANT}/report"
        with self.opener.open(self.base_url + path, timeout=30) as page:
            token = _CSRF.search(page.read().decode())
        assert token
        data = urllib.parse.urlencode(fields | {"csrf_token": token.group(1)}, doseq=True).encode()
        try:
            with self.opener.open(self.base_url + path, data=data, timeout=30) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def public_fields(**changes: str | list[str]) -> dict[str, str | list[str]]:
    fields: dict[str, str | list[str]] = {
        "channel": "public_anonymous",
        "child.description": "穿蓝色校服的男孩,约9岁",
        "place.text": "良乡镇公交站",
        "occurred_at": (datetime.now(CHINA_STANDARD_TIME) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "situation_types": ["wandering"],
        "narrative": "连续几天看到这个孩子晚上独自在公交站,没有大人。",
    }
    return fields | changes


def crisis_events(platform: RunningStack, report_ids: set[str], timeout: float = 60) -> dict[str, Any]:
    """CrisisDeclared events for `report_ids` as they are on this stack's `reporting.report` topic."""
    topic = platform.stack.config.extra_env["KAFKA_TOPIC_PREFIX"] + REPORTING_REPORT
    consumer = make_consumer(KafkaSettings(platform.stack.config.kafka_bootstrap).client_config(), uuid.uuid4().hex)
    consumer.subscribe([topic])
    found: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        while not report_ids <= found.keys() and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            envelope = common_pb2.EventEnvelope.FromString(message.value() or b"")
            if envelope.event_type == events_pb2.CrisisDeclared.DESCRIPTOR.full_name:
                event = unpack(envelope, events_pb2.CrisisDeclared)
                found[event.report_id] = event
    finally:
        consumer.close()
    return found


# -- the channels ----------------------------------------------------------------------------------------


def test_a_teacher_reports_through_the_api_as_a_mandated_reporter(platform: RunningStack) -> None:
    teacher = platform.login("teacher", platform.password)
    reporter = {"name": "陈老师", "phone": "13900000004", "organisation": "良乡中心小学", "role": "teacher"}
    status, reply = platform.call(
        "POST", "/api/v1/reports", teacher, report_body("mandated_reporter", reporter=reporter)
    )
    assert status == 201, reply
    assert _RECEIPT.fullmatch(reply["receipt_number"]) and reply["urgency"]["code"] == "normal"

    status, reply = platform.call(
        "POST", "/api/v1/reports", teacher, report_body("mandated_reporter", reporter={"name": "陈老师"})
    )
    assert status == 400
    assert violations(reply) == {"reporter.phone", "reporter.organisation", "reporter.role"}
    status, _ = platform.call("POST", "/api/v1/reports", teacher, report_body("staff_hotline"))
    assert status == 403  # a teacher reports as a teacher


def test_every_member_unit_shares_over_grpc_and_a_resent_report_is_the_first_one(
    agency_system: AgencySystem, platform: RunningStack
) -> None:
    stored = {}
    for agency in AGENCIES:
        reply = agency_system.submit(agency, agency_request(external_reference="2024-0001"))
        assert reply.report.channel == reporting_pb2.CHANNEL_AGENCY_SHARE and reply.receipt_number
        again = agency_system.submit(agency, agency_request(external_reference="2024-0001"))
        assert again.report.report_id == reply.report.report_id and again.receipt_number == ""
        stored[agency] = reply.report.report_id
    assert len(set(stored.values())) == len(AGENCIES)  # the same case number at two agencies: two reports

    caseworker = platform.login("caseworker", platform.password)
    _, shown = platform.call("GET", f"/api/v1/reports/{stored['court']}?purpose=verify-the-agency", caseworker)
    assert shown["channel"]["code"] == "agency_share" and shown["reporter"]["organisation"] == "区属单位"


def test_an_agency_system_gets_field_errors_and_cannot_speak_for_another_agency(agency_system: AgencySystem) -> None:
    for request, field in (
        (agency_request(reporter=None), b'"reporter"'),
        (agency_request(agency_kind="police"), b"reporter.agency"),
        (agency_request(narrative="太短"), b"narrative"),
    ):
        with pytest.raises(grpc.RpcError) as invalid:
            agency_system.submit("health", request)
        assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert field in dict(invalid.value.trailing_metadata() or ())["x-field-violations-bin"]


@pytest.mark.parametrize(
    ("channel", "reporter"),
    [
        ("staff_hotline", None),  # a caller may stay anonymous
        ("staff_walk_in", {"name": "孙女士", "phone": "13911112222"}),
        ("relative", {"name": "赵奶奶", "phone": "13933334444"}),
        ("neighbour", {"name": "周先生", "phone": "010-69358888"}),
    ],
)
def test_staff_enter_hotline_walk_in_relative_and_neighbour_reports(
    platform: RunningStack, channel: str, reporter: dict[str, str] | None
) -> None:
    caseworker = platform.login("caseworker", platform.password)
    body = report_body(channel) | ({"reporter": reporter} if reporter else {})
    status, reply = platform.call("POST", "/api/v1/reports", caseworker, body)
    assert status == 201, reply
    _, shown = platform.call("GET", f"/api/v1/reports/{reply['report_id']}?purpose=first-contact", caseworker)
    assert shown["channel"]["code"] == channel
    assert shown["reporter"] == ({**reporter, "organisation": "", "role": ""} if reporter else None)


@pytest.mark.parametrize(
    ("channel", "changes", "fields"),
    [
        ("staff_hotline", {"reporter": {"phone": "12345"}}, {"reporter.phone"}),
        ("staff_walk_in", {"narrative": "短", "situation_types": []}, {"narrative", "situations"}),
        ("relative", {"reporter": {"name": "赵奶奶"}}, {"reporter.phone"}),
        ("neighbour", {"place": {"division_code": "110111009"}}, {"reporter", "division_code"}),
    ],
)
def test_staff_channels_report_field_errors(
    platform: RunningStack, channel: str, changes: dict[str, Any], fields: set[str]
) -> None:
    caseworker = platform.login("caseworker", platform.password)
    status, reply = platform.call("POST", "/api/v1/reports", caseworker, report_body(channel, **changes))
    assert status == 400 and violations(reply) == fields, reply


def test_the_public_reports_anonymously_through_the_public_form(platform: RunningStack) -> None:
    form = PublicForm(platform.base_url)
    status, page = form.submit(public_fields(**{"reporter.name": "typed but anonymous"}))
    assert status == 200 and _RECEIPT.search(page)
    assert "穿蓝色校服" not in page  # the receipt and nothing else

    status, page = form.submit(public_fields(narrative="短", situation_types=[]))
    assert status == 400
    assert 'data-field="narrative"' in page and 'data-field="situation_types"' in page


def test_crisis_reports_from_any_channel_reach_the_crisis_topic(
    platform: RunningStack, agency_system: AgencySystem
) -> None:
    teacher = platform.login("teacher", platform.password)
    reporter = {"name": "陈老师", "phone": "13900000004", "organisation": "良乡中心小学", "role": "teacher"}
    _, by_teacher = platform.call(
        "POST",
        "/api/v1/reports",
        teacher,
        report_body("mandated_reporter", reporter=reporter, situation_types=["violence_injury_signs"]),
    )
    by_police = agency_system.submit("police", agency_request(situation_types=["unknown_origin_missing_trafficked"]))
    assert by_teacher["crisis"] and by_police.report.crisis
    found = crisis_events(platform, {by_teacher["report_id"], by_police.report.report_id})
    assert found.keys() == {by_teacher["report_id"], by_police.report.report_id}
    assert "notify_police" in found[by_police.report.report_id].required_actions


# -- one child, three channels -----------------------------------------------------------------------------


def test_one_child_reported_through_three_channels_has_one_case_file(
    platform: RunningStack, agency_system: AgencySystem
) -> None:
    name, marker = "孙" + "雨桐"[: 1 + uuid.uuid4().int % 2], uuid.uuid4().hex[:6]
    number = "11011120140607" + f"{uuid.uuid4().int % 450 * 2 + 100}"  # an even sequence: a girl
    number += ric.calc_check_digit(number + "0")
    teacher = platform.login("teacher", platform.password)
    reporter = {"name": "陈老师", "phone": "13900000004", "organisation": "良乡中心小学", "role": "teacher"}
    child = {"name": name, "sex": "female", "birth_date": "2014-06-07", "identity_number": number}
    status, first = platform.call(
        "POST", "/api/v1/reports", teacher, report_body("mandated_reporter", reporter=reporter, child=child)
    )
    assert status == 201, first
    police = agency_system.submit(
        "police",
        agency_request(
            child=reporting_pb2.ChildDescription(
                name=name,
                sex=common_pb2.SEX_FEMALE,
                birth_date=common_pb2.Date(year=2014, month=6, day=7),
                identity_number=number,
            )
        ),
    ).report
    status, page = PublicForm(platform.base_url).submit(
        public_fields(**{"child.name": name, "narrative": f"{name}又一个人在公交站过夜了。{marker}"})
    )
    assert status == 200, page

    caseworker = platform.login("caseworker", platform.password)
    _, teachers = platform.call("GET", f"/api/v1/reports/{first['report_id']}", caseworker)
    child_id = teachers["child_id"]
    assert child_id and police.child_id == child_id  # a provisional child, then found again by the police
    _, listed = platform.call("GET", "/api/v1/reports?page_size=200", caseworker)
    # Lists never carry narratives: the public report is the one with this child's name and no link yet.
    (public,) = [
        r for r in listed["reports"] if r["child"]["name"] == name and r["channel"]["code"].startswith("public")
    ]
    assert public["status"]["code"] == "needs_attention" and not public["child_id"]

    _, candidates = platform.call("GET", f"/api/v1/reports/{public['report_id']}/candidates", caseworker)
    assert child_id in {c["child_id"] for c in candidates["candidates"]}
    status, linked = platform.call(
        "POST", f"/api/v1/reports/{public['report_id']}/link", caseworker, {"child_id": child_id}
    )
    assert status == 200 and linked["child_id"] == child_id
    assert linked["group_id"] == teachers["group_id"] == first["report_id"]

    wanted = {first["report_id"], police.report_id, public["report_id"]}

    def timeline() -> set[str] | None:
        _, case = platform.call(
            "GET",
            f"/api/v1/children/{child_id}/case-file?purpose=" + urllib.parse.quote("核对报告 checking reports"),
            caseworker,
        )
        found = {entry["reference_id"] for entry in case["timeline"] if entry["kind"] == "report"}
        return found if wanted <= found else None

    assert eventually(timeline, timeout=60, what="three reports on one case file") == wanted


def test_the_reporter_sees_the_outcome_and_nothing_else(platform: RunningStack) -> None:
    teacher = platform.login("teacher", platform.password)
    reporter = {"name": "陈老师", "phone": "13900000004", "organisation": "良乡中心小学", "role": "teacher"}
    body = report_body("mandated_reporter", reporter=reporter, narrative="孩子手臂有多处淤青,说是在家里摔的。")
    _, submitted = platform.call("POST", "/api/v1/reports", teacher, body)
    caseworker = platform.login("caseworker", platform.password)
    path = f"/api/v1/reports/{submitted['report_id']}"
    assert platform.call("POST", f"{path}/close", caseworker)[0] == 409  # not without telling the reporter
    notice = "已由乡镇儿童督导员上门了解情况并跟进。"
    assert platform.call("POST", f"{path}/outcome-notice", caseworker, {"text": notice})[0] == 200
    assert platform.call("POST", f"{path}/close", caseworker)[1]["status"]["code"] == "closed"

    status, seen = platform.call(
        "POST", "/api/v1/public/receipts/lookup", body={"receipt_number": submitted["receipt_number"]}
    )
    assert status == 200
    assert (seen["status"], seen["outcome_notice"]) == ("已办结", notice)
    shown = str(seen)
    for secret in ("赵小川", "良乡镇某村", "淤青", "陈老师", "13900000004", "良乡中心小学", submitted["report_id"]):
        assert secret not in shown
