"""A report from the public waits for a person's triage: the report page says so and offers confirm and reject,
the API does the same. The services are in-process fakes (what reporting allows is tested with it)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from gateway.tests.unit.conftest import csrf_from, login
from gateway.tests.unit.fakes import FakeBackends
from gateway.tests.unit.test_handling_web import bearer, post
from gateway.tests.unit.test_web import REPORT_FORM, json_of


@pytest.fixture
def report_id(client: FlaskClient, backends: FakeBackends) -> str:
    login(client)
    client.post("/reports/new", data=REPORT_FORM | {"csrf_token": csrf_from(client, "/reports/new")})
    report = backends.reports[0]
    report.person_triage, report.version = "awaiting", 3  # as reporting stores a report from the public form
    return report.report_id


def test_the_report_page_shows_awaiting_triage_and_confirms_it(
    client: FlaskClient, backends: FakeBackends, report_id: str
) -> None:
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert 'id="person-triage" data-state="awaiting"' in page and "待人工分诊" in page
    assert 'id="triage-form"' in page and 'name="expected_version" value="3"' in page

    response = post(client, f"/reports/{report_id}/triage", decision="confirm", expected_version="3")

    assert response.status_code == 302 and response.location == f"/reports/{report_id}"
    assert backends.last("decide_triage")[1] == (report_id, True, 3)
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert 'data-state="confirmed"' in page and 'id="triage-form"' not in page


def test_a_report_that_needs_no_triage_shows_none(client: FlaskClient, backends: FakeBackends, report_id: str) -> None:
    backends.reports[0].person_triage = ""
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert 'id="person-triage"' not in page and 'id="triage-form"' not in page


def test_only_staff_decide_and_a_decision_is_confirm_or_reject(client: FlaskClient, report_id: str) -> None:
    assert post(client, f"/reports/{report_id}/triage", decision="maybe").status_code == 400
    client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    login(client, "teacher")
    assert post(client, f"/reports/{report_id}/triage", decision="confirm").status_code == 403


def test_the_api_rejects_a_public_report_and_names_a_field_at_fault(
    client: FlaskClient, backends: FakeBackends, report_id: str
) -> None:
    headers = bearer(client)
    base = f"/api/v1/reports/{report_id}"
    assert json_of(client.get(base, headers=headers))["person_triage"] == {"code": "awaiting", "label": "待人工分诊"}

    rejected = json_of(client.post(f"{base}/triage", json={"decision": "reject"}, headers=headers))

    assert rejected["person_triage"]["code"] == "rejected"
    assert backends.last("decide_triage")[1] == (report_id, False, None)
    wrong = client.post(f"{base}/triage", json={"decision": "reject", "expected_version": "x"}, headers=headers)
    assert wrong.status_code == 400
    assert [v["field"] for v in json_of(wrong)["violations"]] == ["expected_version"]
    assert "/api/v1/reports/{report_id}/triage" in json_of(client.get("/api/v1/openapi.json"))["paths"]
