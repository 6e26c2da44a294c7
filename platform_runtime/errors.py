"""Domain errors shared by every service; the gRPC layer maps each kind to one status code.

Domain code raises these (or subclasses); it never imports grpc. Messages are written for the caller:
they are returned as-is, so they must never contain data the caller may not see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    field: str
    message: str


class DomainError(Exception):
    """Base of every error that is the caller's to fix (anything else is an internal error)."""


class InvalidInput(DomainError):
    """Every problem with the input at once, field by field, so a form can show them all."""

    def __init__(self, violations: Iterable[FieldViolation] | str, field: str = "") -> None:
        if isinstance(violations, str):
            violations = [FieldViolation(field, violations)]
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        if not self.violations:
            raise ValueError("InvalidInput needs at least one violation")
        super().__init__("; ".join(f"{v.field}: {v.message}" if v.field else v.message for v in self.violations))

    @classmethod
    def single(cls, field: str, message: str) -> InvalidInput:
        return cls([FieldViolation(field, message)])


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    """The request is valid but the current state forbids it (FAILED_PRECONDITION)."""


class ConcurrentUpdate(DomainError):
    """Someone else changed the record between the caller's read and their change (ABORTED): the change
    was not applied; reload and try again. Raised instead of silently overwriting the other change."""


class PermissionDenied(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class RateLimited(DomainError):
    def __init__(self, retry_after_seconds: float) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"too many requests; retry after {retry_after_seconds:.0f} s")
