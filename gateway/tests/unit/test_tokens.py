import time

import pytest

from gateway.accounts import User
from gateway.tests.unit.conftest import KEYS
from gateway.tokens import PUBLIC_TOKEN_SECONDS, Tokens
from platform_runtime.auth import Role, TokenIssuer, TokenVerifier
from platform_runtime.errors import Unauthenticated

VERIFIER = TokenVerifier(KEYS[1])
TOKENS = Tokens(TokenIssuer(KEYS[0]), VERIFIER, user_token_seconds=600)
POLICE = User("u1", "police_officer", "孙警官", Role.AGENCY_OFFICER, "110111008", "110111", agency="police")


def test_a_user_token_carries_the_users_principal() -> None:
    principal = VERIFIER.verify(TOKENS.for_user(POLICE))
    assert (principal.user_id, principal.role, principal.tenant, principal.district, principal.agency) == (
        "u1",
        Role.AGENCY_OFFICER,
        "110111008",
        "110111",
        "police",
    )


def test_user_tokens_are_short_lived() -> None:
    import jwt

    claims = jwt.decode(TOKENS.for_user(POLICE), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600


def test_a_public_token_is_for_one_town_for_five_minutes_and_names_nobody() -> None:
    first, second = TOKENS.for_public("110111008"), TOKENS.for_public("110111008")
    principal = VERIFIER.verify(first)
    assert principal.role is Role.PUBLIC and principal.tenant == "110111008"
    assert principal.user_id != VERIFIER.verify(second).user_id
    import jwt

    claims = jwt.decode(first, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == PUBLIC_TOKEN_SECONDS == 300


def test_a_token_from_the_api_names_its_user() -> None:
    assert TOKENS.user_id_of(TOKENS.for_user(POLICE)) == "u1"


@pytest.mark.parametrize("token", [TOKENS.for_public("110111008"), TOKENS.for_system("110111008"), "garbage"])
def test_public_system_and_forged_tokens_sign_nobody_in(token: str) -> None:
    with pytest.raises(Unauthenticated):
        TOKENS.user_id_of(token)


def test_an_expired_token_signs_nobody_in() -> None:
    old = TokenIssuer(KEYS[0]).issue(POLICE.principal(), now=time.time() - 3600, lifetime=60)
    with pytest.raises(Unauthenticated):
        TOKENS.user_id_of(old)
