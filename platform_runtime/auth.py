"""Access tokens: Ed25519-signed JWTs issued by the gateway, verified by every service.

Only the gateway holds the private key; a service holds the public key and can verify but never mint.
The tenant a call acts for comes from the verified token, never from a field the client sends.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from platform_runtime.errors import Unauthenticated

ISSUER = "minorprot-gateway"
AUDIENCE = "minorprot-services"
ALGORITHM = "EdDSA"


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
    SYSTEM = "system"  # the platform itself (seeding, onboarding jobs)


@dataclass(frozen=True)
class Principal:
    user_id: str
    display_name: str
    role: Role
    tenant: str
    district: str
    agency: str = ""
    token: str = field(default="", repr=False, compare=False)

    def can_see_reporter(self) -> bool:
        return self.role in {Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_OFFICER}


def generate_keypair() -> tuple[str, str]:
    """(private PEM, public PEM) for development and tests; production keys come from a secret store."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


class TokenIssuer:
    def __init__(self, private_key_pem: str, lifetime_seconds: int = 900) -> None:
        self._key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        self._lifetime = lifetime_seconds

    def issue(self, principal: Principal, *, now: float | None = None, lifetime: int | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": principal.user_id,
            "name": principal.display_name,
            "role": principal.role.value,
            "tenant": principal.tenant,
            "district": principal.district,
            "agency": principal.agency,
            "iat": issued,
            "exp": issued + (lifetime if lifetime is not None else self._lifetime),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)  # type: ignore[arg-type]


class TokenVerifier:
    """Verifies a token's signature and claims once, then remembers the principal until the token expires:
    a caller sends the same token with every call, and the signature check was a tenth of a call's time."""

    CACHE_SIZE = 4096

    def __init__(self, public_key_pem: str, leeway_seconds: int = 10) -> None:
        self._key = serialization.load_pem_public_key(public_key_pem.encode())
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
            claims = jwt.decode(
                token,
                self._key,  # type: ignore[arg-type]
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
            role = Role(claims["role"])
            tenant = str(claims["tenant"])
            district = str(claims["district"])
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
            raise Unauthenticated("invalid token") from exc
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
        )
        return principal, float(claims["exp"])
