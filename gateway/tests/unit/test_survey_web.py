"""The survey pages through Flask's test client, with the registry replaced by the fake (a dry run or import
runs in the gateway's background thread as it does for real)."""

from __future__ import annotations

import io
import time

from flask.testing import FlaskClient
from openpyxl import load_workbook

from gateway.tests.unit.conftest import csrf_from, login
from gateway.tests.unit.fakes import FakeBackends

SURVEY = "王小明,\n李小红,出生日期晚于今天\n赵小刚,\n张小丽,身份证号校验位错误\n".encode()


def finished(client: FlaskClient, location: str) -> str:
    """The job's page once the job is done (the page refreshes itself while it runs)."""
    deadline = time.monotonic() + 10
    while True:
        page = client.get(location).get_data(as_text=True)
        if 'data-state="running"' not in page or time.monotonic() > deadline:
            return page
        assert '<meta http-equiv="refresh"' in page
        time.sleep(0.05)


def upload(client: FlaskClient, mode: str = "dry_run") -> str:
    token = csrf_from(client, "/survey")
    response = client.post(
        "/survey/upload",
        data={"csrf_token": token, "mode": mode, "file": (io.BytesIO(SURVEY), "排查表.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return str(response.location)


def test_a_dry_run_shows_progress_and_offers_the_rows_to_fix_then_the_import(
    client: FlaskClient, backends: FakeBackends
) -> None:
    login(client, "town_admin")
    page = finished(client, upload(client))
    assert 'data-state="done"' in page and 'value="100"' in page
    assert 'id="summary-rejected">2<' in page and 'id="summary-accepted">2<' in page
    _, (options, content) = backends.last("import_survey")
    assert options.dry_run and options.file_name == "排查表.csv" and content == SURVEY

    problems = client.get("/survey/imports/imp1/problems.xlsx")
    assert problems.status_code == 200 and str(problems.mimetype).endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(problems.data)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert [(r[0], r[4]) for r in rows[1:]] == [(3, "出生日期晚于今天"), (5, "身份证号校验位错误")]

    token = csrf_from(client, "/survey")
    job_id = page.split("/survey/jobs/")[1].split("/import")[0]
    imported = client.post(f"/survey/jobs/{job_id}/import", data={"csrf_token": token})
    final = finished(client, str(imported.location))
    _, (options, content) = backends.last("import_survey")
    assert not options.dry_run and content == SURVEY, "the checked file is imported without uploading it again"
    assert 'id="import-form"' not in final
    history = client.get("/survey").get_data(as_text=True)
    assert history.count("data-import-id=") == 2


def test_the_template_and_the_export_are_downloads_and_the_export_needs_a_purpose(
    client: FlaskClient, backends: FakeBackends
) -> None:
    login(client)
    template = client.get("/survey/template.xlsx")
    assert template.data == b"PK-template" and "attachment" in template.headers["Content-Disposition"]
    token = csrf_from(client, "/survey")
    refused = client.post("/survey/export", data={"csrf_token": token, "purpose": ""}, follow_redirects=True)
    assert "say why" in refused.get_data(as_text=True)
    exported = client.post(
        "/survey/export",
        data={"csrf_token": token, "purpose": "年度台账报送", "category": ["poverty"], "village": ["110111008201"]},
    )
    assert exported.data == b"PK-register"
    _, request = backends.last("export_register")
    assert list(request.categories) == ["poverty"] and list(request.village_codes) == ["110111008201"]


def test_a_job_is_its_owners_only_and_roles_are_checked(client: FlaskClient, backends: FakeBackends) -> None:
    login(client)
    location = upload(client)
    finished(client, location)
    login(client, "town_admin")
    assert client.get(location).status_code == 404, "another user's job is not found"
    login(client, "district_officer")
    page = client.get("/survey").get_data(as_text=True)
    assert 'id="upload-form"' not in page and 'id="export-form"' in page
    assert client.get("/survey/template.xlsx").status_code == 403
    login(client, "teacher")
    assert client.get("/survey").status_code == 403


def test_every_survey_form_carries_the_csrf_token(client: FlaskClient) -> None:
    login(client)
    page = client.get("/survey").get_data(as_text=True)
    assert page.count("<form") == page.count('name="csrf_token"') == 3
