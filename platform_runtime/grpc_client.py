"""Channels to other services whose every call carries a bearer token made for that service (its audience).

A service calling another on its own account uses `workload_channel`: a token naming the calling service, for
the town of the work at hand (the current principal's tenant), signed with the service's own key. The gateway
uses `bearer_channel` with the token of the person it acts for (gateway/clients.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from platform_runtime.auth import ServiceTokens, workload_principal
from platform_runtime.settings import GrpcTls
from platform_runtime.tenancy import current_principal


class _Bearer(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]
):
    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def _with_token(self, details: Any) -> Any:
        metadata = [(key, value) for key, value in details.metadata or [] if key != "authorization"]
        if token := self._token():  # "": an anonymous call (the few public methods)
            metadata.append(("authorization", f"Bearer {token}"))
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else _Details(details, metadata)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._with_token(details), requests)


class _Details(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(self, base: Any, metadata: list[tuple[str, str]]) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


def bearer_channel(target: str, token: Callable[[], str], tls: GrpcTls | None = None) -> grpc.Channel:
    """Every call carries `token()` (asked for at each call; the maker caches), none if it answers "".

    With `tls.ca` the channel is TLS and trusts only that CA, the target's host name checked against the
    certificate (the chart's Service names); without it plaintext, as the local stack and the tests run."""
    if tls is not None and tls.ca:
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=tls.ca))
    else:
        channel = grpc.insecure_channel(target)
    return grpc.intercept_channel(channel, _Bearer(token))


def workload_channel(
    target: str, tokens: ServiceTokens, service: str, target_service: str, tls: GrpcTls | None = None
) -> grpc.Channel:
    """Calls `target_service` as `service` itself, for the town of the current work."""

    def token() -> str:
        return tokens.token(workload_principal(service, current_principal().tenant), target_service)

    return bearer_channel(target, token, tls)
