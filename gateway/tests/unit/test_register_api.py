"""The register in the JSON API, with the registry replaced by the fake: the same requests as the pages, the
one error shape, the OpenAPI document describing every body."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from gateway.tests.unit.conftest import credentials
from gateway.tests.unit.fakes import FakeBackends


def bearer(client: FlaskClient, username: str = "caseworker") -> dict[str, str]:
    reply = client.post("/api/v1/token", json=credentials(client, username))
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return {"Authorization": f"Bearer {reply.json['access_token']}"}  # type: ignore[index]


def body(response: Any) -> Any:
    assert response.is_json, response.get_data(as_text=True)
    return response.json


def test_search_register_and_casework_through_the_api(client: FlaskClient, backends: FakeBackends) -> None:
    backends.add_child("王小明", residence_division_code="110111008201")
    headers = bearer(client)
    page = body(client.get("/api/v1/children?village=110111008201", headers=headers))
    assert [c["child"]["legal_name"] for c in page["children"]] == ["王小明"] and page["next_page_token"] == ""

    duplicate = client.post("/api/v1/children", json={"legal_name": "王小明", "sex": "male"}, headers=headers)
    assert duplicate.status_code == 409 and body(duplicate)["possible_duplicates"][0]["child"]["legal_name"] == "王小明"
    created = client.post(
        "/api/v1/children",
        json={"legal_name": "王小明", "sex": "male", "birth_date": "2016-01-02", "confirmed_not_duplicate": True},
        headers=headers,
    )
    assert created.status_code == 201
    child_id = body(created)["child"]["child_id"]

    done = client.post(
        f"/api/v1/children/{child_id}/casework/visit",
        json={"findings": "情况稳定", "visitor": "王社工"},
        headers=headers,
    )
    assert body(done) == {"child_id": child_id, "action": "visit", "done": True}
    _, visit = backends.last("RecordVisit")
    assert visit.findings == "情况稳定"
    guardian = client.post(
        f"/api/v1/children/{child_id}/casework/family",
        json={"name": "王大", "relationship": "father", "guardian": True},
        headers=headers,
    )
    assert guardian.status_code == 200 and backends.last("AddFamilyMember")[1].member.guardian


def test_the_api_answers_bad_input_with_field_messages_never_a_server_error(
    client: FlaskClient, backends: FakeBackends
) -> None:
    headers = bearer(client)
    for path, payload in (
        ("/api/v1/children", {"legal_name": "x", "birth_date": "2016-02-31"}),
        ("/api/v1/children", {"legal_name": "x", "sex": "robot"}),
        ("/api/v1/children", {"legal_name": {"nested": 1}}),
        ("/api/v1/children", []),
        ("/api/v1/children/c0001/casework/assessment", {"score.safety": "9"}),
        ("/api/v1/children/c0001/casework/visit", {"visited_on": "tomorrow"}),
    ):
        reply = client.post(path, json=payload, headers=headers)
        assert reply.status_code == 400, (path, payload, reply.get_data(as_text=True))
        assert body(reply)["error"] and body(reply)["message"]
    unknown = client.post("/api/v1/children/c0001/casework/nonsense", json={}, headers=headers)
    assert unknown.status_code == 404 and body(unknown)["error"]
    assert "birth_date" in str(body(client.post("/api/v1/children", json={"birth_date": "x"}, headers=headers)))


def test_roles_in_the_api(client: FlaskClient, backends: FakeBackends) -> None:
    teacher = bearer(client, "teacher")
    assert client.get("/api/v1/children", headers=teacher).status_code == 403
    assert client.get("/api/v1/dashboard", headers=teacher).status_code == 403
    director = bearer(client, "child_director")
    assert (
        client.post("/api/v1/children/c1/casework/status", json={"status": "closed"}, headers=director).status_code
        == 403
    )
    officer = bearer(client, "district_officer")
    assert client.post("/api/v1/children/c1/casework/visit", json={}, headers=officer).status_code == 403
    stats = body(client.get("/api/v1/dashboard", headers=officer))
    assert stats["town_code"] == "110111008" and "by_category" in stats


def test_the_openapi_document_describes_the_registers_bodies(client: FlaskClient) -> None:
    document = body(client.get("/api/v1/openapi.json"))
    assert {"/api/v1/children", "/api/v1/children/{child_id}/casework/{action}", "/api/v1/dashboard"} <= set(
        document["paths"]
    )
    schemas = document["components"]["schemas"]
    for name in ("Child", "NewChild", "ChildPage", "PossibleDuplicates", "CaseworkDone", "RegisterStatistics"):
        assert schemas[name]["type"] == "object" and schemas[name]["properties"], name
    refs = str(document["paths"])
    assert "#/components/schemas/NewChild" in refs and "Error" in refs


HOSTILE = [
    None,
    "",
    " ",
    "x" * 5000,
    "\x00\x1f",
    "' OR 1=1 --",
    "../../etc/passwd",
    "2016-99-99",
    "-1",
    "1e309",
    "٣",
    "😀" * 50,
    0,
    -1,
    2**63,
    1.5,
    True,
    False,
    [],
    {},
    ["a"],
    {"a": 1},
]
FIELDS = ["legal_name", "sex", "birth_date", "identity_number", "residence_division_code", "status", "score.safety"]


def test_no_malformed_request_gets_a_server_error(client: FlaskClient, backends: FakeBackends) -> None:
    """What schemathesis would try on these paths, as a fixed list: hostile values in every field and query."""
    backends.add_child("王小明")
    headers = bearer(client)
    posts = ["/api/v1/children", *(f"/api/v1/children/c0001/casework/{a}" for a in ("family", "assessment", "visit"))]
    posts += ["/api/v1/children/c0001/casework/staff", "/api/v1/children/c0001/casework/action-update"]
    for path in posts:
        for field in FIELDS:
            for value in HOSTILE:
                reply = client.post(path, json={field: value}, headers=headers)
                assert reply.status_code < 500, (path, field, value, reply.get_data(as_text=True)[:300])
                assert reply.is_json, (path, field, value)
        for raw in (
            b"",
            b"{",
            b"null",
            b"[1,2]",
            b'"text"',
            '{"legal_name": "\ud800"}'.encode("utf-8", "surrogatepass"),
        ):
            reply = client.post(path, data=raw, headers=headers | {"Content-Type": "application/json"})
            assert reply.status_code < 500, (path, raw)
    for name in ("name", "identity_number", "village", "category", "status", "page_size", "page_token", "town"):
        for value in ("", "x" * 5000, "' OR 1=1", "-5", "99999999999999999999", "%00", "😀"):
            for path in ("/api/v1/children", "/api/v1/dashboard"):
                reply = client.get(path, query_string={name: value}, headers=headers)
                assert reply.status_code < 500, (path, name, value, reply.get_data(as_text=True)[:300])
