"""Referral settings, read once from the environment (see docs/conventions.md)."""

from __future__ import annotations

from dataclasses import dataclass

from platform_runtime.settings import CommonSettings, EnvReader, read_common

SERVICE_NAME = "referral"
DEFAULT_PORT = 50053


@dataclass(frozen=True)
class ReferralSettings:
    common: CommonSettings


def load_settings(env: EnvReader | None = None) -> ReferralSettings:
    env = env or EnvReader()
    settings = ReferralSettings(common=read_common(env, SERVICE_NAME, DEFAULT_PORT))
    env.done()
    return settings
