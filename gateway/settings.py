"""Gateway settings, read once from the environment (see docs/conventions.md); no secret has a default."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.proxies import Network, parse_networks
from platform_runtime.auth import read_keys, signing_key_problem
from platform_runtime.settings import EnvReader, GrpcTls, decode_key, decode_keyring, keyring_problems, read_grpc_tls

SERVICE_NAME = "gateway"
DEFAULT_HTTP_PORT = 8080


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


@dataclass(frozen=True)
class GatewaySettings:
    database_url: str
    # {kid: PEM} of the one key the gateway signs tokens with (AUTH_SIGNING_KEY; its kid starts "gateway-").
    auth_signing_key: dict[str, str]
    # {kid: PEM} of the public keys tokens are accepted from (AUTH_PUBLIC_KEYS; the signing key's among them).
    auth_public_keys: dict[str, str]
    flask_secret_key: str
    # Encrypts the staff's TOTP secrets (SECOND_FACTOR_KEYS, a keyring like PII_ENCRYPTION_KEYS; the gateway's
    # own, so it holds no key to the children's records).
    second_factor_keys: dict[str, bytes]
    http_port: int
    registry_target: str
    reporting_target: str
    referral_target: str
    notify_target: str
    benefits_target: str
    # Off for plain-http local runs; the Helm chart sets it on behind TLS.
    session_cookie_secure: bool = False
    # How many reverse proxies in front of us may set X-Forwarded-For (0: trust none, use the peer address).
    proxy_hops: int = 0
    # The proxies' addresses or networks (TRUSTED_PROXIES, comma-separated): forwarded headers from anyone
    # else are ignored. Required when PROXY_HOPS > 0.
    trusted_proxies: tuple[Network, ...] = ()
    access_token_seconds: int = 900
    grpc_timeout_seconds: float = 10.0
    log_level: str = "INFO"
    # The SMS carrier signs the replies it passes on with this key (HMAC-SHA256; empty: the inbound route is off).
    sms_inbound_key: bytes = b""
    # The CA the services' certificates are checked against (GRPC_TLS_CA_FILE; none: plaintext calls).
    grpc_tls: GrpcTls = field(default_factory=GrpcTls)


def load_settings(env: EnvReader | None = None) -> GatewaySettings:
    env = env or EnvReader()
    secret_key = env.required("FLASK_SECRET_KEY")
    if secret_key and len(secret_key) < 32:
        env.problems.append("FLASK_SECRET_KEY must be at least 32 characters")
    settings = GatewaySettings(
        database_url=env.required("DATABASE_URL"),
        auth_signing_key=env.parsed("AUTH_SIGNING_KEY", read_keys, {}, required=True),
        auth_public_keys=env.parsed("AUTH_PUBLIC_KEYS", read_keys, {}, required=True),
        flask_secret_key=secret_key,
        second_factor_keys=env.parsed("SECOND_FACTOR_KEYS", decode_keyring, {}, required=True),
        http_port=env.integer("HTTP_PORT", DEFAULT_HTTP_PORT, minimum=1, maximum=65535),
        registry_target=env.required("REGISTRY_TARGET"),
        reporting_target=env.required("REPORTING_TARGET"),
        referral_target=env.required("REFERRAL_TARGET"),
        notify_target=env.required("NOTIFY_TARGET"),
        benefits_target=env.required("BENEFITS_TARGET"),
        session_cookie_secure=env.parsed("SESSION_COOKIE_SECURE", _boolean, False),
        proxy_hops=env.integer("PROXY_HOPS", 0, maximum=5),
        trusted_proxies=env.parsed("TRUSTED_PROXIES", parse_networks, ()),
        access_token_seconds=env.integer("ACCESS_TOKEN_SECONDS", 900, minimum=60, maximum=3600),
        grpc_timeout_seconds=float(env.integer("GRPC_TIMEOUT_SECONDS", 10, minimum=1, maximum=120)),
        log_level=env.optional("LOG_LEVEL", "INFO").upper(),
        sms_inbound_key=env.parsed("SMS_INBOUND_KEY", decode_key, b""),
        grpc_tls=read_grpc_tls(env),
    )
    if settings.proxy_hops and not settings.trusted_proxies:
        env.problems.append("TRUSTED_PROXIES must name the proxies' addresses when PROXY_HOPS > 0")
    keyring = keyring_problems(env, settings.auth_public_keys)
    if keyring is not None and settings.auth_signing_key:
        # Tokens we sign must verify with the keys the services hold: a mismatch would fail every call later.
        problem = signing_key_problem("AUTH_SIGNING_KEY", settings.auth_signing_key, keyring, SERVICE_NAME)
        env.problems.extend([problem] if problem else [])
    env.done()
    return settings
