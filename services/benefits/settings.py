"""Benefits settings, read once from the environment (see docs/conventions.md)."""

from __future__ import annotations

from dataclasses import dataclass

from platform_runtime.settings import CommonSettings, EnvReader, read_common

SERVICE_NAME = "benefits"
DEFAULT_PORT = 50054


@dataclass(frozen=True)
class BenefitsSettings:
    common: CommonSettings


def load_settings(env: EnvReader | None = None) -> BenefitsSettings:
    env = env or EnvReader()
    settings = BenefitsSettings(common=read_common(env, SERVICE_NAME, DEFAULT_PORT))
    env.done()
    return settings
