"""The identities the gateway acts as, and the access tokens it signs (it is the platform's only issuer for people).

The services never see a token meant for another: the gateway's gRPC client layer (gateway/clients.py) signs a
short-lived token per person and service (`ServiceTokens`, kept until near expiry). An API client gets a token
meant for the gateway alone (`for_user`), which it sends back to the gateway and which no service accepts.
"""

from __future__ import annotations

import uuid

from gateway.accounts import USER_ROLES, User
from platform_runtime.auth import GATEWAY, Keyring, Principal, Role, TokenIssuer, TokenVerifier
from platform_runtime.errors import Unauthenticated

# The life of a token the gateway sends to a service (kept and reused until a minute before it expires).
SERVICE_TOKEN_SECONDS = 5 * 60


def is_town_code(code: str) -> bool:
    return len(code) == 9 and code.isdigit()


class Tokens:
    def __init__(self, issuer: TokenIssuer, keyring: Keyring, user_token_seconds: int = 900) -> None:
        self._issuer = issuer
        self._verifier = TokenVerifier(keyring, GATEWAY)
        self.user_token_seconds = user_token_seconds

    def for_user(self, user: User) -> str:
        """The token `/api/v1/token` hands an API client: meant for the gateway, refused by every service."""
        return self._issuer.issue(user.principal(), GATEWAY, lifetime=self.user_token_seconds)

    @staticmethod
    def public_principal(town: str) -> Principal:
        # A new anonymous id each time: nothing links two public reports to one person.
        return Principal(
            user_id=f"public:{uuid.uuid4().hex}",
            display_name="public",
            role=Role.PUBLIC,
            tenant=town,
            district=town[:6],
        )

    @staticmethod
    def system_principal(town: str) -> Principal:
        """The gateway's own look-ups (the towns, the carrier's SMS replies)."""
        return Principal(
            user_id="service:gateway", display_name="gateway", role=Role.SYSTEM, tenant=town, district=town[:6]
        )

    def user_id_of(self, token: str) -> str:
        """The user a bearer token from `/api/v1/token` names; tokens of services and of nobody sign no one in."""
        principal = self._verifier.verify(token)
        if principal.role not in USER_ROLES:
            raise Unauthenticated("this token does not belong to a user")
        return principal.user_id
