"""Referral settings, read once from the environment (see docs/conventions.md)."""

from __future__ import annotations

from dataclasses import dataclass

from platform_runtime.settings import CommonSettings, EnvReader, read_common

SERVICE_NAME = "referral"
DEFAULT_PORT = 50053


@dataclass(frozen=True)
class ReferralSettings:
    common: CommonSettings
    # How often the overdue referrals are looked for (their escalation is at most this late).
    escalation_check_seconds: int = 60


def load_settings(env: EnvReader | None = None) -> ReferralSettings:
    env = env or EnvReader()
    settings = ReferralSettings(
        common=read_common(env, SERVICE_NAME, DEFAULT_PORT),
        escalation_check_seconds=env.integer("ESCALATION_CHECK_SECONDS", 60, minimum=1, maximum=3600),
    )
    env.done()
    return settings
