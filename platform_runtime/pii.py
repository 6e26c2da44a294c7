"""Protection of identifying fields at rest: authenticated encryption and blind indexes.

Ciphertext is `kid.nonce.ciphertext` (urlsafe base64), AES-256-GCM with the tenant and field name as
associated data, so a value copied to another row or tenant does not decrypt. Keys rotate by putting a new
key first in the ring: new writes use it, old values still decrypt, and `reencrypt` moves them over.
A blind index is an HMAC-SHA256 of the normalised value: equality lookups without storing the value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FieldCipher:
    def __init__(self, keyring: dict[str, bytes]) -> None:
        if not keyring:
            raise ValueError("the keyring is empty")
        self._keys = {kid: AESGCM(key) for kid, key in keyring.items()}
        self._primary = next(iter(keyring))

    def encrypt(self, plaintext: str, *, tenant: str, field: str) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self._primary].encrypt(nonce, plaintext.encode(), f"{tenant}|{field}".encode())
        return f"{self._primary}.{_b64(nonce)}.{_b64(sealed)}"

    def decrypt(self, token: str, *, tenant: str, field: str) -> str:
        try:
            kid, nonce, sealed = token.split(".")
            key = self._keys[kid]
            return key.decrypt(_unb64(nonce), _unb64(sealed), f"{tenant}|{field}".encode()).decode()
        except (ValueError, KeyError, InvalidTag) as exc:
            raise ValueError("value cannot be decrypted with the configured keys") from exc

    def needs_rotation(self, token: str) -> bool:
        return not token.startswith(self._primary + ".")

    def reencrypt(self, token: str, *, tenant: str, field: str) -> str:
        return self.encrypt(self.decrypt(token, tenant=tenant, field=field), tenant=tenant, field=field)


class BlindIndex:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("blind index key must be at least 32 bytes")
        self._key = key

    def digest(self, value: str, *, field: str) -> str:
        # The field name is mixed in so equal values in different fields do not share an index value.
        return hmac.new(self._key, f"{field}|{value}".encode(), hashlib.sha256).hexdigest()


def person_key(identity_number: str, index: BlindIndex) -> str:
    """The key services share to know one person by (the registry's children, the benefits service's insurance
    roster): a keyed hash of the normalised identity number, 40 hex characters (160 bits, far beyond any
    collision among a district's children). The field name is the roster's, which used it first."""
    return index.digest(normalize_identity_number(identity_number), field="insurance_roster")[:40]


def normalize_identity_number(raw: str) -> str:
    """Canonical form: full-width characters folded (NFKC), all whitespace removed, `x` -> `X`.

    Every service normalises before checking or storing, so `１１０１…` typed on a Chinese keyboard and
    `1101…` are one number to the checks, the blind index and matching.
    """
    folded = unicodedata.normalize("NFKC", raw)
    return "".join(folded.split()).upper()


def mask_identity_number(number: str) -> str:
    """*****************X: only the last character, so the number cannot be completed.

    Callers also see the birth date, the sex and the town, which give the first 14 digits and the parity of
    the 17th; the three sequence digits are all that is left, and showing any of them (the old mask kept the
    last four) leaves a handful of candidates once the check character is computed. With only the check
    character shown, some 45 sequence numbers fit (services/registry/tests/unit/test_identity_mask.py counts them).
    """
    if len(number) < 10:
        return "*" * len(number)
    return "*" * (len(number) - 1) + number[-1]
