"""Who is asking, per request: the signed-in user (session cookie or bearer token), CSRF, and the caller
the services see. Views use `login_required`, `current_user()` and `caller()`; nothing else reads `g`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, current_app, g, redirect, request, session, url_for
from opentelemetry import trace

from gateway.accounts import User
from gateway.bootstrap import Components
from gateway.clients import Caller
from platform_runtime.auth import Role
from platform_runtime.errors import Unauthenticated

SESSION_ID = "sid"
CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# A catalogue key (this module is below `gateway.i18n`): the error page shows it in the request's language.
FORM_EXPIRED = "表单已过期,请刷新后重试"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
F = TypeVar("F", bound=Callable[..., Any])


def components() -> Components:
    return cast(Components, current_app.extensions["gateway"])


def client_ip() -> str:
    # ProxyFix (configured with the number of trusted proxies) has already resolved X-Forwarded-For.
    return request.remote_addr or ""


def current_user() -> User:
    user: User | None = g.get("user")
    if user is None:
        abort(401)
    return user


def caller() -> Caller:
    """The signed-in user as the services see them (the client layer signs a token per service) and the browser's
    address."""
    return Caller(current_user().principal(), client_ip())


def load_user() -> None:
    """before_request: a bearer token (API clients) or the session cookie (browsers) names the user.

    Either way the user is read from the database, so a deactivated user or a changed role takes effect
    at the next request, and the tokens sent on to the services are made from it.
    """
    g.user = None
    g.bearer = False
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise Unauthenticated("expected 'Authorization: Bearer <token>'")
            g.user = components().users.active_user(components().tokens.user_id_of(token.strip()))
        except Unauthenticated:
            g.user = None
        if g.user is None:
            abort(401)
        g.bearer = True
    elif raw := session.get(SESSION_ID):
        g.user = components().users.resolve_session(raw)
        if g.user is None:
            session.pop(SESSION_ID, None)
    if g.user is not None:
        span = trace.get_current_span()
        span.set_attribute("minorprot.tenant", g.user.tenant)
        span.set_attribute("enduser.role", g.user.role.value)


def sign_in(user: User) -> None:
    # A new session and a new CSRF token at login, so nothing set before it (fixation) survives.
    session.clear()
    session[SESSION_ID] = components().users.open_session(user)
    session[CSRF_KEY] = secrets.token_urlsafe(32)


def sign_out() -> None:
    raw = session.get(SESSION_ID)
    if raw:
        components().users.close_session(raw)
    session.clear()


def csrf_token() -> str:
    """The token every POST form carries (a template global); kept in the signed session cookie."""
    token = session.get(CSRF_KEY)
    if not token:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return str(token)


def csrf_exempt(view: F) -> F:
    """For JSON endpoints that act on no cookie (token issuing, public API): there is nothing to forge."""
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


def check_csrf() -> None:
    """before_request: every unsafe request that a cookie could authenticate must carry the session's token."""
    if request.method in _SAFE_METHODS or g.get("bearer"):
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "csrf_exempt", False):
        return
    expected = session.get(CSRF_KEY, "")
    given = request.form.get(CSRF_FIELD, "") or request.headers.get(CSRF_HEADER, "")
    if not (expected and given and hmac.compare_digest(str(expected), given)):
        abort(400, description=FORM_EXPIRED)


def wants_json() -> bool:
    return request.path.startswith("/api/")


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            if wants_json():
                abort(401)
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def require_role(roles: frozenset[Role]) -> User:
    """The current user if their role is one of `roles`; 403 otherwise (the services check again)."""
    user = current_user()
    if user.role not in roles:
        abort(403)
    return user


def safe_next(target: str | None) -> str:
    """Only a path on this site: `next=https://elsewhere` must not turn the login page into a redirector."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("portal.home")
