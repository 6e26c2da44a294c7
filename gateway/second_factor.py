"""The second factor of staff sign-in: time-based one-time passwords (RFC 6238) and recovery codes.

TOTP as every authenticator app does it: HMAC-SHA1 over the 30-second step count, 6 digits, the shared
secret shown once as an otpauth:// URI and a QR code. A code is accepted for the step before and after
the server's (a phone's clock drifts), and only for a step later than the last one accepted for that
user, so a code seen over a shoulder cannot be used again. Recovery codes are random, shown once, kept
as hashes and deleted when used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import urllib.parse

import segno

from platform_runtime.auth import Role

# Roles that read case files (the registry audits each read) or decide money (benefit decisions and runs by
# the district officer, the benefit amounts by the district administrator): their users cannot sign in with
# a password alone. The one place this policy lives.
SECOND_FACTOR_ROLES = frozenset(
    {Role.CASEWORKER, Role.TOWN_ADMIN, Role.CHILD_DIRECTOR, Role.DISTRICT_OFFICER, Role.DISTRICT_ADMIN}
)

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
ISSUER = "未成年人保护平台 Minor protection"
SECRET_BYTES = 20  # 160 bits, the size RFC 4226 recommends for HMAC-SHA1
RECOVERY_CODES = 10


def required_for(role: Role) -> bool:
    return role in SECOND_FACTOR_ROLES


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode()


def key_of(secret: str) -> bytes:
    return base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226: the HMAC of the counter, dynamically truncated to `digits` decimal digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_at(unix_time: float) -> int:
    return int(unix_time // STEP_SECONDS)


def code_at(secret: str, unix_time: float) -> str:
    return hotp(key_of(secret), step_at(unix_time))


def matching_step(secret: str, code: str, unix_time: float, last_used_step: int) -> int | None:
    """The step `code` belongs to, if it is current (within the drift) and later than the last one used."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = step_at(unix_time)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if step > last_used_step and hmac.compare_digest(hotp(key_of(secret), step), code):
            return step
    return None


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI authenticator apps read (the de facto Key Uri Format)."""
    label = urllib.parse.quote(f"{ISSUER}:{username}")
    query = urllib.parse.urlencode(
        {"secret": secret, "issuer": ISSUER, "algorithm": "SHA1", "digits": DIGITS, "period": STEP_SECONDS},
        quote_via=urllib.parse.quote,
    )
    return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code, drawn here: no image service ever sees the secret."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, title="otpauth"))


def new_recovery_codes() -> list[str]:
    """Ten codes of 10 base32 characters (50 bits each), grouped for reading: `abcde-fghij`."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:10]
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_hash(code: str) -> str:
    """Recovery codes are random with 50 bits, so a plain SHA-256 suffices (no password to stretch)."""
    normalised = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(normalised.encode()).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    return len(code.strip().replace("-", "").replace(" ", "")) == 10


def demo_secret(demo_password: str) -> str:
    """The demo accounts' secret (make up and the tests only, never a real user's): derived from the
    machine's generated demo password, so whoever has the password can compute the codes."""
    digest = hmac.new(demo_password.encode(), b"minorprot demo second factor", hashlib.sha256).digest()
    return base64.b32encode(digest[:SECRET_BYTES]).decode()
