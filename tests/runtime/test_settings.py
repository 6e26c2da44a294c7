"""Settings fail fast, listing every problem at once; no secret has a default."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from platform_runtime.auth import generate_keypair, keys_json
from platform_runtime.settings import EnvReader, SettingsError, decode_keyring, read_common


def test_every_missing_setting_is_reported_together() -> None:
    env = EnvReader({})
    read_common(env, "registry", 50051)
    with pytest.raises(SettingsError) as failed:
        env.done()
    problems = "\n".join(failed.value.problems)
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "AUTH_PUBLIC_KEYS"):
        assert name in problems


def test_postgresql_needs_a_separate_relay_role() -> None:
    env = EnvReader(
        {
            "DATABASE_URL": "postgresql+psycopg://registry_app@db/registry",
            "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
            "AUTH_PUBLIC_KEYS": keys_json({"gateway-1": generate_keypair()[1]}),
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


def test_a_workload_key_must_be_the_services_own_and_in_the_keyring() -> None:
    private, public = generate_keypair()
    base = {"DATABASE_URL": "sqlite:///x.db", "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}
    for keyring, signing, complaint in [
        ({"reporting-1": public}, {"reporting-1": private}, None),
        ({"reporting-1": generate_keypair()[1]}, {"reporting-1": private}, "no key reporting-1 matching"),
        ({"registry-1": public}, {"registry-1": private}, "not one of reporting's"),
        ({"gateway-1": "not a key"}, {"reporting-1": private}, "AUTH_PUBLIC_KEYS is invalid"),
    ]:
        env = EnvReader(base | {"AUTH_PUBLIC_KEYS": keys_json(keyring), "WORKLOAD_SIGNING_KEY": keys_json(signing)})
        settings = read_common(env, "reporting", 50052)
        if complaint is None:
            env.done()
            assert settings.workload_signing_key == signing
        else:
            with pytest.raises(SettingsError, match=complaint):
                env.done()


def test_a_keyring_is_read_from_a_directory_of_pem_files(tmp_path: Path) -> None:
    old, new = generate_keypair()[1], generate_keypair()[1]
    (tmp_path / "gateway-2026-11.pem").write_text(old)
    (tmp_path / "gateway-2026-12.pem").write_text(new)
    env = EnvReader(
        {"DATABASE_URL": "sqlite:///x.db", "KAFKA_BOOTSTRAP_SERVERS": "k:9092", "AUTH_PUBLIC_KEYS": str(tmp_path)}
    )
    settings = read_common(env, "registry", 50051)
    env.done()
    assert settings.auth_public_keys == {"gateway-2026-11": old, "gateway-2026-12": new}
