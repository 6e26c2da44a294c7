"""Settings fail fast, listing every problem at once; no secret has a default."""

from __future__ import annotations

import base64

import pytest

from platform_runtime.settings import EnvReader, SettingsError, decode_keyring, read_common


def test_every_missing_setting_is_reported_together() -> None:
    env = EnvReader({})
    read_common(env, "registry", 50051)
    with pytest.raises(SettingsError) as failed:
        env.done()
    problems = "\n".join(failed.value.problems)
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "AUTH_PUBLIC_KEY"):
        assert name in problems


def test_postgresql_needs_a_separate_relay_role() -> None:
    env = EnvReader(
        {
            "DATABASE_URL": "postgresql+psycopg://registry_app@db/registry",
            "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
            "AUTH_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----",
        }
    )
    read_common(env, "registry", 50051)
    with pytest.raises(SettingsError, match="OUTBOX_DATABASE_URL"):
        env.done()


def test_invalid_values_are_named() -> None:
    env = EnvReader({"GRPC_PORT": "seventy", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"})
    read_common(env, "registry", 50051)
    with pytest.raises(SettingsError) as failed:
        env.done()
    problems = "\n".join(failed.value.problems)
    assert "GRPC_PORT is invalid" in problems
    assert "KAFKA_SASL_USERNAME" in problems


def test_a_keyring_needs_ids_and_32_byte_keys() -> None:
    key = base64.b64encode(bytes(32)).decode()
    assert list(decode_keyring(f"new:{key},old:{key}")) == ["new", "old"]
    for bad in (key, f"k:{base64.b64encode(bytes(16)).decode()}", f"k:{key},k:{key}"):
        with pytest.raises(ValueError):
            decode_keyring(bad)
