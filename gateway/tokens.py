"""The access tokens the gateway signs (it is the platform's only issuer) and the ones it accepts back.

Every call to a service carries a fresh short-lived token for the person behind it; the public form
gets a five-minute `public` token for one town; the gateway's own look-ups use a one-minute `system` token.
"""

from __future__ import annotations

import uuid

from gateway.accounts import USER_ROLES, User
from platform_runtime.auth import Principal, Role, TokenIssuer, TokenVerifier
from platform_runtime.errors import Unauthenticated

PUBLIC_TOKEN_SECONDS = 5 * 60
SYSTEM_TOKEN_SECONDS = 60


def is_town_code(code: str) -> bool:
    return len(code) == 9 and code.isdigit()


class Tokens:
    def __init__(self, issuer: TokenIssuer, verifier: TokenVerifier, user_token_seconds: int = 900) -> None:
        self._issuer = issuer
        self._verifier = verifier
        self.user_token_seconds = user_token_seconds

    def for_user(self, user: User) -> str:
        return self._issuer.issue(user.principal(), lifetime=self.user_token_seconds)

    def for_public(self, town: str) -> str:
        # A new anonymous id each time: nothing links two public reports to one person.
        principal = Principal(
            user_id=f"public:{uuid.uuid4().hex}",
            display_name="public",
            role=Role.PUBLIC,
            tenant=town,
            district=town[:6],
        )
        return self._issuer.issue(principal, lifetime=PUBLIC_TOKEN_SECONDS)

    def for_system(self, town: str) -> str:
        principal = Principal(
            user_id="service:gateway", display_name="gateway", role=Role.SYSTEM, tenant=town, district=town[:6]
        )
        return self._issuer.issue(principal, lifetime=SYSTEM_TOKEN_SECONDS)

    def user_id_of(self, token: str) -> str:
        """The user a bearer token from `/api/v1/token` names; public and system tokens never sign anyone in."""
        principal = self._verifier.verify(token)
        if principal.role not in USER_ROLES:
            raise Unauthenticated("this token does not belong to a user")
        return principal.user_id
