"""Unit fixtures: a migrated SQLite file per test, generated keys, and fake services (no servers)."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway import bootstrap, second_factor
from gateway.accounts import DEMO_USERS
from gateway.app import create_app
from gateway.settings import GatewaySettings, load_settings
from gateway.tests.unit.fakes import FakeBackends
from platform_runtime.auth import generate_keypair, keys_json
from platform_runtime.migrations import upgrade
from platform_runtime.settings import EnvReader, decode_keyring
from tests.support.second_factor import fresh_code

TOWN = "110111008"
PASSWORD = "correct horse battery"
KEYS = generate_keypair()
KEY_ID = "gateway-unit1"
FACTOR_KEYS = "t1:" + base64.b64encode(b"k" * 32).decode()
# The seeded users of the roles that need a second factor share this authenticator secret.
TOTP_SECRET = second_factor.new_secret()


def environment(database_url: str) -> dict[str, str]:
    private, public = KEYS
    return {
        "DATABASE_URL": database_url,
        "AUTH_SIGNING_KEY": keys_json({KEY_ID: private}),
        "AUTH_PUBLIC_KEYS": keys_json({KEY_ID: public}),
        "FLASK_SECRET_KEY": "x" * 40,
        "SECOND_FACTOR_KEYS": FACTOR_KEYS,
        "REGISTRY_TARGET": "127.0.0.1:1",
        "REPORTING_TARGET": "127.0.0.1:2",
        "REFERRAL_TARGET": "127.0.0.1:3",
        "NOTIFY_TARGET": "127.0.0.1:4",
        "BENEFITS_TARGET": "127.0.0.1:5",
    }


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated once with the demo users (hashing is deliberately slow); each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "gateway.db"
    url = f"sqlite:///{path}"
    upgrade("gateway", url)
    users, _, engine = bootstrap.user_service(url, decode_keyring(FACTOR_KEYS))
    for demo in [
        *(replace(demo, tenant=TOWN) for demo in DEMO_USERS),
        replace(DEMO_USERS[0], username="other_caseworker", tenant="110111009"),
    ]:
        user, _ = users.save_user(demo, PASSWORD)
        if second_factor.required_for(user.role):
            users.set_second_factor(user.user_id, TOTP_SECRET)
    engine.dispose()
    return path


@pytest.fixture
def settings(seeded_database: Path, tmp_path: Path) -> GatewaySettings:
    path = tmp_path / "gateway.db"
    shutil.copy(seeded_database, path)
    return load_settings(EnvReader(environ=environment(f"sqlite:///{path}")))


@pytest.fixture
def backends() -> FakeBackends:
    return FakeBackends()


@pytest.fixture
def components(settings: GatewaySettings, backends: FakeBackends) -> Iterator[bootstrap.Components]:
    built = bootstrap.build(settings, backends=backends)
    yield built
    built.close()


@pytest.fixture
def app(settings: GatewaySettings, components: bootstrap.Components) -> Flask:
    return create_app(settings, components)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ENROL_SECRET = re.compile(r'id="enrol-secret"[^>]*>([A-Z2-7]+)<')


def csrf_from(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    match = _CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def code_for(client: FlaskClient, username: str) -> str:
    """A fresh second-factor code of a seeded user (each test has its own database, so its own codes)."""
    settings = client.application.extensions["gateway"].settings
    return fresh_code(TOTP_SECRET, f"{settings.database_url}/{username}")


def credentials(client: FlaskClient, username: str = "caseworker", password: str = PASSWORD) -> dict[str, str]:
    """The body of POST /api/v1/token for a seeded user, with a code if the role needs one."""
    return {"username": username, "password": password, "code": code_for(client, username)}


def login(client: FlaskClient, username: str = "caseworker", password: str = PASSWORD) -> None:
    token = csrf_from(client, "/login")
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    if response.headers["Location"].endswith("/login/code"):
        response = client.post("/login/code", data={"code": code_for(client, username), "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)
    elif response.headers["Location"].endswith("/login/enrol"):  # a user the test made: enrols as a person would
        secret = _ENROL_SECRET.search(client.get("/login/enrol").get_data(as_text=True))
        assert secret, "no secret on the enrolment page"
        response = client.post("/login/enrol", data={"code": fresh_code(secret.group(1), ""), "csrf_token": token})
        assert response.status_code == 200, response.get_data(as_text=True)
