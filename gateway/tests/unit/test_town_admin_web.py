"""Town administration through Flask's test client: villages, users, the audit log."""

from __future__ import annotations

from flask.testing import FlaskClient
from minorprot.registry.v1 import registry_pb2

from gateway.bootstrap import Components
from gateway.tests.unit.conftest import TOWN, csrf_from, login
from gateway.tests.unit.fakes import FakeBackends, stamp


def test_the_administrator_keeps_the_towns_villages(client: FlaskClient, backends: FakeBackends) -> None:
    login(client, "town_admin")
    page = client.get("/admin").get_data(as_text=True)
    assert "110111008201,东关村" in page
    token = csrf_from(client, "/admin")
    saved = client.post(
        "/admin/villages",
        data={"csrf_token": token, "villages": "110111008202，西关村\n\n110111008203,南关村\n"},
        follow_redirects=True,
    ).get_data(as_text=True)
    _, listed = backends.last("set_villages")
    assert [(v.code, v.name) for v in listed] == [("110111008202", "西关村"), ("110111008203", "南关村")]
    assert "撤销 1" in saved and 'data-village="110111008201"' in saved
    bad = client.post(
        "/admin/villages", data={"csrf_token": token, "villages": "999,坏村"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "12 digits of this town" in bad
    nameless = client.post(
        "/admin/villages", data={"csrf_token": token, "villages": "110111008204"}, follow_redirects=True
    )
    assert "代码,名称" in nameless.get_data(as_text=True)


def test_the_administrator_adds_a_user_of_the_town_and_never_resets_one(
    client: FlaskClient, components: Components
) -> None:
    login(client, "town_admin")
    token = csrf_from(client, "/admin")
    form = {
        "csrf_token": token,
        "username": "village_director2",
        "display_name": "钱儿童主任",
        "role": "child_director",
        "password": "a long enough passphrase 2026",
    }
    page = client.post("/admin/users", data=form, follow_redirects=True).get_data(as_text=True)
    assert 'data-username="village_director2"' in page
    added = {u.username: u for u in components.users.town_users(TOWN)}["village_director2"]
    assert (added.role.value, added.tenant) == ("child_director", TOWN)
    again = client.post("/admin/users", data=form | {"password": "another passphrase 2026"}, follow_redirects=True)
    assert "已存在" in again.get_data(as_text=True)
    district = client.post("/admin/users", data=form | {"username": "x_officer", "role": "district_officer"})
    assert district.status_code == 302
    assert "x_officer" not in {u.username for u in components.users.town_users(TOWN)}, "no district accounts"


def test_the_audit_log_names_the_towns_users(
    client: FlaskClient, backends: FakeBackends, components: Components
) -> None:
    caseworker = {u.username: u for u in components.users.town_users(TOWN)}["caseworker"]
    backends.audit.append(
        registry_pb2.AuditEntry(
            at=stamp(),
            actor=caseworker.user_id,
            role="caseworker",
            action="read_case_file",
            subject_type="case_file",
            subject_id="case-c0001",
            purpose="家访前了解情况",
        )
    )
    login(client, "town_admin")
    page = client.get(f"/admin/audit?actor={caseworker.user_id}&child_id=c0001").get_data(as_text=True)
    assert "王社工" in page and "家访前了解情况" in page and "查阅档案" in page
    _, request = backends.last("list_audit_entries")
    assert (request.actor, request.child_id, request.purposeful_only) == (caseworker.user_id, "c0001", True)
    client.get("/admin/audit?all=1")
    assert not backends.last("list_audit_entries")[1].purposeful_only


def test_only_the_town_administrator(client: FlaskClient) -> None:
    for username in ("caseworker", "district_officer", "child_director"):
        login(client, username)
        for path in ("/admin", "/admin/audit"):
            assert client.get(path).status_code == 403, (username, path)
        token = csrf_from(client, "/")
        assert client.post("/admin/users", data={"csrf_token": token}).status_code == 403


def test_the_administrator_reads_the_triage_rule_versions(client: FlaskClient, backends: FakeBackends) -> None:
    login(client, "town_admin")
    page = client.get("/admin/triage-rules").get_data(as_text=True)
    assert 'id="in-effect"' in page and 'data-version="2"' in page and 'data-version="1"' in page
    assert "危机" in page and "流浪(有流浪经历)" in page and "独自" in page
    assert "不满 10 岁" in page and "URGENT_MANDATORY_REPORTING" in page
    login(client, "caseworker")
    assert client.get("/admin/triage-rules").status_code == 403


def test_the_administrator_assigns_a_child_directors_village_and_the_director_acts_for_it(
    client: FlaskClient, components: Components, backends: FakeBackends
) -> None:
    director = {u.username: u for u in components.users.town_users(TOWN)}["child_director"]
    caseworker = {u.username: u for u in components.users.town_users(TOWN)}["caseworker"]
    login(client, "town_admin")
    page = client.get("/admin").get_data(as_text=True)
    assert page.count('class="director-villages"') == 1, "a village form for the child director only"
    token = csrf_from(client, "/admin")
    saved = client.post(
        f"/admin/users/{director.user_id}/villages",
        data={"csrf_token": token, "villages": "110111008201"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert 'value="110111008201" checked' in saved
    assert components.users.active_user(director.user_id).villages == ("110111008201",)  # type: ignore[union-attr]

    for user_id, code, why in (
        (director.user_id, "110111008299", "不是本镇的村(社区)"),
        (caseworker.user_id, "110111008201", "only a village child director"),
    ):
        page = client.post(
            f"/admin/users/{user_id}/villages", data={"csrf_token": token, "villages": code}, follow_redirects=True
        ).get_data(as_text=True)
        assert '<p class="error flash">' in page and why in page
    assert components.users.active_user(caseworker.user_id).villages == ()  # type: ignore[union-attr]
    assert components.users.active_user(director.user_id).villages == ("110111008201",)  # type: ignore[union-attr]

    client.post("/logout", data={"csrf_token": token})
    login(client, "child_director")
    client.get("/register")
    acting, _ = backends.last("list_children")
    assert acting.principal is not None and acting.principal.villages == ("110111008201",)


def test_only_the_town_administrator_assigns_villages(client: FlaskClient, components: Components) -> None:
    director = {u.username: u for u in components.users.town_users(TOWN)}["child_director"]
    login(client, "caseworker")
    token = csrf_from(client, "/register")
    reply = client.post(
        f"/admin/users/{director.user_id}/villages", data={"csrf_token": token, "villages": "110111008201"}
    )
    assert reply.status_code == 403
    assert components.users.active_user(director.user_id).villages == ()  # type: ignore[union-attr]
