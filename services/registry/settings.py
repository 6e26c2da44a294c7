"""Registry settings, read once from the environment (see docs/conventions.md)."""

from __future__ import annotations

from dataclasses import dataclass

from platform_runtime.settings import CommonSettings, EnvReader, decode_key, decode_keyring, read_common

SERVICE_NAME = "registry"
DEFAULT_PORT = 50051


@dataclass(frozen=True)
class RegistrySettings:
    common: CommonSettings
    pii_keys: dict[str, bytes]
    blind_index_key: bytes
    # How often overdue follow-up visits are checked (visits are due by the day: hourly is plenty).
    visit_check_seconds: int = 3600


def load_settings(env: EnvReader | None = None) -> RegistrySettings:
    env = env or EnvReader()
    common = read_common(env, SERVICE_NAME, DEFAULT_PORT)
    settings = RegistrySettings(
        common=common,
        pii_keys=env.parsed("PII_ENCRYPTION_KEYS", decode_keyring, {}, required=True),
        blind_index_key=env.parsed("BLIND_INDEX_KEY", decode_key, b"", required=True),
        visit_check_seconds=env.integer("VISIT_CHECK_INTERVAL_SECONDS", 3600, minimum=1, maximum=86400),
    )
    env.done()
    return settings
