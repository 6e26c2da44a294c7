"""Tokens, field encryption and blind indexes."""

from __future__ import annotations

import os
import time

import pytest

from platform_runtime.auth import Principal, Role, TokenIssuer, TokenVerifier, generate_keypair
from platform_runtime.errors import Unauthenticated
from platform_runtime.pii import BlindIndex, FieldCipher, mask_identity_number

PRIVATE, PUBLIC = generate_keypair()
CASEWORKER = Principal("u1", "王社工", Role.CASEWORKER, "110111008", "110111")


def test_a_valid_token_carries_the_tenant_and_role() -> None:
    token = TokenIssuer(PRIVATE).issue(CASEWORKER)
    principal = TokenVerifier(PUBLIC).verify(token)
    assert (principal.tenant, principal.role, principal.token) == ("110111008", Role.CASEWORKER, token)


@pytest.mark.parametrize(
    "token",
    [
        TokenIssuer(PRIVATE).issue(CASEWORKER, now=1_000_000, lifetime=60),  # expired
        TokenIssuer(generate_keypair()[0]).issue(CASEWORKER),  # signed by someone else
        TokenIssuer(PRIVATE).issue(
            Principal("u", "u", Role.CASEWORKER, "110111008", "120000")
        ),  # town outside district
        "garbage",
    ],
)
def test_bad_tokens_are_unauthenticated(token: str) -> None:
    with pytest.raises(Unauthenticated):
        TokenVerifier(PUBLIC).verify(token)


def test_a_remembered_token_still_expires_and_a_refused_one_is_never_remembered() -> None:
    verifier = TokenVerifier(PUBLIC, leeway_seconds=0)
    token = TokenIssuer(PRIVATE).issue(CASEWORKER, lifetime=1)
    assert verifier.verify(token) is verifier.verify(token)  # the second from memory
    time.sleep(2.1)  # past `exp` (whole seconds) with no leeway
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(token)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            verifier.verify(forged)


def test_ciphertext_is_bound_to_its_tenant_and_field_and_keys_rotate() -> None:
    old, new = os.urandom(32), os.urandom(32)
    cipher = FieldCipher({"old": old})
    sealed = cipher.encrypt("110111201605121237", tenant="110111008", field="identity_number")
    assert "110111201605121237" not in sealed
    with pytest.raises(ValueError):
        cipher.decrypt(sealed, tenant="110111009", field="identity_number")  # copied to another town
    with pytest.raises(ValueError):
        cipher.decrypt(sealed, tenant="110111008", field="phone")  # copied to another field
    rotated = FieldCipher({"new": new, "old": old})
    assert rotated.decrypt(sealed, tenant="110111008", field="identity_number") == "110111201605121237"
    assert rotated.needs_rotation(sealed)
    moved = rotated.reencrypt(sealed, tenant="110111008", field="identity_number")
    assert moved.startswith("new.") and not rotated.needs_rotation(moved)


def test_blind_index_is_keyed_and_per_field() -> None:
    index = BlindIndex(os.urandom(32))
    assert index.digest("x", field="a") == index.digest("x", field="a")
    assert index.digest("x", field="a") != index.digest("x", field="b")
    assert BlindIndex(os.urandom(32)).digest("x", field="a") != index.digest("x", field="a")


def test_masking_keeps_only_the_last_character() -> None:
    assert mask_identity_number("110111201605121237") == "*****************7"
    assert mask_identity_number("11011120160512123X") == "*****************X"
    assert mask_identity_number("110111160512123") == "**************3"
    assert mask_identity_number("12345") == "*****"
