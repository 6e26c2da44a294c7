"""The Flask application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, request
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

from gateway import bootstrap, errors, i18n, roles, security
from gateway.bootstrap import Components
from gateway.proxies import TrustedProxyFix
from gateway.settings import GatewaySettings, load_settings
from gateway.views import (
    api,
    auth,
    benefits,
    dashboard,
    health,
    notifications,
    portal,
    public,
    referrals,
    register,
    register_api,
    survey,
    town_admin,
)

SESSION_COOKIE = "minorprot_session"
log = logging.getLogger("gateway.http")


def _field_value(values: dict[str, Any], dotted: str) -> Any:
    """`child.name` looked up in the nested payload a form is refilled from."""
    group, _, name = dotted.partition(".")
    value = values.get(group, {} if name else "")
    return (value.get(name, "") if isinstance(value, dict) else "") if name else value


def _when(iso: str) -> str:
    """`2025-05-01T10:30+08:00` shown as `2025-05-01 10:30` (every time on screen is Beijing time)."""
    return iso[:16].replace("T", " ")


def _log_request(response: Response) -> Response:
    user = g.get("user")
    # Paths carry ids only; query strings and bodies (purposes, receipts, names) are never logged.
    log.info("http %s %s %d user=%s", request.method, request.path, response.status_code, user.user_id if user else "-")
    return response


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
    if g.get("user") is not None or request.path.startswith("/public/"):
        # Children's data and receipts must not stay in shared or proxy caches.
        response.headers["Cache-Control"] = "no-store"
    return response


class ServiceInteger(IntegerConverter):
    """`<int:...>` in a route: a number the services' int32 fields can take, else no such page (404), not the
    error protobuf raises for a year or batch of twenty digits."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(settings: GatewaySettings | None = None, components: Components | None = None) -> Flask:
    settings = settings or load_settings()
    components = components or bootstrap.build(settings)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.flask_secret_key,
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    if settings.proxy_hops:
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, settings.proxy_hops, settings.trusted_proxies)  # type: ignore[method-assign]
    app.extensions["gateway"] = components
    app.url_map.converters["int"] = ServiceInteger
    app.before_request(security.load_user)
    app.before_request(security.check_csrf)
    app.after_request(_security_headers)
    app.after_request(_log_request)
    app.jinja_env.filters["when"] = _when
    app.jinja_env.globals.update(
        csrf_token=security.csrf_token,
        field_value=_field_value,
        can_submit=roles.can_submit,
        roles=roles,
    )
    for blueprint in (
        health.bp,
        auth.bp,
        portal.bp,
        public.bp,
        api.bp,
        register.bp,
        register_api.bp,
        dashboard.bp,
        survey.bp,
        town_admin.bp,
        benefits.bp,
        notifications.bp,
        referrals.bp,
    ):
        app.register_blueprint(blueprint)
    i18n.install(app)
    errors.register(app)
    return app
