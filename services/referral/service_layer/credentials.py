"""Credentials of the agencies' own systems (ADR 0014): signed per-agency tokens with their own audience, checked
against the credential table on every call.

The district administrator issues one per agency system; the token is shown once and never stored (its `jti` is
the credential's id). The referral service signs them with its own Ed25519 key, apart from the gateway's, for the
audience of the agency API only: a gateway token is not an agency credential and an agency credential opens
nothing but the agency API. Revoking marks the row, and the next call (or the next round of an open stream) is
refused.

Each credential names its signing key (`kid`), and is verified by the key of that id: the signing key, or an
earlier one still accepted (AGENCY_TOKEN_PUBLIC_KEYS). So the key rotates without a flag day: sign with a new
key while the old one is still accepted, re-issue the agencies' credentials, revoke the old ones, retire the old
key (ADR 0014).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.auth import Keyring, Principal, Role, component_of, public_pem_of, read_keys
from platform_runtime.db import Database, new_id, utcnow
from platform_runtime.tenancy import require_role
from services.referral.adapters.orm import AgencyCredentialRecord
from services.referral.domain.lifecycle import clean_text
from services.referral.service_layer.routing_config import RoutingConfig

AGENCY_ISSUER = "minorprot-referral"
AGENCY_AUDIENCE = "minorprot-agency-api"
ALGORITHM = "EdDSA"
USER_PREFIX = "agency-system:"
MAX_VALID_DAYS = 730
# The id of a signing key configured as a bare PEM, and of the key that signed credentials carrying no `kid`
# (those issued before key ids): they keep working while a key of this id is accepted.
UNNAMED_KEY_ID = "referral-agency"


def agency_signing_key(text: str) -> dict[str, str]:
    """AGENCY_TOKEN_PRIVATE_KEY: `{"referral-<label>": "<PEM>"}` as `auth.read_keys` reads it (inline, a file, a
    directory), or a bare PEM (inline or a file's path), which is the key `UNNAMED_KEY_ID`."""
    text = text.strip()
    if not text.startswith("{") and "-----BEGIN" not in text and Path(text).is_file():
        inside = Path(text).read_text(encoding="ascii").strip()
        text = inside if "-----BEGIN" in inside and not inside.startswith("{") else text
    if "-----BEGIN" in text and not text.startswith("{"):
        return {UNNAMED_KEY_ID: text}
    return read_keys(text)


def agency_keys_problem(signing_key: Mapping[str, str], accepted_keys: Mapping[str, str]) -> str | None:
    """Why these keys cannot sign and verify agency credentials (None: they can)."""
    if len(signing_key) != 1:
        return "AGENCY_TOKEN_PRIVATE_KEY must hold exactly one key"
    try:
        AgencyKeyring(signing_key, accepted_keys)
    except (ValueError, TypeError) as exc:
        return f"AGENCY_TOKEN_PRIVATE_KEY / AGENCY_TOKEN_PUBLIC_KEYS: {exc}"
    return None


class AgencyKeyring:
    """The key agency credentials are signed with, and the keys they are verified by, by key id: the signing
    key's public half and the earlier keys still accepted (public PEMs). All are referral's (`referral-...`)."""

    def __init__(self, signing_key: Mapping[str, str], accepted_keys: Mapping[str, str]) -> None:
        ((self.key_id, pem),) = signing_key.items()
        for key_id in (*accepted_keys, self.key_id):
            if component_of(key_id) != "referral":
                raise ValueError(f"key id {key_id} is not one of referral's (it must start with 'referral-')")
        self.private_key = serialization.load_pem_private_key(pem.encode(), password=None)
        self._keyring = Keyring({**accepted_keys, self.key_id: public_pem_of(pem)})

    def public_key(self, token: str) -> Ed25519PublicKey:
        """The public key the credential names (`kid`; none: UNNAMED_KEY_ID); Unauthenticated if not accepted."""
        try:
            key_id = jwt.get_unverified_header(token).get("kid", UNNAMED_KEY_ID)
        except jwt.InvalidTokenError as exc:
            raise errors.Unauthenticated("invalid agency credential") from exc
        if not isinstance(key_id, str):
            raise errors.Unauthenticated("invalid agency credential")
        return self._keyring.key(key_id)[1]


@dataclass(frozen=True)
class CredentialView:
    credential_id: str
    agency_code: str
    name: str
    issued_at: datetime
    issued_by: str
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str = ""


@dataclass(frozen=True)
class IssuedCredential:
    credential: CredentialView
    token: str  # shown once


class AgencyCredentials:
    def __init__(
        self,
        database: Database,
        signing_key: Mapping[str, str],
        config: RoutingConfig,
        *,
        accepted_keys: Mapping[str, str] | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        """`signing_key`: {kid: private PEM}, the one key new credentials are signed with; `accepted_keys`:
        {kid: public PEM}, earlier signing keys whose credentials are still accepted."""
        self._database = database
        self._keys = AgencyKeyring(signing_key, accepted_keys or {})
        self._config = config
        self._now = now

    # -- the district administrator ------------------------------------------------------------------------

    def issue(self, agency_code: str, name: str, valid_days: int = 365) -> IssuedCredential:
        caller = require_role(Role.DISTRICT_ADMIN)
        district = caller.district
        name = clean_text(name, "name", 100, required=True)
        if agency_code not in self._config.directory(district):
            raise errors.InvalidInput.single("agency_code", "is not a unit of the district's directory")
        if not 1 <= valid_days <= MAX_VALID_DAYS:
            raise errors.InvalidInput.single("valid_days", f"must be from 1 to {MAX_VALID_DAYS}")
        now = self._now()
        record = AgencyCredentialRecord(
            tenant_id=district,
            id=new_id(),
            agency_code=agency_code,
            name=name,
            issued_at=now,
            issued_by=caller.user_id,
            expires_at=now + timedelta(days=valid_days),
        )
        with self._database.unit_of_work(district) as uow:
            uow.session.add(record)
            view = _view(record)
            uow.commit()
        claims = {
            "iss": AGENCY_ISSUER,
            "aud": AGENCY_AUDIENCE,
            "sub": USER_PREFIX + record.id,
            "jti": record.id,
            "name": name,
            "agency": agency_code,
            "district": district,
            "iat": int(now.timestamp()),
            "exp": int(record.expires_at.timestamp()),
        }
        token = jwt.encode(claims, self._keys.private_key, algorithm=ALGORITHM, headers={"kid": self._keys.key_id})  # type: ignore[arg-type]
        return IssuedCredential(view, token)

    def list(self) -> list[CredentialView]:
        caller = require_role(Role.DISTRICT_ADMIN)
        with self._database.unit_of_work(caller.district) as uow:
            rows = uow.session.scalars(
                select(AgencyCredentialRecord)
                .where(AgencyCredentialRecord.tenant_id == caller.district)
                .order_by(AgencyCredentialRecord.agency_code, AgencyCredentialRecord.issued_at)
            )
            return [_view(row) for row in rows]

    def revoke(self, credential_id: str) -> CredentialView:
        caller = require_role(Role.DISTRICT_ADMIN)
        with self._database.unit_of_work(caller.district) as uow:
            record = uow.session.get(AgencyCredentialRecord, (caller.district, credential_id), with_for_update=True)
            if record is None:
                raise errors.NotFound("no such credential in this district")
            if record.revoked_at is None:
                record.revoked_at, record.revoked_by = self._now(), caller.user_id
            view = _view(record)
            uow.commit()
            return view

    # -- every call of an agency system --------------------------------------------------------------------

    def verify(self, token: str) -> Principal:
        public_key = self._keys.public_key(token)
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=[ALGORITHM],
                audience=AGENCY_AUDIENCE,
                issuer=AGENCY_ISSUER,
                leeway=10,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
            )
            credential_id = str(claims["jti"])
            district = str(claims["district"])
            agency = str(claims["agency"])
        except jwt.ExpiredSignatureError as exc:
            raise errors.Unauthenticated("credential expired") from exc
        except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
            raise errors.Unauthenticated("invalid agency credential") from exc
        if len(district) != 6 or not district.isdigit():
            raise errors.Unauthenticated("invalid agency credential")
        principal = Principal(
            user_id=USER_PREFIX + credential_id,
            display_name=str(claims.get("name", "")),
            role=Role.AGENCY_SYSTEM,
            tenant=district + "000",  # the district itself: an agency acts across its towns
            district=district,
            agency=agency,
            token=token,
        )
        if not self.still_valid(principal):
            raise errors.Unauthenticated("this credential was revoked")
        return principal

    def still_valid(self, principal: Principal) -> bool:
        """The credential behind an agency system's principal is neither revoked nor expired (open streams ask
        again every round)."""
        credential_id = principal.user_id.removeprefix(USER_PREFIX)
        with self._database.unit_of_work(principal.district) as uow:
            record = uow.session.get(AgencyCredentialRecord, (principal.district, credential_id))
            return (
                record is not None
                and record.revoked_at is None
                and record.agency_code == principal.agency
                and _aware(record.expires_at) > self._now()
            )


class AgencyTokenVerifier:
    """The agency API's verifier: agency credentials only (the gateway's tokens have another audience)."""

    def __init__(self, credentials: AgencyCredentials) -> None:
        self._credentials = credentials

    def verify(self, token: str) -> Principal:
        return self._credentials.verify(token)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _view(record: AgencyCredentialRecord) -> CredentialView:
    return CredentialView(
        record.id,
        record.agency_code,
        record.name,
        _aware(record.issued_at),
        record.issued_by,
        _aware(record.expires_at),
        _aware(record.revoked_at) if record.revoked_at else None,
        record.revoked_by or "",
    )
