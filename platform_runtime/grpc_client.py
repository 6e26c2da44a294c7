"""Channels to other services that carry the current caller's token (on-behalf-of), so the callee applies
the same authentication and tenant checks as for the original caller."""

from __future__ import annotations

from typing import Any

import grpc

from platform_runtime.tenancy import current_principal


class _ForwardCallerToken(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = list(details.metadata or [])
        metadata.append(("authorization", f"Bearer {current_principal().token}"))
        details = details._replace(metadata=metadata) if hasattr(details, "_replace") else _Details(details, metadata)
        return continuation(details, request)


class _Details(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(self, base: Any, metadata: list[tuple[str, str]]) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


def service_channel(target: str) -> grpc.Channel:
    # Inside the cluster the transport is secured by the mesh / NetworkPolicies; the token authenticates.
    return grpc.intercept_channel(grpc.insecure_channel(target), _ForwardCallerToken())
