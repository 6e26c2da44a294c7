"""The TOTP arithmetic against the RFCs' own test vectors, and the rules on top of it (drift, replay)."""

from __future__ import annotations

import base64

import pytest

from gateway import second_factor
from platform_runtime.auth import Role

SEED = b"1234567890" * 7  # the RFCs' seeds: its first 20 (SHA-1), 32 (SHA-256) and 64 (SHA-512) bytes


def test_hotp_matches_the_rfc_4226_vectors() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
    assert [second_factor.hotp(SEED[:20], counter) for counter in range(10)] == expected


@pytest.mark.parametrize(
    ("unix_time", "sha1", "sha256", "sha512"),
    [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ],
)
def test_totp_matches_the_rfc_6238_vectors(unix_time: int, sha1: str, sha256: str, sha512: str) -> None:
    step = second_factor.step_at(unix_time)
    assert second_factor.hotp(SEED[:20], step, digits=8) == sha1
    assert second_factor.hotp(SEED[:32], step, digits=8, digest="sha256") == sha256
    assert second_factor.hotp(SEED[:64], step, digits=8, digest="sha512") == sha512
    # What authenticator apps show: six digits, the secret in base32.
    assert second_factor.code_at(base64.b32encode(SEED[:20]).decode(), unix_time) == sha1[-6:]


def test_a_code_is_accepted_one_step_either_side_and_only_after_the_last_one_used() -> None:
    secret, now = second_factor.new_secret(), 1_750_000_005.0
    step = second_factor.step_at(now)
    for offset in (-1, 0, 1):
        code = second_factor.hotp(second_factor.key_of(secret), step + offset)
        assert second_factor.matching_step(secret, code, now, 0) == step + offset
        # Replay: the step of a code already used, or any earlier one, is refused.
        assert second_factor.matching_step(secret, code, now, step + offset) is None
    too_old = second_factor.hotp(second_factor.key_of(secret), step - 2)
    assert second_factor.matching_step(secret, too_old, now, 0) is None
    assert second_factor.matching_step(secret, "12345", now, 0) is None
    assert second_factor.matching_step(secret, "abcdef", now, 0) is None


def test_the_enrolment_uri_and_qr_code_carry_the_secret() -> None:
    secret = second_factor.new_secret()
    uri = second_factor.provisioning_uri(secret, "caseworker")
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri and "period=30" in uri
    svg = second_factor.qr_svg(uri)
    assert svg.startswith("<svg") and "<path" in svg


def test_recovery_codes_are_random_and_hashed_loosely_typed() -> None:
    codes = second_factor.new_recovery_codes()
    assert len(set(codes)) == second_factor.RECOVERY_CODES
    assert all(second_factor.looks_like_recovery_code(code) for code in codes)
    assert second_factor.recovery_hash(codes[0]) == second_factor.recovery_hash(f" {codes[0].upper()} ")


def test_the_roles_that_read_case_files_or_decide_money_need_a_second_factor() -> None:
    from gateway import roles

    assert roles.CASE_FILE_READERS | roles.BENEFIT_RUNNERS <= second_factor.SECOND_FACTOR_ROLES
    assert not second_factor.required_for(Role.MANDATED_REPORTER)
    assert not second_factor.required_for(Role.AGENCY_OFFICER)
