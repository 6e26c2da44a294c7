"""How the agency credentials' keys are configured (ADR 0014): a signing key by id, or a bare PEM as the unnamed
key; earlier keys accepted by id; anything that could not sign or verify is a problem at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from platform_runtime.auth import generate_keypair, keys_json
from services.referral.service_layer.credentials import UNNAMED_KEY_ID, agency_keys_problem, agency_signing_key


def test_a_signing_key_is_read_by_id_inline_or_from_a_file_and_a_bare_pem_is_the_unnamed_key(tmp_path: Path) -> None:
    private, _ = generate_keypair()
    named = {"referral-agency-2027": private}
    assert agency_signing_key(keys_json(named)) == named
    (tmp_path / "named.json").write_text(keys_json(named), encoding="ascii")
    assert agency_signing_key(str(tmp_path / "named.json")) == named
    assert agency_signing_key(private) == {UNNAMED_KEY_ID: private.strip()}
    (tmp_path / "bare.pem").write_text(private, encoding="ascii")
    assert agency_signing_key(str(tmp_path / "bare.pem")) == {UNNAMED_KEY_ID: private.strip()}
    with pytest.raises(ValueError, match="must be '<component>-<label>'"):
        agency_signing_key(keys_json({"agency-2027": private}))


def test_keys_that_could_not_sign_or_verify_are_refused_at_start() -> None:
    (private, _), (_, old_public) = generate_keypair(), generate_keypair()
    signing = {"referral-agency-2027": private}
    assert agency_keys_problem(signing, {"referral-agency-2026": old_public}) is None
    assert "exactly one key" in str(agency_keys_problem(signing | {"referral-agency-x": private}, {}))
    assert "not one of referral's" in str(agency_keys_problem({"gateway-2027": private}, {}))
    assert "not one of referral's" in str(agency_keys_problem(signing, {"reporting-2026": old_public}))
    assert "not an Ed25519 public key" in str(
        agency_keys_problem(signing, {"referral-agency-2026": generate_rsa_public_pem()})
    )


def generate_rsa_public_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
