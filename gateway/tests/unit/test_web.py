"""The portal and the API through Flask's test client, with the services replaced by in-process fakes."""

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from minorprot.notify.v1 import notify_pb2
from minorprot.reporting.v1 import reporting_pb2
from sqlalchemy import create_engine
from werkzeug.test import TestResponse

from gateway.bootstrap import Components
from gateway.clients import BackendError, Caller
from gateway.tests.unit.conftest import PASSWORD, credentials, csrf_from, login
from gateway.tests.unit.fakes import RECEIPT, FakeBackends, stamp
from platform_runtime.auth import Principal, Role
from platform_runtime.errors import FieldViolation

REPORT_FORM = {
    "channel": "staff_hotline",
    "child.name": "张小明",
    "child.sex": "male",
    "child.approximate_age": "9",
    "place.division_code": "110111008",
    "place.text": "良乡火车站",
    "occurred_at": "2025-05-01T10:30",
    "situation_types": ["wandering"],
    "facts": ["child_alone"],
    "narrative": "孩子在车站独自徘徊两天,无成年人陪伴。",
}


def principal_of(caller: Caller) -> Principal:
    assert caller.principal is not None
    return caller.principal


def json_of(response: TestResponse) -> Any:
    """The JSON of a response (typed Any: the tests look into it freely)."""
    assert response.is_json, response.get_data(as_text=True)
    return response.json


# -- health -------------------------------------------------------------------------------------------------


def test_liveness_and_readiness(client: FlaskClient) -> None:
    assert json_of(client.get("/healthz")) == {"status": "ok"}
    assert json_of(client.get("/readyz")) == {"status": "ready"}


def test_readiness_fails_without_the_database(client: FlaskClient, components: Components) -> None:
    components.engine.dispose()
    components.engine = create_engine("sqlite:////nonexistent/dir/db.sqlite")
    assert client.get("/readyz").status_code == 503


# -- signing in -------------------------------------------------------------------------------------------


def test_pages_ask_for_a_login_first(client: FlaskClient) -> None:
    response = client.get("/reports")
    assert response.status_code == 302 and response.location.startswith("/login?next=/reports")


def test_login_sets_a_protected_session_cookie_and_lands_on_next(client: FlaskClient) -> None:
    token = csrf_from(client, "/login")
    response = client.post(
        "/login", data={"username": "teacher", "password": PASSWORD, "csrf_token": token, "next": "/reports"}
    )
    assert response.status_code == 302 and response.location == "/reports"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_login_never_redirects_off_site(client: FlaskClient, target: str) -> None:
    token = csrf_from(client, "/login")
    response = client.post(
        "/login", data={"username": "teacher", "password": PASSWORD, "csrf_token": token, "next": target}
    )
    assert response.location == "/"


def test_a_bad_login_says_the_same_for_unknown_users_and_wrong_passwords(client: FlaskClient) -> None:
    token = csrf_from(client, "/login")
    wrong = client.post("/login", data={"username": "caseworker", "password": "nope", "csrf_token": token})
    unknown = client.post("/login", data={"username": "nobody", "password": "nope", "csrf_token": token})
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.get_data(as_text=True)
    # The pages differ only in the username typed back into the form.
    wrong_page = wrong.get_data(as_text=True).replace('value="caseworker"', 'value="?"')
    assert wrong_page == unknown.get_data(as_text=True).replace('value="nobody"', 'value="?"')


