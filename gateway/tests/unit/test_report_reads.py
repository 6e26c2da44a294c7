"""A report's details (narrative, reporter) are shown once the user says why; the service logs each read."""

from __future__ import annotations

from flask.testing import FlaskClient

from gateway.tests.unit.conftest import PASSWORD, credentials, csrf_from, login
from gateway.tests.unit.fakes import FakeBackends
from gateway.tests.unit.test_web import REPORT_FORM, json_of

NARRATIVE = str(REPORT_FORM["narrative"])


def submitted(client: FlaskClient, backends: FakeBackends) -> str:
    login(client)
    client.post("/reports/new", data=REPORT_FORM | {"csrf_token": csrf_from(client, "/reports/new")})
    return backends.reports[0].report_id


def test_the_report_page_asks_the_purpose_before_showing_the_details(
    client: FlaskClient, backends: FakeBackends
) -> None:
    report_id = submitted(client, backends)
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert 'id="purpose-form"' in page and NARRATIVE not in page
    token = csrf_from(client, f"/reports/{report_id}")

    refused = client.post(f"/reports/{report_id}", data={"purpose": "看", "csrf_token": token})
    assert refused.status_code == 400 and 'id="purpose-error"' in refused.get_data(as_text=True)
    assert NARRATIVE not in refused.get_data(as_text=True)

    opened = client.post(f"/reports/{report_id}", data={"purpose": "核实首次接触情况", "csrf_token": token})
    assert opened.status_code == 302 and opened.location == f"/reports/{report_id}"
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert NARRATIVE in page and 'id="purpose-form"' not in page
    # Each later view is a read of its own, sent with the remembered purpose (the service logs every one).
    assert backends.last("get_report")[1] == (report_id, "核实首次接触情况")
    assert 'id="report-reads"' not in page  # a caseworker does not see the read log


def test_the_town_administrator_sees_who_opened_the_details(client: FlaskClient, backends: FakeBackends) -> None:
    report_id = submitted(client, backends)
    client.get(f"/reports/{report_id}")
    client.post(f"/reports/{report_id}", data={"purpose": "核实首次接触情况", "csrf_token": csrf_from(client, "/")})
    client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    login(client, "town_admin", PASSWORD)
    page = client.get(f"/reports/{report_id}").get_data(as_text=True)
    assert 'id="report-reads"' in page and "核实首次接触情况" in page


def test_the_api_gives_the_details_only_with_a_purpose(client: FlaskClient, backends: FakeBackends) -> None:
    report_id = submitted(client, backends)
    token = json_of(client.post("/api/v1/token", json=credentials(client)))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    plain = json_of(client.get(f"/api/v1/reports/{report_id}", headers=headers))
    assert plain["details_withheld"] and plain["narrative"] == "" and plain["reporter"] is None
    full = json_of(client.get(f"/api/v1/reports/{report_id}?purpose=核实首次接触情况", headers=headers))
    assert not full["details_withheld"] and full["narrative"] == NARRATIVE
    reads = json_of(client.get(f"/api/v1/reports/{report_id}/reads", headers=headers))
    assert [r["purpose"] for r in reads["reads"]] == ["核实首次接触情况"]
    assert reads["next_page_token"] == ""  # the last page


def test_the_reports_api_refuses_what_protobuf_cannot_carry_with_a_400(client: FlaskClient) -> None:
    token = json_of(client.post("/api/v1/token", json=credentials(client)))["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for size in ("1099511627776", "-5", "abc"):
        assert client.get(f"/api/v1/reports?page_size={size}", headers=headers).status_code == 200
    body = '{"channel": "staff_hotline", "child": {"name": "\\ud800"}, "narrative": "x"}'
    refused = client.post("/api/v1/reports", data=body, headers=headers)
    assert refused.status_code == 400 and "child.name" in refused.get_data(as_text=True)
