"""Access tokens: Ed25519-signed JWTs, each for one service (its audience), each naming its key (`kid`).

The gateway signs the tokens of the people it acts for; a service that calls another on its own account
(reporting asks the registry to match a child) signs a workload token with its own key, which may name only
that service itself. Every component verifies against a keyring (`kid` -> public key, AUTH_PUBLIC_KEYS), so a
new signing key is added, used, and the old one retired without a flag day (docs/data-protection.md).
The tenant a call acts for comes from the verified token, never from a field the client sends.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from platform_runtime.errors import Unauthenticated

ALGORITHM = "EdDSA"
GATEWAY = "gateway"
# The components that verify tokens, each the audience of the tokens meant for it.
SERVICES = ("registry", "reporting", "referral", "benefits", "notify")
COMPONENTS = (GATEWAY, *SERVICES)
WORKLOAD_PREFIX = "service:"
# A key id names the component that signs with it, then a label of the operator's: "gateway-2026-12".
_KEY_ID = re.compile(r"^(?P<component>[a-z]+)-[A-Za-z0-9._-]{1,64}$")


def audience(component: str) -> str:
    """The `aud` of a token meant for `component` (and its `iss` when it signs one)."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}")
    return f"minorprot-{component}"


issuer = audience  # the same names: a component's tokens are issued as it and meant for it


class Role(StrEnum):
    CASEWORKER = "caseworker"  # township caseworker (乡镇儿童督导员 / 专干)
    TOWN_ADMIN = "town_admin"
    CHILD_DIRECTOR = "child_director"  # village child director (儿童主任)
    MANDATED_REPORTER = "mandated_reporter"  # teacher, doctor, community worker
    DISTRICT_OFFICER = "district_officer"  # district civil affairs: reads across the district's towns
    DISTRICT_ADMIN = "district_admin"  # keeps the district's agency directory, routing rules and policies
    LEADING_GROUP_OFFICE = "leading_group_office"  # the district leading group's office: oversees all referrals
    AGENCY_OFFICER = "agency_officer"  # an officer of a member unit (police, education, ...)
    AGENCY_SYSTEM = "agency_system"  # an agency's own system submitting over gRPC
    FINANCE_AUDITOR = "finance_auditor"
    PUBLIC = "public"  # a member of the public on the portal's public form (short-lived intake token)
    SYSTEM = "system"  # the platform itself (seeding, onboarding jobs, a service calling another)


@dataclass(frozen=True)
class Principal:
    user_id: str
    display_name: str
    role: Role
    tenant: str
    district: str
    agency: str = ""
    token: str = field(default="", repr=False, compare=False)
    # A village child director's villages (12-digit codes): the registry shows them only those villages'
    # children (services/registry/adapters/village_scope.py). Empty for every other role.
    villages: tuple[str, ...] = ()

    def can_see_reporter(self) -> bool:
        return self.role in {Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_OFFICER}

    @property
    def workload(self) -> str:
        """The service this principal is (a workload identity), "" for a person or the gateway's jobs."""
        return self.user_id.removeprefix(WORKLOAD_PREFIX) if self.user_id.startswith(WORKLOAD_PREFIX) else ""


def workload_principal(service: str, tenant: str) -> Principal:
    """A service acting on its own account, for one town (the tenant of the work it is doing)."""
    return Principal(WORKLOAD_PREFIX + service, service, Role.SYSTEM, tenant, tenant[:6])


class Verifier(Protocol):
    def verify(self, token: str) -> Principal: ...


