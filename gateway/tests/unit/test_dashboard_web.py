"""The dashboard through Flask's test client, with the services replaced by the fakes."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from minorprot.reporting.v1 import reporting_pb2

from gateway.charts import bar_chart
from gateway.clients import BackendError
from gateway.tests.unit.conftest import login
from gateway.tests.unit.fakes import FakeBackends, stamp


def bars(page: str, chart_id: str) -> dict[str, int]:
    chart = page[page.index(f'id="{chart_id}"') :]
    chart = chart[: chart.index("</svg>")]
    return {label: int(count) for label, count in re.findall(r'data-label="([^"]*)" data-count="(\d+)"', chart)}


def test_the_town_dashboard_counts_and_charts_the_register(client: FlaskClient, backends: FakeBackends) -> None:
    for n in range(3):
        backends.add_child(f"童{n}", residence_division_code="110111008201", categories=["poverty"])
    backends.add_child("童9", residence_division_code="110111008202")
    backends.reports.append(reporting_pb2.Report(report_id="r1", crisis=True, status="triaged", received_at=stamp()))
    login(client)
    page = client.get("/dashboard").get_data(as_text=True)
    assert "<strong>4</strong>在册儿童" in page and 'id="stat-overdue-visits"><strong>2</strong>' in page
    assert bars(page, "chart-category") == {"因家庭贫困面临辍学和失去基本生活保障": 3}
    assert bars(page, "chart-village") == {"东关村": 3, "110111008202": 1}, "villages by name where known"
    assert 'id="stat-open-crises"><strong>1</strong>' in page
    assert "<script" not in page


def test_the_dashboard_works_without_the_reporting_service(client: FlaskClient, backends: FakeBackends) -> None:
    backends.fail["list_reports"] = BackendError("UNAVAILABLE", "down")
    login(client)
    response = client.get("/dashboard")
    assert response.status_code == 200 and 'id="stat-open-crises"' not in response.get_data(as_text=True)


def test_the_child_director_sees_the_register_but_not_the_reports(client: FlaskClient, backends: FakeBackends) -> None:
    login(client, "child_director")
    page = client.get("/dashboard").get_data(as_text=True)
    assert 'id="stat-children"' in page and 'id="stat-new-reports"' not in page
    assert not [c for c in backends.calls if c[0] == "list_reports"]


def test_the_district_officer_sees_each_town_of_the_district(client: FlaskClient, backends: FakeBackends) -> None:
    backends.towns.append(backends.towns[0].__class__(code="110111009", name="周口店地区", district_code="110111"))
    backends.add_child("童1", categories=["poverty"])
    login(client, "district_officer")
    page = client.get("/dashboard").get_data(as_text=True)
    assert 'data-town="110111008"' in page and 'data-town="110111009"' in page
    asked = [town for method, _, town in backends.calls if method == "register_statistics"]
    assert asked == ["110111008", "110111009"]
    assert bars(page, "chart-town") == {"良乡镇": 1, "周口店地区": 0}


def test_roles_without_the_register_get_no_dashboard(client: FlaskClient) -> None:
    login(client, "teacher")
    assert client.get("/dashboard").status_code == 403


def test_chart_labels_are_escaped() -> None:
    svg = str(bar_chart("c", "<title>", [("<script>alert(1)</script>", 2), ("b", 1)]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg.index('data-count="2"') < svg.index('data-count="1"'), "largest first"
