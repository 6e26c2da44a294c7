import time

import jwt
import pytest

from gateway.accounts import User
from gateway.tests.unit.conftest import KEY_ID, KEYS
from gateway.tokens import SERVICE_TOKEN_SECONDS, Tokens
from platform_runtime.auth import Keyring, Role, ServiceTokens, TokenIssuer, TokenVerifier
from platform_runtime.errors import Unauthenticated

KEYRING = Keyring({KEY_ID: KEYS[1]})
ISSUER = TokenIssuer({KEY_ID: KEYS[0]})
TOKENS = Tokens(ISSUER, KEYRING, user_token_seconds=600)
POLICE = User("u1", "police_officer", "孙警官", Role.AGENCY_OFFICER, "110111008", "110111", agency="police")


def test_an_api_token_carries_the_users_principal_and_is_meant_for_the_gateway_only() -> None:
    token = TOKENS.for_user(POLICE)
    principal = TokenVerifier(KEYRING, "gateway").verify(token)
    assert (principal.user_id, principal.role, principal.tenant, principal.district, principal.agency) == (
        "u1",
        Role.AGENCY_OFFICER,
        "110111008",
        "110111",
        "police",
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600
    assert jwt.get_unverified_header(token)["kid"] == KEY_ID
    for service in ("registry", "reporting", "referral", "benefits", "notify"):
        with pytest.raises(Unauthenticated):
            TokenVerifier(KEYRING, service).verify(token)


def test_a_service_token_is_for_one_service_short_lived_and_reused_until_near_expiry() -> None:
    tokens = ServiceTokens(ISSUER, SERVICE_TOKEN_SECONDS)
    principal = POLICE.principal()
    for_reporting = tokens.token(principal, "reporting")
    assert tokens.token(principal, "reporting") == for_reporting  # no second signature
    assert TokenVerifier(KEYRING, "reporting").verify(for_reporting).user_id == "u1"
    with pytest.raises(Unauthenticated):
        TokenVerifier(KEYRING, "registry").verify(for_reporting)
    claims = jwt.decode(for_reporting, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == SERVICE_TOKEN_SECONDS
    assert tokens.token(principal, "registry") != for_reporting

    soon = ServiceTokens(ISSUER, lifetime_seconds=61, renew_before_seconds=60)
    first = soon.token(principal, "registry")
    time.sleep(1.1)
    assert soon.token(principal, "registry") != first  # within a minute of expiring: a new one


def test_a_public_principal_is_for_one_town_and_names_nobody() -> None:
    first, second = TOKENS.public_principal("110111008"), TOKENS.public_principal("110111008")
    assert first.role is Role.PUBLIC and first.tenant == "110111008"
    assert first.user_id != second.user_id


def test_a_token_from_the_api_names_its_user() -> None:
    assert TOKENS.user_id_of(TOKENS.for_user(POLICE)) == "u1"


@pytest.mark.parametrize(
    "token",
    [
        ISSUER.issue(TOKENS.public_principal("110111008"), "gateway"),
        ISSUER.issue(TOKENS.system_principal("110111008"), "gateway"),
        ISSUER.issue(POLICE.principal(), "reporting"),  # a token for a service is no sign-in
        "garbage",
    ],
)
def test_public_system_service_and_forged_tokens_sign_nobody_in(token: str) -> None:
    with pytest.raises(Unauthenticated):
        TOKENS.user_id_of(token)


def test_an_expired_token_signs_nobody_in() -> None:
    old = ISSUER.issue(POLICE.principal(), "gateway", now=time.time() - 3600, lifetime=60)
    with pytest.raises(Unauthenticated):
        TOKENS.user_id_of(old)
