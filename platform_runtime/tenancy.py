"""Who is calling and for which town, carried in a context variable for the length of one call.

Set by the gRPC auth interceptor (from the verified token) or by the Kafka consumer (from the event's
tenant); read by the unit of work, which scopes every query and sets PostgreSQL's `app.tenant_id`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from platform_runtime.auth import Principal
from platform_runtime.errors import PermissionDenied, Unauthenticated

_principal: ContextVar[Principal | None] = ContextVar("principal", default=None)


def current_principal() -> Principal:
    principal = _principal.get()
    if principal is None:
        raise Unauthenticated("no authenticated caller")
    return principal


def optional_principal() -> Principal | None:
    return _principal.get()


@contextlib.contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    token = _principal.set(principal)
    try:
        yield
    finally:
        _principal.reset(token)


def require_role(*roles: str) -> Principal:
    principal = current_principal()
    if principal.role not in roles:
        raise PermissionDenied(f"role {principal.role} may not do this")
    return principal
