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
    # How long a process reuses a town's dashboard numbers at most (service_layer/statistics.py): the bound
    # for another replica's writes to show; this process's own writes show at once. 0: always count.
    statistics_cache_seconds: int = 300


def load_settings(env: EnvReader | None = None) -> RegistrySettings:
    env = env or EnvReader()
    common = read_common(env, SERVICE_NAME, DEFAULT_PORT)
    settings = RegistrySettings(
        common=common,
        pii_keys=env.parsed("PII_ENCRYPTION_KEYS", decode_keyring, {}, required=True),
        blind_index_key=env.parsed("BLIND_INDEX_KEY", decode_key, b"", required=True),
        visit_check_seconds=env.integer("VISIT_CHECK_INTERVAL_SECONDS", 3600, minimum=1, maximum=86400),
        statistics_cache_seconds=env.integer("REGISTER_STATISTICS_CACHE_SECONDS", 300, minimum=0, maximum=3600),
    )
    env.done()
    return settings
