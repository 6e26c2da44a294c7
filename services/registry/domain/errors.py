"""Domain errors of the registry.

Kept generic on purpose: the runtime maps each class to a transport code
(InvalidInput -> INVALID_ARGUMENT, NotFound -> NOT_FOUND, Conflict -> ALREADY_EXISTS or
FAILED_PRECONDITION, PermissionDenied -> PERMISSION_DENIED). Messages never contain an identity
number or any other personal data, because they end up in logs and in client responses.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """A value given by a caller is unacceptable; `field` names it, `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} not found: {key}")
        self.kind = kind
        self.key = key


class Conflict(DomainError):
    """The request contradicts the current state (duplicate, overlapping rule, wrong status)."""


class PermissionDenied(DomainError):
    """The caller may not do this."""