def generate_keypair() -> tuple[str, str]:
    """(private PEM, public PEM) for development and tests; production keys come from a secret store."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return private_pem, public_pem_of(private_pem)


def public_pem_of(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def component_of(key_id: str) -> str:
    match = _KEY_ID.match(key_id)
    if match is None or match["component"] not in COMPONENTS:
        raise ValueError(
            f"key id {key_id!r} must be '<component>-<label>', the component one of {', '.join(COMPONENTS)}"
        )
    return match["component"]


def read_keys(text: str) -> dict[str, str]:
    """A keyring or a signing key as configured: a JSON object `{"<kid>": "<PEM>", ...}`, or the path of a file
    holding one, or of a directory of `<kid>.pem` files (a mounted Kubernetes secret)."""
    text = text.strip()
    if not text.startswith("{"):
        path = Path(text)
        if path.is_dir():
            return {entry.stem: entry.read_text(encoding="ascii") for entry in sorted(path.glob("*.pem"))}
        try:
            text = path.read_text(encoding="ascii")
        except OSError as exc:
            raise ValueError(f"neither a JSON object nor a readable file or directory: {exc}") from None
    try:
        keys = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON object of key id -> PEM: {exc}") from None
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()) or not keys:
        raise ValueError("expected a JSON object of key id -> PEM, with at least one key")
    for key_id in keys:
        component_of(key_id)
    return keys


def keys_json(keys: Mapping[str, str]) -> str:
    """How a keyring or signing key is written into the environment (the inverse of `read_keys`)."""
    return json.dumps(dict(keys))


class Keyring:
    """The public keys a component accepts tokens from, by key id; a key id also says who may sign with it."""

    def __init__(self, public_keys: Mapping[str, str]) -> None:
        self._keys: dict[str, tuple[str, Ed25519PublicKey]] = {}
        for key_id, pem in public_keys.items():
            key = serialization.load_pem_public_key(pem.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"key {key_id} is not an Ed25519 public key")
            self._keys[key_id] = (component_of(key_id), key)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def key(self, key_id: str) -> tuple[str, Ed25519PublicKey]:
        """(the component signing with it, the key); Unauthenticated for a key id not (or no longer) here."""
        found = self._keys.get(key_id)
        if found is None:
            raise Unauthenticated("token signed with an unknown key")
        return found

    def holds_public_half(self, key_id: str, private_pem: str) -> bool:
        raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
        found = self._keys.get(key_id)
        public = serialization.load_pem_private_key(private_pem.encode(), password=None).public_key()
        return found is not None and found[1].public_bytes(*raw) == public.public_bytes(*raw)


def signing_key_problem(name: str, signing_key: Mapping[str, str], keyring: Keyring, component: str) -> str | None:
    """Why a configured signing key cannot be used by `component`: tokens it signs must verify everywhere."""
    if len(signing_key) != 1:
        return f"{name} must hold exactly one key"
    ((key_id, pem),) = signing_key.items()
    try:
        if component_of(key_id) != component:
            return f"{name}: key id {key_id} is not one of {component}'s (it must start with '{component}-')"
        if not keyring.holds_public_half(key_id, pem):
            return f"{name}: AUTH_PUBLIC_KEYS has no key {key_id} matching it (add the public half there first)"
    except (ValueError, TypeError) as exc:
        return f"{name} must be an Ed25519 private key: {exc}"
    return None


class TokenIssuer:
    """Signs tokens with one key, as the component that key belongs to (its id is the `kid` header)."""

    def __init__(self, signing_key: Mapping[str, str], lifetime_seconds: int = 900) -> None:
        ((self.key_id, pem),) = signing_key.items()
        self.component = component_of(self.key_id)
        self._key = serialization.load_pem_private_key(pem.encode(), password=None)
        self._lifetime = lifetime_seconds

    def issue(
        self, principal: Principal, audience_of: str, *, now: float | None = None, lifetime: int | None = None
    ) -> str:
        """A token for `principal`, accepted only by the component `audience_of` ("registry", "gateway", ...)."""
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": issuer(self.component),
            "aud": audience(audience_of),
            "sub": principal.user_id,
            "name": principal.display_name,
            "role": principal.role.value,
            "tenant": principal.tenant,
            "district": principal.district,
            "agency": principal.agency,
            "villages": list(principal.villages),
            "iat": issued,
            "exp": issued + (lifetime if lifetime is not None else self._lifetime),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.key_id})  # type: ignore[arg-type]


class ServiceTokens:
    """Tokens for calling the services on a principal's behalf: one per principal and audience, short-lived and
    kept until shortly before it expires, so a page making ten calls signs at most once per service."""

    CACHE_SIZE = 4096

    def __init__(self, issuer_: TokenIssuer, lifetime_seconds: int = 300, renew_before_seconds: int = 60) -> None:
        self._issuer = issuer_
        self._lifetime = lifetime_seconds
        self._renew_before = renew_before_seconds
        self._tokens: dict[tuple[Principal, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def token(self, principal: Principal, audience_of: str) -> str:
        now = time.time()
        key = (principal, audience_of)
        with self._lock:
            known = self._tokens.get(key)
            if known is not None and known[1] - self._renew_before > now:
                return known[0]
        token = self._issuer.issue(principal, audience_of, now=now, lifetime=self._lifetime)
        with self._lock:
            if len(self._tokens) >= self.CACHE_SIZE:
                self._tokens.clear()  # simpler than LRU; a refill is one signature each
            self._tokens[key] = (token, int(now) + self._lifetime)
        return token


class TokenVerifier:
    """Verifies a token's key, signature and claims once, then remembers the principal until the token expires:
    a caller sends the same token with every call, and the signature check was a tenth of a call's time.

    Accepted: a token meant for this component (`aud`), signed with a key of the keyring by the component the key
    id names. Only the gateway's keys speak for people; a service's key speaks only for that service itself."""

    CACHE_SIZE = 4096

    def __init__(self, keyring: Keyring, audience_of: str, leeway_seconds: int = 10) -> None:
        self._keyring = keyring
        self._audience = audience(audience_of)
        self._leeway = leeway_seconds
        self._verified: dict[str, tuple[Principal, float]] = {}  # token -> (principal, expires at)

    def verify(self, token: str) -> Principal:
        if (known := self._verified.get(token)) is not None:
            principal, expires = known
            if time.time() <= expires + self._leeway:
                return principal
            self._verified.pop(token, None)
            raise Unauthenticated("token expired")
        principal, expires = self._verify(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()  # simpler than LRU; tokens live minutes, a refill is one check each
        self._verified[token] = (principal, expires)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            key_id = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("invalid token") from exc
        if not isinstance(key_id, str):
            raise Unauthenticated("token names no key")
        signer, key = self._keyring.key(key_id)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=issuer(signer),
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
            role = Role(claims["role"])
            tenant = str(claims["tenant"])
            district = str(claims["district"])
            villages = tuple(str(code) for code in claims.get("villages", ()))
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
            raise Unauthenticated("invalid token") from exc
        if claims["aud"] != self._audience:
            raise Unauthenticated("a token must be meant for one service only")  # a list would replay elsewhere
        if not (len(tenant) == 9 and tenant.isdigit() and tenant.startswith(district)):
            raise Unauthenticated("token names no valid tenant")
        principal = Principal(
            user_id=str(claims["sub"]),
            display_name=str(claims.get("name", "")),
            role=role,
            tenant=tenant,
            district=district,
            agency=str(claims.get("agency", "")),
            token=token,
            villages=villages,
        )
        if signer != GATEWAY and (principal.workload != signer or role is not Role.SYSTEM):
            raise Unauthenticated(f"a key of {signer} signs only for {signer} itself")
        return principal, float(claims["exp"])
