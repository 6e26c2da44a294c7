"""Errors raised by the reporting domain: the platform's domain errors, which the gRPC layer maps to
status codes (InvalidInput -> INVALID_ARGUMENT with every field violation, RateLimited ->
RESOURCE_EXHAUSTED, ...). `Violation` is one problem with one field, `field` a dotted path."""

from platform_runtime.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from platform_runtime.errors import FieldViolation as Violation

__all__ = ["Conflict", "DomainError", "InvalidInput", "NotFound", "PermissionDenied", "RateLimited", "Violation"]
