"""Reporting settings, read once from the environment (see docs/conventions.md)."""

from __future__ import annotations

from dataclasses import dataclass

from platform_runtime.settings import CommonSettings, EnvReader, decode_key, decode_keyring, read_common

SERVICE_NAME = "reporting"
DEFAULT_PORT = 50052


@dataclass(frozen=True)
class ReportingSettings:
    common: CommonSettings
    pii_keys: dict[str, bytes]
    blind_index_key: bytes
    registry_target: str
    # Notify, which sends reporters who ask for it their receipt number (SendReceipt).
    notify_target: str
    # Reporting's own signing key ({kid: PEM}, kid "reporting-..."): it asks the registry and notify as itself.
    workload_signing_key: dict[str, str]
    # A candidate scoring at least this is linked without asking a person.
    auto_link_threshold: float
    receipt_lookups_per_minute: int
    # How often missed time limits are looked for (and announced as DeadlineBreached).
    deadline_check_seconds: int
    # How often an idle receipt worker looks for receipts to hand to notify.
    receipt_poll_ms: int


def load_settings(env: EnvReader | None = None) -> ReportingSettings:
    env = env or EnvReader()
    common = read_common(env, SERVICE_NAME, DEFAULT_PORT)

    def threshold(text: str) -> float:
        value = float(text)
        if not 0.5 <= value <= 1.0:
            raise ValueError("must be between 0.5 and 1.0")
        return value

    settings = ReportingSettings(
        common=common,
        pii_keys=env.parsed("PII_ENCRYPTION_KEYS", decode_keyring, {}, required=True),
        blind_index_key=env.parsed("BLIND_INDEX_KEY", decode_key, b"", required=True),
        registry_target=env.required("REGISTRY_TARGET"),
        notify_target=env.required("NOTIFY_TARGET"),
        workload_signing_key=common.workload_signing_key,
        auto_link_threshold=env.parsed("AUTO_LINK_THRESHOLD", threshold, 0.9),
        receipt_lookups_per_minute=env.integer("RECEIPT_LOOKUPS_PER_MINUTE", 10, minimum=1, maximum=10_000),
        deadline_check_seconds=env.integer("DEADLINE_CHECK_SECONDS", 30, minimum=1, maximum=3600),
        receipt_poll_ms=env.integer("RECEIPT_POLL_MS", 500, minimum=10, maximum=60_000),
    )
    if not common.workload_signing_key:
        env.problems.append("WORKLOAD_SIGNING_KEY is required (reporting calls the registry and notify as itself)")
    env.done()
    return settings
