import pytest

from gateway.settings import load_settings
from gateway.tests.unit.conftest import KEY_ID, environment
from platform_runtime.auth import generate_keypair, keys_json
from platform_runtime.settings import EnvReader, SettingsError


def test_a_complete_environment_loads_with_defaults() -> None:
    settings = load_settings(EnvReader(environ=environment("sqlite:///x.db")))
    assert settings.http_port == 8080
    assert settings.session_cookie_secure is False
    assert settings.proxy_hops == 0
    assert settings.notify_target == "127.0.0.1:4"


def test_every_missing_variable_is_listed_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(EnvReader(environ={}))
    problems = "\n".join(raised.value.problems)
    for name in [
        "DATABASE_URL",
        "AUTH_SIGNING_KEY",
        "AUTH_PUBLIC_KEYS",
        "FLASK_SECRET_KEY",
        "REGISTRY_TARGET",
        "REPORTING_TARGET",
        "REFERRAL_TARGET",
        "NOTIFY_TARGET",
        "BENEFITS_TARGET",
    ]:
        assert f"{name} is required" in problems


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("HTTP_PORT", "70000", "HTTP_PORT is invalid"),
        ("SESSION_COOKIE_SECURE", "maybe", "SESSION_COOKIE_SECURE is invalid"),
        ("FLASK_SECRET_KEY", "short", "at least 32 characters"),
        ("AUTH_PUBLIC_KEYS", keys_json({KEY_ID: generate_keypair()[1]}), "no key gateway-unit1 matching"),
        ("AUTH_PUBLIC_KEYS", "not json", "AUTH_PUBLIC_KEYS is invalid"),
        (
            "AUTH_SIGNING_KEY",
            keys_json({KEY_ID: "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"}),
            "Ed25519",
        ),
        ("AUTH_SIGNING_KEY", keys_json({"reporting-1": generate_keypair()[0]}), "not one of gateway's"),
        ("AUTH_SIGNING_KEY", keys_json({"nobody-1": generate_keypair()[0]}), "must be '<component>-<label>'"),
    ],
)
def test_invalid_values_stop_the_start(name: str, value: str, complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint):
        load_settings(EnvReader(environ=environment("sqlite:///x.db") | {name: value}))


def test_secure_cookies_can_be_switched_on() -> None:
    settings = load_settings(EnvReader(environ=environment("sqlite:///x.db") | {"SESSION_COOKIE_SECURE": "true"}))
    assert settings.session_cookie_secure is True
