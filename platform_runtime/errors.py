"""Domain errors shared by every service; the gRPC layer maps each kind to one status code.

Domain code raises these (or subclasses); it never imports grpc. Messages are written for the caller:
they are returned as-is, so they must never contain data the caller may not see.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    field: str
    message: str


class DomainError(Exception):
    """Base of every error that is the caller's to fix (anything else is an internal error)."""


class InvalidInput(DomainError):
    def __init__(self, violations: list[FieldViolation] | str, field: str = "") -> None:
        if isinstance(violations, str):
            violations = [FieldViolation(field, violations)]
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.message}" if v.field else v.message for v in violations))


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    """The request is valid but the current state forbids it (FAILED_PRECONDITION)."""


class PermissionDenied(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class RateLimited(DomainError):
    pass
