"""Benefits settings, read once from the environment (see docs/conventions.md)."""

from __future__ import annotations

from dataclasses import dataclass

from platform_runtime.settings import CommonSettings, EnvReader, decode_key, read_common

SERVICE_NAME = "benefits"
DEFAULT_PORT = 50054


@dataclass(frozen=True)
class BenefitsSettings:
    common: CommonSettings
    # The insurance roster knows children by a keyed hash of their identity number (BLIND_INDEX_KEY).
    blind_index_key: bytes
    eligibility_check_seconds: int = 3600
    run_chunk_size: int = 2000


def load_settings(env: EnvReader | None = None) -> BenefitsSettings:
    env = env or EnvReader()
    settings = BenefitsSettings(
        common=read_common(env, SERVICE_NAME, DEFAULT_PORT),
        blind_index_key=env.parsed("BLIND_INDEX_KEY", decode_key, b"", required=True),
        eligibility_check_seconds=env.integer("ELIGIBILITY_CHECK_INTERVAL_SECONDS", 3600, minimum=1, maximum=86400),
        run_chunk_size=env.integer("DISBURSEMENT_CHUNK_SIZE", 2000, minimum=1, maximum=100_000),
    )
    env.done()
    return settings
