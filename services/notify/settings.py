"""Notify settings, read once from the environment (see docs/conventions.md)."""

from __future__ import annotations

from dataclasses import dataclass

from platform_runtime.settings import CommonSettings, EnvReader, read_common

SERVICE_NAME = "notify"
DEFAULT_PORT = 50055


@dataclass(frozen=True)
class NotifySettings:
    common: CommonSettings


def load_settings(env: EnvReader | None = None) -> NotifySettings:
    env = env or EnvReader()
    settings = NotifySettings(common=read_common(env, SERVICE_NAME, DEFAULT_PORT))
    env.done()
    return settings
