"""Tokens, field encryption and blind indexes."""

from __future__ import annotations

import os
import time

import pytest

from platform_runtime.auth import (
    Keyring,
    Principal,
    Role,
    TokenIssuer,
    TokenVerifier,
    generate_keypair,
    workload_principal,
)
from platform_runtime.errors import Unauthenticated
from platform_runtime.pii import BlindIndex, FieldCipher, mask_identity_number

PRIVATE, PUBLIC = generate_keypair()
REPORTING_PRIVATE, REPORTING_PUBLIC = generate_keypair()
ISSUER = TokenIssuer({"gateway-1": PRIVATE})
KEYRING = Keyring({"gateway-1": PUBLIC, "reporting-1": REPORTING_PUBLIC})
CASEWORKER = Principal("u1", "王社工", Role.CASEWORKER, "110111008", "110111")


def verifier(service: str = "registry", keyring: Keyring = KEYRING, leeway: int = 10) -> TokenVerifier:
    return TokenVerifier(keyring, service, leeway_seconds=leeway)


def test_a_valid_token_carries_the_tenant_and_role() -> None:
    token = ISSUER.issue(CASEWORKER, "registry")
    principal = verifier().verify(token)
    assert (principal.tenant, principal.role, principal.token) == ("110111008", Role.CASEWORKER, token)


def test_a_token_is_accepted_by_the_one_service_it_names() -> None:
    token = ISSUER.issue(CASEWORKER, "registry")
    for other in ("reporting", "referral", "benefits", "notify", "gateway"):
        with pytest.raises(Unauthenticated):
            verifier(other).verify(token)


@pytest.mark.parametrize(
    "token",
    [
        ISSUER.issue(CASEWORKER, "registry", now=1_000_000, lifetime=60),  # expired
        TokenIssuer({"gateway-1": generate_keypair()[0]}).issue(CASEWORKER, "registry"),  # someone else's key, our kid
        TokenIssuer({"gateway-9": PRIVATE}).issue(CASEWORKER, "registry"),  # a key id not in the keyring
        ISSUER.issue(Principal("u", "u", Role.CASEWORKER, "110111008", "120000"), "registry"),  # town outside district
        "garbage",
    ],
)
def test_bad_tokens_are_unauthenticated(token: str) -> None:
    with pytest.raises(Unauthenticated):
        verifier().verify(token)


def test_a_service_key_speaks_only_for_that_service() -> None:
    reporting = TokenIssuer({"reporting-1": REPORTING_PRIVATE})
    as_itself = verifier().verify(reporting.issue(workload_principal("reporting", "110111008"), "registry"))
    assert (as_itself.user_id, as_itself.role, as_itself.workload) == ("service:reporting", Role.SYSTEM, "reporting")
    for pretended in (CASEWORKER, workload_principal("notify", "110111008")):
        with pytest.raises(Unauthenticated, match="signs only for reporting"):
            verifier().verify(reporting.issue(pretended, "registry"))


def test_rotation_a_new_key_is_added_used_and_the_old_one_retired() -> None:
    new_private, new_public = generate_keypair()
    old_token = ISSUER.issue(CASEWORKER, "registry")
    # 1. Every service gets the new public key beside the old: both verify.
    both = Keyring({"gateway-1": PUBLIC, "gateway-2": new_public})
    new_token = TokenIssuer({"gateway-2": new_private}).issue(CASEWORKER, "registry")
    assert verifier(keyring=both).verify(old_token).user_id == verifier(keyring=both).verify(new_token).user_id
    # 2. Before the new key is in a service's keyring, its tokens are refused there (so it goes in first).
    with pytest.raises(Unauthenticated, match="unknown key"):
        verifier().verify(new_token)
    # 3. The old key retired: what it signed is refused, the new key's tokens still pass.
    only_new = Keyring({"gateway-2": new_public})
    with pytest.raises(Unauthenticated, match="unknown key"):
        verifier(keyring=only_new).verify(old_token)
    assert verifier(keyring=only_new).verify(new_token).user_id == "u1"


def test_a_remembered_token_still_expires_and_a_refused_one_is_never_remembered() -> None:
    checker = verifier(leeway=0)
    token = ISSUER.issue(CASEWORKER, "registry", lifetime=1)
    assert checker.verify(token) is checker.verify(token)  # the second from memory
    time.sleep(2.1)  # past `exp` (whole seconds) with no leeway
    with pytest.raises(Unauthenticated, match="expired"):
        checker.verify(token)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            checker.verify(forged)


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
