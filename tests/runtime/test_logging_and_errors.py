"""Log lines carry the trace and the tenant; domain errors map to gRPC status codes."""

from __future__ import annotations

import logging

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.grpc_server import status_for
from platform_runtime.telemetry import TraceContextFilter
from platform_runtime.tenancy import acting_as


def test_a_log_record_carries_trace_span_and_tenant() -> None:
    tracer = TracerProvider().get_tracer("test")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with (
        tracer.start_as_current_span("step") as span,
        acting_as(Principal("u", "u", Role.CASEWORKER, "110111008", "110111")),
    ):
        assert TraceContextFilter().filter(record)
    assert getattr(record, "trace_id") == format(span.get_span_context().trace_id, "032x")  # noqa: B009
    assert getattr(record, "span_id") == format(span.get_span_context().span_id, "016x")  # noqa: B009
    assert getattr(record, "tenant") == "110111008"  # noqa: B009


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidInput.single("name", "is required"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.NotFound("no such child"), grpc.StatusCode.NOT_FOUND),
        (errors.Conflict("already closed"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.ConcurrentUpdate("changed meanwhile"), grpc.StatusCode.ABORTED),
        (errors.PermissionDenied("no"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.Unauthenticated("no token"), grpc.StatusCode.UNAUTHENTICATED),
        (errors.RateLimited(3), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
def test_domain_errors_map_to_status_codes(error: errors.DomainError, code: grpc.StatusCode) -> None:
    assert status_for(error) is code
