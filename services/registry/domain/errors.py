"""Domain errors of the registry: the platform's domain errors (mapped to gRPC codes by the runtime),
with the registry's constructors. Messages never contain an identity number or any other personal data,
because they end up in logs and in client responses."""

from __future__ import annotations

from platform_runtime import errors
from platform_runtime.errors import Conflict, DomainError, PermissionDenied

__all__ = ["Conflict", "DomainError", "InvalidInput", "NotFound", "PermissionDenied"]


class InvalidInput(errors.InvalidInput):
    """A value given by a caller is unacceptable; `field` names it, `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__([errors.FieldViolation(field, reason)])
        self.field = field
        self.reason = reason


class NotFound(errors.NotFound):
    """The thing asked for does not exist (or is not visible to the caller)."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} not found: {key}")
        self.kind = kind
        self.key = key
