"""The second factor through the whole gateway (Flask app, its SQLite database): the portal's steps after
the password, enrolment, replay, throttling, recovery codes and the API token."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from gateway import second_factor
from gateway.accounts import NewUser
from gateway.bootstrap import Components
from gateway.tests.unit.conftest import PASSWORD, TOWN, code_for, credentials, csrf_from
from platform_runtime.auth import Role


def password_step(client: FlaskClient, username: str = "caseworker") -> tuple[str, str]:
    """Posts the password; returns where the portal goes next and the form token."""
    token = csrf_from(client, "/login")
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"], token


def post_code(client: FlaskClient, code: str, token: str, path: str = "/login/code") -> int:
    return client.post(path, data={"code": code, "csrf_token": token}).status_code


def signed_in(client: FlaskClient) -> bool:
    return client.get("/").status_code == 200


def test_a_caseworker_is_not_signed_in_by_the_password_alone(client: FlaskClient) -> None:
    location, token = password_step(client)
    assert location == "/login/code"
    assert not signed_in(client)
    assert client.get("/login/code").headers["Cache-Control"] == "no-store"
    assert post_code(client, code_for(client, "caseworker"), token) == 302
    assert signed_in(client)


def test_a_reporter_needs_no_second_factor(client: FlaskClient) -> None:
    location, _ = password_step(client, "teacher")
    assert location == "/" and signed_in(client)


def test_a_wrong_code_and_a_used_code_are_refused(client: FlaskClient) -> None:
    _, token = password_step(client)
    assert post_code(client, "000000" if code_for(client, "x") != "000000" else "111111", token) == 401
    code = code_for(client, "caseworker")
    assert post_code(client, code, token) == 302
    client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    _, token = password_step(client)
    refused = client.post("/login/code", data={"code": code, "csrf_token": token})
    assert refused.status_code == 401 and "已使用" in refused.get_data(as_text=True)
    assert not signed_in(client)


def test_wrong_codes_count_against_the_login_limits_and_a_right_password_does_not_reset_them(
    client: FlaskClient,
) -> None:
    _, token = password_step(client)
    for _ in range(3):
        assert post_code(client, "999999x", token) == 401
    _, token = password_step(client)  # the right password again: the count of wrong codes stays
    for _ in range(2):
        assert post_code(client, "999999x", token) == 401
    assert post_code(client, code_for(client, "caseworker"), token) == 429
    assert not signed_in(client)


def test_the_code_page_needs_the_password_first(client: FlaskClient) -> None:
    assert client.get("/login/code").headers["Location"].startswith("/login")
    assert client.get("/login/enrol").headers["Location"].startswith("/login")


def test_enrolment_shows_the_secret_confirms_a_first_code_and_gives_single_use_recovery_codes(
    client: FlaskClient, components: Components
) -> None:
    components.users.save_user(NewUser("new_worker", "新社工", Role.CASEWORKER, TOWN), PASSWORD)
    location, token = password_step(client, "new_worker")
    assert location == "/login/enrol"
    page = client.get("/login/enrol").get_data(as_text=True)
    secret = re.search(r'id="enrol-secret"[^>]*>([A-Z2-7]+)<', page)
    assert secret and "<svg" in page and "otpauth://totp/" in page
    assert post_code(client, "123456x", token, "/login/enrol") == 401
    confirmed = client.post(
        "/login/enrol", data={"code": second_factor.code_at(secret.group(1), _now()), "csrf_token": token}
    )
    recovery = re.findall(r"<code>([a-z2-7]{5}-[a-z2-7]{5})</code>", confirmed.get_data(as_text=True))
    assert confirmed.status_code == 200 and len(recovery) == second_factor.RECOVERY_CODES
    assert signed_in(client)
    stored = components.users  # the secret is kept encrypted, never as typed
    assert stored.is_enrolled(stored.user_id_of("new_worker") or "")

    client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    _, token = password_step(client, "new_worker")
    assert post_code(client, recovery[0], token) == 302  # a recovery code in place of a code
    client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    _, token = password_step(client, "new_worker")
    assert post_code(client, recovery[0], token) == 401  # once only
    assert post_code(client, recovery[1].upper().replace("-", " "), token) == 302


def test_the_api_token_needs_the_code_for_those_roles(client: FlaskClient, components: Components) -> None:
    without = client.post("/api/v1/token", json={"username": "caseworker", "password": PASSWORD})
    assert without.status_code == 401
    body = credentials(client, "caseworker")
    assert client.post("/api/v1/token", json=body).status_code == 200
    assert client.post("/api/v1/token", json=body).status_code == 401  # the same code again
    assert client.post("/api/v1/token", json={"username": "teacher", "password": PASSWORD}).status_code == 200
    components.users.save_user(NewUser("new_worker", "新社工", Role.CASEWORKER, TOWN), PASSWORD)
    unenrolled = client.post("/api/v1/token", json={"username": "new_worker", "password": PASSWORD, "code": "1"})
    assert unenrolled.status_code == 401 and "enrol" in unenrolled.get_data(as_text=True)


def test_the_openapi_document_names_the_code_field(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    code = document["components"]["schemas"]["Credentials"]["properties"]["code"]
    assert "caseworker" in code["description"] and "recovery code" in code["description"]


def _now() -> float:
    import time

    return time.time()
