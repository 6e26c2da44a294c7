"""The JSON API's one input check (gateway/api_input.py) and its OpenAPI document, with the services replaced
by the fakes: what no service could store is refused as a field-level 400 before any view runs, and every
operation's answer is described by a real schema."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from gateway.clients import BackendError
from gateway.tests.unit.fakes import FakeBackends
from gateway.tests.unit.test_register_api import bearer  # signs in as the register's API tests do

JSON = {"Content-Type": "application/json"}


def violations(reply: Any) -> dict[str, str]:
    assert reply.status_code == 400 and reply.is_json, (reply.status_code, reply.get_data(as_text=True))
    assert reply.json["error"] and reply.json["message"]
    return {v["field"]: v["message"] for v in reply.json["violations"]}


def test_text_no_service_can_store_is_refused_by_field(client: FlaskClient) -> None:
    headers = bearer(client)
    nul_in_path = client.get("/api/v1/reports/r%00x", headers=headers)
    assert violations(nul_in_path) == {"report_id": "contains a NUL character"}
    nul_in_query = client.get("/api/v1/children?name=a%00b", headers=headers)
    assert violations(nul_in_query) == {"name": "contains a NUL character"}
    surrogate = client.post("/api/v1/children", data='{"legal_name": "a\\ud800"}', headers=headers | JSON)
    assert violations(surrogate) == {"legal_name": "contains characters that are not valid Unicode text"}
    nested = client.post("/api/v1/reports", data='{"child": {"guardian_names": ["\\u0000"]}}', headers=headers | JSON)
    assert violations(nested) == {"child.guardian_names[0]": "contains a NUL character"}


def test_numbers_must_be_finite_and_safe_integers(client: FlaskClient) -> None:
    headers = bearer(client)
    reply = client.post(
        "/api/v1/reports/r1/milestones", data='{"a": 1e999, "b": 99999999999999999999}', headers=headers | JSON
    )
    found = violations(reply)
    assert found["a"] == "must be a finite number" and found["b"].startswith("must be between")


def test_a_report_whose_parts_have_the_wrong_shape_gets_field_messages(client: FlaskClient) -> None:
    headers = bearer(client)
    reply = client.post(
        "/api/v1/reports",
        json={
            "channel": "staff_walk_in",
            "occurred_at": "0001-01-01T00:00",
            "child": {"guardian_names": [1, 2], "approximate_age": 2**40},
            "place": ["not", "an", "object"],
            "reporter": [None],
        },
        headers=headers,
    )
    found = violations(reply)
    assert {"occurred_at", "child.guardian_names", "child.approximate_age", "place", "reporter"} <= set(found)


def test_every_operation_answers_a_described_body(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").json
    assert document is not None
    loose: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and not ({"properties", "additionalProperties"} & set(node)):
                loose.append(where)
            if node.get("additionalProperties") is True:
                loose.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(document, "")
    assert not loose
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert "default" in answers, (method, path)
            assert any(code.startswith("2") for code in answers), (method, path)


def test_a_service_refusing_the_callers_input_is_a_4xx_with_its_message(
    client: FlaskClient, backends: FakeBackends
) -> None:
    headers = bearer(client)
    for code, status in (("OUT_OF_RANGE", 400), ("ALREADY_EXISTS", 409)):
        backends.fail["get_report"] = BackendError(code, "the service's own words")
        reply = client.get("/api/v1/reports/r1", headers=headers)
        assert reply.status_code == status, reply.get_data(as_text=True)
        assert reply.json is not None and reply.json["message"] == "the service's own words"
