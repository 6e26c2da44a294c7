"""The register and case-file pages through Flask's test client, with the registry replaced by the fake."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import casework_pb2, registry_pb2

from gateway.bootstrap import Components
from gateway.clients import BackendError
from gateway.tests.unit.conftest import csrf_from, login
from gateway.tests.unit.fakes import FakeBackends
from platform_runtime.errors import FieldViolation

VILLAGE = "110111008201"


@pytest.fixture
def registered(backends: FakeBackends) -> list[registry_pb2.Child]:
    return [
        backends.add_child(f"儿童{n:02d}", residence_division_code=VILLAGE if n % 2 else "110111008202")
        for n in range(1, 26)
    ]


def open_case_file(client: FlaskClient, child_id: str, purpose: str = "入户走访前查阅", tab: str = "profile") -> str:
    token = csrf_from(client, f"/register/children/{child_id}")
    response = client.post(f"/register/children/{child_id}?tab={tab}", data={"purpose": purpose, "csrf_token": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_the_register_lists_the_towns_children_page_by_page(
    client: FlaskClient, backends: FakeBackends, registered: list[registry_pb2.Child]
) -> None:
    login(client)
    first = client.get("/register").get_data(as_text=True)
    assert first.count("data-child-id=") == 20 and 'id="next-page"' in first
    _, request = backends.last("list_children")
    assert request.page_size == 20 and not request.page_token
    second = client.get(f"/register?page_token={registered[19].child_id}").get_data(as_text=True)
    assert second.count("data-child-id=") == 5 and 'id="next-page"' not in second


def test_the_register_is_filtered_by_village_category_and_status(
    client: FlaskClient, backends: FakeBackends, registered: list[registry_pb2.Child]
) -> None:
    login(client)
    page = client.get(f"/register?village={VILLAGE}&category=poverty&status=assessing").get_data(as_text=True)
    _, request = backends.last("list_children")
    assert (request.division_code, request.category, request.case_status) == (VILLAGE, "poverty", "assessing")
    assert "没有找到儿童" in page
    page = client.get(f"/register?village={VILLAGE}").get_data(as_text=True)
    assert page.count("data-child-id=") == 13


def test_a_name_search_asks_the_registrys_matcher(
    client: FlaskClient, backends: FakeBackends, registered: list[registry_pb2.Child]
) -> None:
    login(client)
    page = client.get("/register?name=儿童03").get_data(as_text=True)
    _, probe = backends.last("match_child")
    assert probe.name == "儿童03" and probe.limit == 50
    assert f'data-child-id="{registered[2].child_id}"' in page and page.count("data-child-id=") == 1
    # The village filter applies to the matches too: 儿童03 lives in the other village.
    page = client.get("/register?name=儿童03&village=110111008202").get_data(as_text=True)
    assert page.count("data-child-id=") == 0


def test_registering_shows_possible_duplicates_before_saving(
    client: FlaskClient, backends: FakeBackends, registered: list[registry_pb2.Child]
) -> None:
    login(client)
    token = csrf_from(client, "/register/new")
    form = {"legal_name": "儿童05", "sex": "female", "birth_date": "2016-04-02", "csrf_token": token}
    page = client.post("/register/new", data=form).get_data(as_text=True)
    assert 'id="possible-duplicates"' in page and f'data-candidate-id="{registered[4].child_id}"' in page
    assert 'name="confirmed" value="yes"' in page
    assert not [c for c in backends.calls if c[0] == "register_child"], "nothing is saved before the check"
    _, probe = backends.last("match_child")
    assert probe.birth_date == common_pb2.Date(year=2016, month=4, day=2) and probe.sex == common_pb2.SEX_FEMALE

    response = client.post("/register/new", data=form | {"confirmed": "yes"})
    assert response.status_code == 302
    new_id = backends.children[-1].child_id
    assert response.location == f"/register/children/{new_id}"


def test_registering_a_child_without_duplicates_saves_at_once_and_field_errors_come_back(
    client: FlaskClient, backends: FakeBackends
) -> None:
    login(client)
    token = csrf_from(client, "/register/new")
    response = client.post("/register/new", data={"legal_name": "新孩子", "sex": "male", "csrf_token": token})
    assert response.status_code == 302
    _, request = backends.last("register_child")
    assert request.legal_name == "新孩子" and not request.HasField("birth_date")
    bad_date = client.post("/register/new", data={"legal_name": "x", "birth_date": "2016-13-45", "csrf_token": token})
    assert bad_date.status_code == 400 and 'data-field="birth_date"' in bad_date.get_data(as_text=True)
    unnamed = client.post("/register/new", data={"legal_name": "", "csrf_token": token})
    assert unnamed.status_code == 400 and 'data-field="legal_name"' in unnamed.get_data(as_text=True)


def test_a_case_file_asks_the_purpose_and_remembers_it_for_the_tabs(
    client: FlaskClient, backends: FakeBackends, registered: list[registry_pb2.Child]
) -> None:
    login(client)
    child_id = registered[0].child_id
    asked = client.get(f"/register/children/{child_id}").get_data(as_text=True)
    assert 'id="purpose-form"' in asked
    assert not [c for c in backends.calls if c[0] == "get_case_file"], "no read without a purpose"
    token = csrf_from(client, f"/register/children/{child_id}")
    refused = client.post(f"/register/children/{child_id}", data={"purpose": "", "csrf_token": token})
    assert refused.status_code == 400 and 'data-field="purpose"' in refused.get_data(as_text=True)

    page = open_case_file(client, child_id)
    assert 'id="profile"' in page and "儿童01" in page
    for tab in ("family", "categories", "case", "assessments", "plan", "visits", "timeline", "history"):
        shown = client.get(f"/register/children/{child_id}?tab={tab}")
        assert shown.status_code == 200 and f'id="tab-{tab}"' in shown.get_data(as_text=True), tab
        _, (read_id, purpose) = backends.last("get_case_file")
        assert (read_id, purpose) == (child_id, "入户走访前查阅"), "every read is audited with the purpose"
    _, history = backends.last("list_changes")
    assert history.purpose == "入户走访前查阅"
    # Another child asks again.
    assert 'id="purpose-form"' in client.get(f"/register/children/{registered[1].child_id}").get_data(as_text=True)
    assert client.get(f"/register/children/{child_id}?tab=nonsense").status_code == 404


def test_casework_forms_send_the_registry_the_requests(
    client: FlaskClient, backends: FakeBackends, registered: list[registry_pb2.Child]
) -> None:
    login(client)
    child_id = registered[0].child_id
    open_case_file(client, child_id)
    token = csrf_from(client, f"/register/children/{child_id}?tab=family")

    def post(form: str, data: dict[str, str]) -> str:
        response = client.post(f"/register/children/{child_id}/{form}", data=data | {"csrf_token": token})
        assert response.status_code == 302
        return str(response.location)

    assert post(
        "family",
        {
            "name": "王大强",
            "relationship": "father",
            "guardian": "on",
            "status": "imprisoned_or_detained",
            "status_since": "2023-01-05",
            "evidence": "判决书",
        },
    ).endswith("tab=family")
    _, member = backends.last("AddFamilyMember")
    assert member.member.guardian and member.member.status_since == common_pb2.Date(year=2023, month=1, day=5)

    scores = {f"score.{d}": "0" for d in ("safety", "guardianship", "health", "education", "livelihood")}
    post("assessment", scores | {"score.psychology": "3", "finding.psychology": "情绪低落", "kind": "initial"})
    _, assessment = backends.last("RecordAssessment")
    assert [(d.domain, d.score) for d in assessment.domains][-1] == ("psychology", 3)
    assert len(assessment.domains) == 6 and not assessment.HasField("assessed_on")

    post("visit", {"visitor": "赵儿童主任", "findings": "祖母照看,情况稳定", "visited_on": "2026-12-01"})
    _, visit = backends.last("RecordVisit")
    assert visit.findings == "祖母照看,情况稳定" and visit.visited_on.day == 1
    post("category", {"category": "poverty", "source": "home_visit", "evidence": "低保证明"})
    post("goal", {"description": "恢复上学"})
    post("action", {"goal_id": "g1", "description": "联系学校", "owner_kind": "agency", "owner": "education"})
    _, action = backends.last("AddPlanAction")
    assert (action.goal_id, action.owner) == ("g1", "education")
    post("status", {"status": "assessing"})
    visits = client.get(f"/register/children/{child_id}?tab=visits").get_data(as_text=True)
    assert "祖母照看,情况稳定" in visits


def test_a_refused_change_is_shown_on_the_tab(
    client: FlaskClient, backends: FakeBackends, registered: list[registry_pb2.Child]
) -> None:
    login(client)
    child_id = registered[0].child_id
    open_case_file(client, child_id)
    backends.fail["AddFamilyMember"] = BackendError(
        "INVALID_ARGUMENT", "bad", (FieldViolation("member.evidence", "非正常状况需要依据 evidence required"),)
    )
    token = csrf_from(client, f"/register/children/{child_id}?tab=family")
    response = client.post(
        f"/register/children/{child_id}/family",
        data={"relationship": "mother", "status": "missing", "csrf_token": token},
        follow_redirects=True,
    )
    assert "evidence required" in response.get_data(as_text=True)
    bad_day = client.post(
        f"/register/children/{child_id}/visit",
        data={"visited_on": "yesterday", "findings": "x", "csrf_token": token},
        follow_redirects=True,
    )
    assert "YYYY-MM-DD" in bad_day.get_data(as_text=True)
    assert client.post(f"/register/children/{child_id}/nonsense", data={"csrf_token": token}).status_code == 404


def test_named_staff_are_the_towns_users(
    client: FlaskClient, backends: FakeBackends, registered: list[registry_pb2.Child], components: Components
) -> None:
    login(client)
    child_id = registered[0].child_id
    page = open_case_file(client, child_id, tab="case")
    town = {u.username: u for u in components.users.town_users("110111008")}
    assert "other_caseworker" not in town, "users of other towns are never offered"
    director = town["child_director"]
    assert f'value="{director.user_id}"' in page
    token = csrf_from(client, f"/register/children/{child_id}?tab=case")
    response = client.post(
        f"/register/children/{child_id}/staff",
        data={
            "csrf_token": token,
            "responsible_user_id": "",
            "responsible_person": "村委会 王主任",
            "social_worker_user_id": town["caseworker"].user_id,
            "child_director_user_id": director.user_id,
        },
    )
    assert response.status_code == 302
    _, assign = backends.last("AssignCase")
    assert isinstance(assign, casework_pb2.AssignCaseRequest)
    assert (assign.responsible_person, assign.responsible_user_id) == ("村委会 王主任", "")
    assert (assign.social_worker, assign.social_worker_user_id) == ("王社工", town["caseworker"].user_id)
    assert (assign.child_director, assign.child_director_user_id) == ("赵儿童主任", director.user_id)
    # A user id from elsewhere (another town's user, a made-up id) is refused before the registry is asked.
    calls = len(backends.calls)
    client.post(
        f"/register/children/{child_id}/staff", data={"csrf_token": token, "social_worker_user_id": "someone-else"}
    )
    assert len(backends.calls) == calls


def test_roles_see_only_what_they_may(
    client: FlaskClient, backends: FakeBackends, registered: list[registry_pb2.Child]
) -> None:
    child_id = registered[0].child_id
    login(client, "teacher")
    for path in ("/register", "/register/new", f"/register/children/{child_id}"):
        assert client.get(path).status_code == 403, path
    token = csrf_from(client, "/")
    assert client.post(f"/register/children/{child_id}/visit", data={"csrf_token": token}).status_code == 403

    login(client, "child_director")
    page = open_case_file(client, child_id, tab="case")
    assert 'id="staff-form"' not in page and 'id="status-form"' not in page
    assert 'id="visit-form"' in client.get(f"/register/children/{child_id}?tab=visits").get_data(as_text=True)
    token = csrf_from(client, "/")
    assert client.post(f"/register/children/{child_id}/status", data={"csrf_token": token}).status_code == 403

    login(client, "district_officer")
    page = open_case_file(client, child_id, tab="visits")
    assert 'id="visit-form"' not in page, "the district reads, it does not keep the files"
    assert 'href="/register/new"' not in client.get("/register").get_data(as_text=True)


def test_every_register_form_carries_the_csrf_token(
    client: FlaskClient, backends: FakeBackends, registered: list[registry_pb2.Child]
) -> None:
    login(client)
    child_id = registered[0].child_id
    open_case_file(client, child_id)
    for path in ["/register/new", *(f"/register/children/{child_id}?tab={t}" for t in ("family", "case", "plan"))]:
        page = client.get(path).get_data(as_text=True)
        assert page.count("<form") == page.count('name="csrf_token"'), path


def test_suspected_duplicates_are_compared_side_by_side_merged_and_the_merge_undone(
    client: FlaskClient, backends: FakeBackends
) -> None:
    first = backends.add_child("李小花", residence_division_code=VILLAGE)
    second = backends.add_child("李小花", residence_division_code=VILLAGE, school="中心小学")
    login(client)
    # Nothing is read before the purpose is given.
    assert client.get(f"/register/children/{first.child_id}/duplicates").status_code == 302
    open_case_file(client, first.child_id, "核查疑似重复 checking duplicates")
    page = client.get(f"/register/children/{first.child_id}/duplicates").get_data(as_text=True)
    assert f'data-candidate-id="{second.child_id}"' in page and f'data-candidate-id="{first.child_id}"' not in page

    compared = client.get(f"/register/children/{first.child_id}/compare/{second.child_id}").get_data(as_text=True)
    assert 'id="compare"' in compared and 'class="differs"' in compared and "中心小学" in compared
    _, (read_id, purpose) = backends.last("get_case_file")
    assert (read_id, purpose) == (second.child_id, "核查疑似重复 checking duplicates")

    token = csrf_from(client, f"/register/children/{first.child_id}/compare/{second.child_id}")
    form = {"csrf_token": token, "other_id": second.child_id, "surviving": first.child_id}
    refused = client.post(f"/register/children/{first.child_id}/merge", data=form, follow_redirects=True)
    assert "say why" in refused.get_data(as_text=True)
    assert (
        client.post(f"/register/children/{first.child_id}/merge", data=form | {"surviving": "c9999"}).status_code == 400
    )
    merged = client.post(f"/register/children/{first.child_id}/merge", data=form | {"reason": "同一儿童 same child"})
    assert merged.location == f"/register/children/{first.child_id}"
    assert backends.last("merge_children")[1] == (first.child_id, second.child_id, "同一儿童 same child")
    profile = client.get(merged.location).get_data(as_text=True)
    assert f'data-merged-id="{second.child_id}"' in profile

    undone = client.post(
        f"/register/children/{first.child_id}/unmerge",
        data={"csrf_token": token, "merged_child_id": second.child_id, "reason": "不是同一人 not the same"},
    )
    assert undone.location == f"/register/children/{second.child_id}"
    assert second.child_id in [c.child_id for c in backends.children]


def test_only_case_managers_merge(client: FlaskClient, backends: FakeBackends) -> None:
    first = backends.add_child("李小花")
    login(client, "child_director")
    open_case_file(client, first.child_id)
    assert client.get(f"/register/children/{first.child_id}/duplicates").status_code == 403
    token = csrf_from(client, "/")
    data = {"csrf_token": token, "other_id": "c0002", "surviving": first.child_id, "reason": "x"}
    assert client.post(f"/register/children/{first.child_id}/merge", data=data).status_code == 403
    assert client.post(f"/register/children/{first.child_id}/unmerge", data=data).status_code == 403


def test_the_profile_is_edited_against_the_version_read(client: FlaskClient, backends: FakeBackends) -> None:
    child = backends.add_child("孙小雨", school="中心小学", version=3)
    login(client, "child_director")
    page = open_case_file(client, child.child_id)
    assert 'name="version" value="3"' in page
    token = csrf_from(client, f"/register/children/{child.child_id}")
    form = {
        "csrf_token": token,
        "version": "3",
        "legal_name": "孙小雨",
        "was.legal_name": "孙小雨",
        "school": "良乡二小",
        "was.school": "中心小学",
        "residence_division_code": "110111008999",
        "was.residence_division_code": "110111008999",
        "contact_name": "孙奶奶",
        "was.contact_name": "",
    }
    saved = client.post(f"/register/children/{child.child_id}/profile", data=form, follow_redirects=True)
    _, update = backends.last("update_child")
    assert update.expected_version == 3
    assert list(update.update_mask.paths) == ["school", "contact_person"], "only what was changed is sent"
    assert (update.school, update.contact_person.name) == ("良乡二小", "孙奶奶")
    assert "良乡二小" in saved.get_data(as_text=True)
    stale = client.post(f"/register/children/{child.child_id}/profile", data=form, follow_redirects=True)
    assert "reload and try again" in stale.get_data(as_text=True), "an edit based on an old read is refused"
    unchanged = {"csrf_token": token, "version": "4", "school": "x", "was.school": "x"}
    nothing = client.post(f"/register/children/{child.child_id}/profile", data=unchanged, follow_redirects=True)
    assert "没有修改" in nothing.get_data(as_text=True)


def test_the_dashboards_overdue_visits_open_the_children_behind_them(
    client: FlaskClient, backends: FakeBackends, registered: list[registry_pb2.Child]
) -> None:
    backends.case_files[registered[3].child_id].next_visit_due.CopyFrom(common_pb2.Date(year=2026, month=1, day=2))
    login(client)
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert 'href="/register?overdue=1"' in dashboard
    page = client.get("/register?overdue=1").get_data(as_text=True)
    assert backends.last("list_children")[1].visit_overdue
    assert page.count("data-child-id=") == 1 and registered[3].child_id in page