def test_logins_are_throttled(client: FlaskClient) -> None:
    token = csrf_from(client, "/login")
    for _ in range(5):
        client.post("/login", data={"username": "caseworker", "password": "nope", "csrf_token": token})
    response = client.post("/login", data={"username": "caseworker", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 429


def test_a_post_without_the_csrf_token_is_refused(client: FlaskClient) -> None:
    assert client.post("/login", data={"username": "caseworker", "password": PASSWORD}).status_code == 400
    login(client)
    assert client.post("/reports/new", data=REPORT_FORM).status_code == 400
    assert client.post("/reports/new", data=REPORT_FORM | {"csrf_token": "forged"}).status_code == 400


def test_every_post_form_carries_the_csrf_token(client: FlaskClient) -> None:
    login(client)
    for path in ["/", "/reports/new", "/children/c1/case-file", "/public/110111008/report", "/public/receipt"]:
        page = client.get(path).get_data(as_text=True)
        assert page.count("<form") == page.count('name="csrf_token"'), path


def test_logout_ends_the_session(client: FlaskClient) -> None:
    login(client)
    token = csrf_from(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


# -- the staff portal -------------------------------------------------------------------------------------


def test_home_shows_the_inbox_and_marks_read(client: FlaskClient, backends: FakeBackends) -> None:
    backends.inbox.append(
        notify_pb2.Notification(
            notification_id="n1",
            title="新转介 New referral",
            body="区公安局",
            priority=notify_pb2.PRIORITY_URGENT,
            created_at=stamp(),
        )
    )
    login(client)
    page = client.get("/").get_data(as_text=True)
    assert "新转介 New referral" in page and "标为已读" in page
    caller, _ = backends.last("list_inbox")
    assert principal_of(caller).role is Role.CASEWORKER
    client.post("/inbox/n1/read", data={"csrf_token": csrf_from(client, "/")})
    assert backends.last("mark_read")[1] == "n1"
    assert "标为已读" not in client.get("/").get_data(as_text=True)


def test_home_still_works_without_the_notify_service(client: FlaskClient, backends: FakeBackends) -> None:
    backends.fail["list_inbox"] = BackendError("UNAVAILABLE", "failed to connect to all addresses; 127.0.0.1:4")
    login(client)
    page = client.get("/")
    assert page.status_code == 200
    assert "消息暂不可用" in page.get_data(as_text=True)
    assert "127.0.0.1" not in page.get_data(as_text=True)


def test_the_report_form_offers_the_roles_channels_and_chinese_labels(client: FlaskClient) -> None:
    login(client, "teacher")
    page = client.get("/reports/new").get_data(as_text=True)
    assert 'value="mandated_reporter"' in page and 'value="staff_hotline"' not in page
    assert "实际无人监护" in page and "被组织乞讨" in page  # situation types from the reporting model
    assert 'value="陈老师"' in page and 'value="110111008"' in page  # the teacher reports as herself, in her town


def test_roles_without_a_channel_get_no_form(client: FlaskClient) -> None:
    login(client, "finance_auditor")
    assert client.get("/reports/new").status_code == 403


def test_submitting_a_report_shows_receipt_urgency_and_crisis(client: FlaskClient, backends: FakeBackends) -> None:
    login(client)
    response = client.post("/reports/new", data=REPORT_FORM | {"csrf_token": csrf_from(client, "/reports/new")})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert RECEIPT in page and "危机" in page and 'id="crisis"' in page
    caller, request = backends.last("submit_report")
    assert principal_of(caller).tenant == "110111008"
    assert caller.client_ip == "127.0.0.1"  # sent on as x-forwarded-for
    assert request.channel == reporting_pb2.CHANNEL_STAFF_HOTLINE and request.child.name == "张小明"


def test_staff_send_the_receipt_number_to_a_caller_who_asks_for_it(client: FlaskClient, backends: FakeBackends) -> None:
    login(client)
    form = client.get("/reports/new").get_data(as_text=True)
    assert 'id="receipt-consent"' in form and 'name="receipt_contact.address"' in form
    assert 'id="receipt-consent" checked' not in form  # asked for by the caller, never by default

    ticked = {"receipt_contact.consent": "yes", "receipt_contact.address": "13700000042"}
    response = client.post(
        "/reports/new", data=REPORT_FORM | ticked | {"csrf_token": csrf_from(client, "/reports/new")}
    )
    assert response.status_code == 200 and 'id="receipt-sending"' in response.get_data(as_text=True)
    _, request = backends.last("submit_report")
    assert (request.receipt_contact.consent, request.receipt_contact.address) == (True, "13700000042")

    response = client.post("/reports/new", data=REPORT_FORM | {"csrf_token": csrf_from(client, "/reports/new")})
    assert 'id="receipt-sending"' not in response.get_data(as_text=True)
    assert not backends.last("submit_report")[1].HasField("receipt_contact")


def test_the_services_field_errors_are_shown_beside_the_fields(client: FlaskClient, backends: FakeBackends) -> None:
    backends.fail["submit_report"] = BackendError(
        "INVALID_ARGUMENT",
        "narrative: must be at least 10 characters",
        (FieldViolation("narrative", "must be at least 10 characters"),),
    )
    login(client)
    response = client.post(
        "/reports/new", data=REPORT_FORM | {"narrative": "短", "csrf_token": csrf_from(client, "/reports/new")}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'data-field="narrative">must be at least 10 characters' in page
    assert 'value="张小明"' in page  # what was typed is kept


def test_reports_list_and_detail(client: FlaskClient, backends: FakeBackends) -> None:
    login(client)
    client.post("/reports/new", data=REPORT_FORM | {"csrf_token": csrf_from(client, "/reports/new")})
    listing = client.get("/reports").get_data(as_text=True)
    assert "张小明" in listing and 'data-report-id="rep1"' in listing
    assert "良乡火车站" in client.get("/reports/rep1").get_data(as_text=True)
    assert client.get("/reports/nope").status_code == 404


def test_a_case_file_needs_a_purpose(client: FlaskClient, backends: FakeBackends) -> None:
    login(client)
    token = csrf_from(client, "/children/c1/case-file")
    refused = client.post("/children/c1/case-file", data={"purpose": "", "csrf_token": token})
    assert refused.status_code == 400 and "say why" in refused.get_data(as_text=True)
    shown = client.post("/children/c1/case-file", data={"purpose": "家访前核实", "csrf_token": token})
    assert "张小明" in shown.get_data(as_text=True)
    assert backends.last("get_case_file")[1] == ("c1", "家访前核实")


def test_referrals_list(client: FlaskClient) -> None:
    login(client)
    assert "区公安局" in client.get("/referrals?report_id=rep1").get_data(as_text=True)


def test_a_service_refusal_is_a_plain_error_page(client: FlaskClient, backends: FakeBackends) -> None:
    backends.fail["list_reports"] = BackendError("PERMISSION_DENIED", "only township and district staff read reports")
    login(client)
    response = client.get("/reports")
    assert response.status_code == 403 and "only township" in response.get_data(as_text=True)


def test_an_unexpected_error_shows_no_stack_trace(client: FlaskClient, backends: FakeBackends) -> None:
    backends.fail["list_reports"] = RuntimeError("secret internals")  # type: ignore[assignment]
    login(client)
    response = client.get("/reports")
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Traceback" not in page and "secret internals" not in page


# -- public pages -----------------------------------------------------------------------------------------


def test_public_report_for_an_onboarded_town_with_a_public_token(client: FlaskClient, backends: FakeBackends) -> None:
    page = client.get("/public/110111008/report")
    assert page.status_code == 200 and "良乡镇" in page.get_data(as_text=True)
    form = {k: v for k, v in REPORT_FORM.items() if not k.startswith("place.division")}
    form |= {
        "channel": "public_anonymous",
        "reporter.name": "typed by mistake",
        "csrf_token": csrf_from(client, "/public/110111008/report"),
    }
    response = client.post("/public/110111008/report", data=form)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and RECEIPT in body
    assert "张小明" not in body and "危机" not in body  # a public reporter gets the receipt only
    caller, request = backends.last("submit_report")
    principal = principal_of(caller)
    assert (principal.role, principal.tenant) == (Role.PUBLIC, "110111008")
    assert not request.HasField("reporter") and request.division_code == "110111008"
    tenants_caller, district = backends.last("list_tenants")
    assert principal_of(tenants_caller).role is Role.SYSTEM and district == "110111"


@pytest.mark.parametrize("town", ["110111999", "999999999", "abc", "1101110081"])
def test_public_report_for_an_unknown_town_is_not_found(client: FlaskClient, town: str) -> None:
    assert client.get(f"/public/{town}/report").status_code == 404


def test_public_receipt_lookup_uses_no_token_and_shows_no_child_data(
    client: FlaskClient, backends: FakeBackends
) -> None:
    token = csrf_from(client, "/public/receipt")
    page = client.post("/public/receipt", data={"receipt_number": RECEIPT, "csrf_token": token}).get_data(as_text=True)
    assert "已受理" in page
    caller, number = backends.last("lookup_receipt")
    assert caller.principal is None and number == RECEIPT
    missing = client.post("/public/receipt", data={"receipt_number": "R-0000000-0000000-0000000", "csrf_token": token})
    assert missing.status_code == 404


# -- the JSON API -----------------------------------------------------------------------------------------


def api_token(client: FlaskClient, username: str = "caseworker") -> str:
    response = client.post("/api/v1/token", json=credentials(client, username))
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(json_of(response)["access_token"])


def test_api_token_and_bearer_calls(client: FlaskClient, backends: FakeBackends) -> None:
    token = api_token(client)
    headers = {"Authorization": f"Bearer {token}"}
    assert json_of(client.get("/api/v1/me", headers=headers))["role"] == "caseworker"
    body = {
        "channel": "staff_hotline",
        "child": {"name": "张小明", "approximate_age": 9},
        "occurred_at": "2025-05-01T10:30:00+08:00",
        "situation_types": ["wandering"],
        "narrative": "孩子在车站独自徘徊两天,无成年人陪伴。",
    }
    created = client.post("/api/v1/reports", json=body, headers=headers)  # a bearer token needs no CSRF token
    assert created.status_code == 201 and json_of(created)["receipt_number"] == RECEIPT
    assert json_of(created)["urgency"] == {"code": "crisis", "label": "危机"}
    assert json_of(client.get("/api/v1/reports", headers=headers))["reports"][0]["child"]["name"] == "张小明"


def test_api_refuses_bad_credentials_and_bad_tokens(client: FlaskClient) -> None:
    assert client.post("/api/v1/token", json={"username": "caseworker", "password": "x"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert client.get("/api/v1/me").status_code == 401
    assert json_of(client.get("/api/v1/me"))["error"]


def test_api_reports_field_violations(client: FlaskClient, backends: FakeBackends) -> None:
    headers = {"Authorization": f"Bearer {api_token(client)}"}
    response = client.post("/api/v1/reports", json={"channel": "nope", "occurred_at": "x"}, headers=headers)
    assert response.status_code == 400
    assert {v["field"] for v in json_of(response)["violations"]} == {"channel", "occurred_at"}


def test_api_with_the_session_cookie_needs_the_csrf_header(client: FlaskClient) -> None:
    login(client)
    token = csrf_from(client, "/")
    assert client.post("/api/v1/inbox/n1/read").status_code == 400
    assert client.post("/api/v1/inbox/n1/read", headers={"X-CSRF-Token": token}).status_code == 404


def test_public_api(client: FlaskClient, backends: FakeBackends) -> None:
    body = {
        "channel": "public_named",
        "child": {"description": "穿红衣服的小女孩"},
        "occurred_at": "2025-05-01T10:30",
        "situation_types": ["abandoned_or_uncared"],
        "narrative": "连续三天在桥下独自过夜。",
        "reporter": {"name": "李四", "phone": "13900000000"},
    }
    created = client.post("/api/v1/public/110111008/reports", json=body)
    assert created.status_code == 201 and json_of(created) == {"receipt_number": RECEIPT}
    staff_only = client.post("/api/v1/public/110111008/reports", json=body | {"channel": "staff_hotline"})
    assert staff_only.status_code == 400
    looked_up = client.post("/api/v1/public/receipts/lookup", json={"receipt_number": RECEIPT})
    assert set(json_of(looked_up)) == {"receipt_number", "received_on", "status", "outcome_notice"}


def test_public_reports_are_throttled_per_address(client: FlaskClient) -> None:
    body = {
        "channel": "public_anonymous",
        "child": {"description": "x"},
        "occurred_at": "2025-05-01T10:30",
        "situation_types": ["wandering"],
        "narrative": "连续三天在桥下独自过夜。",
    }
    statuses = [client.post("/api/v1/public/110111008/reports", json=body).status_code for _ in range(11)]
    assert statuses[:10] == [201] * 10 and statuses[10] == 429


def test_openapi_document(client: FlaskClient) -> None:
    document = json_of(client.get("/api/v1/openapi.json"))
    assert document["openapi"].startswith("3.")
    assert {"/api/v1/token", "/api/v1/reports", "/api/v1/public/receipts/lookup"} <= set(document["paths"])
    channels = document["components"]["schemas"]["ReportSubmission"]["properties"]["channel"]["enum"]
    assert "public_anonymous" in channels
    json.dumps(document)


def test_security_headers(client: FlaskClient) -> None:
    login(client)
    response = client.get("/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_a_number_in_a_path_too_big_for_the_services_is_no_such_page(client: FlaskClient) -> None:
    login(client, "town_admin")
    assert client.get("/benefits/insurance/99999999999999999999.csv").status_code == 404
    assert client.get("/benefits/runs/r1/payment-file/2147483648").status_code == 404
