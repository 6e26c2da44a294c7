"""Password hashing with scrypt (standard library): salted, memory-hard, parameters stored in the hash.

Format: `scrypt$<log2 n>$<r>$<p>$<salt b64>$<key b64>`, so the cost can be raised later and old hashes
still verify (`needs_rehash` tells when to upgrade one at the next login).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from pathlib import Path

LOG2_N = 15  # n = 32768, r = 8: 32 MiB and ~0.1 s per hash, the OWASP minimum for scrypt
R = 8
P = 1
SALT_BYTES = 16
KEY_BYTES = 32
_MAXMEM = 256 * 1024 * 1024
# Long enough to resist guessing offline; passphrases welcome. The ceiling only bounds the hashing work.
MIN_LENGTH = 12
MAX_LENGTH = 128
_COMMON_PASSWORDS = Path(__file__).parent / "wordlists" / "common-passwords.txt"


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**log2_n, r=r, p=p, maxmem=_MAXMEM, dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("a password must not be empty")
    salt = os.urandom(SALT_BYTES)
    key = _derive(password, salt, LOG2_N, R, P)
    return "$".join(
        ["scrypt", str(LOG2_N), str(R), str(P), base64.b64encode(salt).decode(), base64.b64encode(key).decode()]
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, log2_n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        actual = _derive(password, base64.b64decode(salt), int(log2_n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(stored: str) -> bool:
    return not stored.startswith(f"scrypt${LOG2_N}${R}${P}$")


# Verified against when the username is unknown, so a miss costs as long as a wrong password.
DUMMY_HASH = "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


@functools.cache
def _common_passwords() -> frozenset[str]:
    lines = _COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def password_problems(password: str, username: str) -> list[str]:
    """Why a new password is refused (empty when it is acceptable): length, breached lists, the username."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"password must be at most {MAX_LENGTH} characters")
    folded = password.strip().lower()
    if folded in _common_passwords() or len(set(folded)) < 4:
        problems.append("password is too common (it appears in breached-password lists or repeats a few characters)")
    if username and username.lower() in folded:
        problems.append("password must not contain the username")
    return problems
