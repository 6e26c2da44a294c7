"""Handling a report in the portal and the API: link it to a child, record milestones, give the outcome notice,
close it. The services are in-process fakes; what they allow is their business (tested with them)."""

from typing import Any

import pytest
from flask.testing import FlaskClient
from minorprot.reporting.v1 import reporting_pb2
from werkzeug.test import TestResponse

from gateway import handling
from gateway.tests.unit.conftest import credentials, csrf_from, login
from gateway.tests.unit.fakes import FakeBackends
from gateway.tests.unit.test_web import REPORT_FORM, json_of
from platform_runtime.errors import InvalidInput


@pytest.fixture
def report_id(client: FlaskClient, backends: FakeBackends) -> str:
    login(client)
    client.post("/reports/new", data=REPORT_FORM | {"csrf_token": csrf_from(client, "/reports/new")})
    backends.reports[0].status = "needs_attention"
    return backends.reports[0].report_id


def post(client: FlaskClient, path: str, **form: str) -> TestResponse:
    return client.post(path, data=form | {"csrf_token": csrf_from(client, "/")})


def test_the_portal_links_a_report_to_a_candidate_or_a_new_child(
    client: FlaskClient, backends: FakeBackends, report_id: str
) -> None:
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert 'id="link-child"' in page
    candidates = client.get(f"/reports/{report_id}/link").get_data(as_text=True)
    assert 'data-child-id="c7"' in candidates and "张小明" in candidates and "0.74" in candidates
    response = post(client, f"/reports/{report_id}/link", child_id="c7")
    assert response.status_code == 302 and response.location == f"/reports/{report_id}"
    assert backends.last("confirm_link")[1] == (report_id, "c7")
    assert 'id="link-child"' not in client.get(f"/reports/{report_id}").get_data(as_text=True)

    backends.reports[0].child_id = ""
    post(client, f"/reports/{report_id}/link", new_child="1")
    assert backends.last("link_to_new_child")[1] == report_id


def test_the_portal_records_a_milestone_and_shows_the_time_limits(
    client: FlaskClient, backends: FakeBackends, report_id: str
) -> None:
    response = post(
        client, f"/reports/{report_id}/milestones", milestone="first_contact", completed_at="2025-05-01T10:30"
    )
    assert response.status_code == 302
    request = backends.last("record_milestone")[1]
    assert request.milestone == reporting_pb2.MILESTONE_FIRST_CONTACT
    assert request.completed_at.ToSeconds() == 1746066600  # 10:30 Beijing time is 02:30 UTC
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert 'data-milestone="first_contact"' in page and "首次接触儿童" in page


def test_the_portal_closes_a_report_only_after_the_outcome_notice(
    client: FlaskClient, backends: FakeBackends, report_id: str
) -> None:
    assert 'id="close-form"' not in client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert post(client, f"/reports/{report_id}/close").status_code == 409
    post(client, f"/reports/{report_id}/outcome-notice", text="已由乡镇跟进处理。")
    assert 'id="close-form"' in client.get(f"/reports/{report_id}").get_data(as_text=True)
    post(client, f"/reports/{report_id}/close")
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert 'id="outcome-notice">已由乡镇跟进处理。' in page and 'id="notice-form"' not in page


def test_handling_needs_the_csrf_token_and_a_staff_role(client: FlaskClient, report_id: str) -> None:
    assert client.post(f"/reports/{report_id}/close").status_code == 400
    client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    login(client, "teacher")
    assert post(client, f"/reports/{report_id}/outcome-notice", text="x").status_code == 403
    assert client.get(f"/reports/{report_id}/link").status_code == 403


def bearer(client: FlaskClient, username: str = "caseworker") -> dict[str, str]:
    token = json_of(client.post("/api/v1/token", json=credentials(client, username)))["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_the_api_handles_a_report_from_link_to_close(
    client: FlaskClient, backends: FakeBackends, report_id: str
) -> None:
    headers = bearer(client)
    base = f"/api/v1/reports/{report_id}"
    (candidate,) = json_of(client.get(f"{base}/candidates", headers=headers))["candidates"]
    assert candidate["child_id"] == "c7" and candidate["score"] == 0.74
    linked = json_of(client.post(f"{base}/link", json={"child_id": "c7"}, headers=headers))
    assert (linked["status"]["code"], linked["child_id"]) == ("linked", "c7")
    reached = json_of(client.post(f"{base}/milestones", json={"milestone": "acknowledge"}, headers=headers))
    assert reached["deadlines"][0]["milestone"] == {"code": "acknowledge", "label": "受理确认"}
    assert not backends.last("record_milestone")[1].HasField("completed_at")  # now, by the service's clock
    assert client.post(f"{base}/close", headers=headers).status_code == 409
    noticed = json_of(client.post(f"{base}/outcome-notice", json={"text": "已跟进。"}, headers=headers))
    assert noticed["outcome_notice"] == "已跟进。"
    assert json_of(client.post(f"{base}/close", headers=headers))["status"]["code"] == "closed"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("link", {}, "child_id"),
        ("milestones", {"milestone": "tea_break"}, "milestone"),
        ("milestones", {"milestone": "assessment", "completed_at": "yesterday"}, "completed_at"),
    ],
)
def test_the_api_names_the_field_at_fault(
    client: FlaskClient, report_id: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = client.post(f"/api/v1/reports/{report_id}/{path}", json=body, headers=bearer(client))
    assert response.status_code == 400
    assert [v["field"] for v in json_of(response)["violations"]] == [field]


def test_the_api_offers_the_handling_operations(client: FlaskClient) -> None:
    paths = json_of(client.get("/api/v1/openapi.json"))["paths"]
    for operation in ("candidates", "link", "milestones", "outcome-notice", "close"):
        assert f"/api/v1/reports/{{report_id}}/{operation}" in paths


def test_a_milestone_is_one_of_the_three() -> None:
    assert [code for code, _ in handling.MILESTONE_CHOICES] == ["acknowledge", "first_contact", "assessment"]
    with pytest.raises(InvalidInput):
        handling.milestone_request("r1", {})
