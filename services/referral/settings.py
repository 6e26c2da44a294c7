"""Referral settings, read once from the environment (see docs/conventions.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from platform_runtime.auth import read_keys
from platform_runtime.settings import CommonSettings, EnvReader, pem_or_file, read_common
from services.referral.service_layer.credentials import agency_keys_problem, agency_signing_key

SERVICE_NAME = "referral"
DEFAULT_PORT = 50053
# The agency API (the edge the agencies' own systems call, ADR 0014).
DEFAULT_AGENCY_PORT = 50063


@dataclass(frozen=True)
class ReferralSettings:
    common: CommonSettings
    # How often the overdue referrals are looked for (their escalation is at most this late).
    escalation_check_seconds: int = 60
    # The agency API: served when a signing key is set. TLS when a certificate and key are set (the chart sets
    # them; without, the edge is plaintext and says so in the log: for development only).
    agency_port: int = DEFAULT_AGENCY_PORT
    # {kid: private PEM}: the one key new agency credentials are signed with (a bare PEM is `UNNAMED_KEY_ID`),
    # and {kid: public PEM}: earlier signing keys whose credentials are still accepted (rotation, ADR 0014).
    agency_token_private_key: dict[str, str] = field(default_factory=dict)
    agency_token_public_keys: dict[str, str] = field(default_factory=dict)
    # PEM, given inline or as a file's path (how Kubernetes mounts or injects secrets).
    agency_tls_cert: str = ""
    agency_tls_key: str = ""


def load_settings(env: EnvReader | None = None) -> ReferralSettings:
    env = env or EnvReader()
    settings = ReferralSettings(
        common=read_common(env, SERVICE_NAME, DEFAULT_PORT),
        escalation_check_seconds=env.integer("ESCALATION_CHECK_SECONDS", 60, minimum=1, maximum=3600),
        agency_port=env.integer("AGENCY_GRPC_PORT", DEFAULT_AGENCY_PORT, minimum=0, maximum=65535),
        agency_token_private_key=env.parsed("AGENCY_TOKEN_PRIVATE_KEY", agency_signing_key, {}),
        agency_token_public_keys=env.parsed("AGENCY_TOKEN_PUBLIC_KEYS", read_keys, {}),
        agency_tls_cert=env.parsed("AGENCY_TLS_CERT", pem_or_file, ""),
        agency_tls_key=env.parsed("AGENCY_TLS_KEY", pem_or_file, ""),
    )
    if settings.agency_token_private_key:
        problem = agency_keys_problem(settings.agency_token_private_key, settings.agency_token_public_keys)
        env.problems.extend([problem] if problem else [])
    elif settings.agency_token_public_keys:
        env.problems.append("AGENCY_TOKEN_PUBLIC_KEYS without AGENCY_TOKEN_PRIVATE_KEY")
    if bool(settings.agency_tls_cert) != bool(settings.agency_tls_key):
        env.problems.append("AGENCY_TLS_CERT and AGENCY_TLS_KEY go together")
    env.done()
    return settings
