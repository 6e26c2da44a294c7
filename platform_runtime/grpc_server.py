"""gRPC server bootstrap shared by every service.

Standard `grpc.health.v1` (flipped to NOT_SERVING on SIGTERM before a graceful stop), server reflection,
and one interceptor that authenticates the caller, puts the verified principal (and so the tenant) in
context, logs the call and maps domain errors to status codes. The caller never sees a stack trace.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

from platform_runtime import errors
from platform_runtime.auth import Principal, Verifier
from platform_runtime.request_checks import checked
from platform_runtime.settings import GrpcTls
from platform_runtime.supervisor import Supervisor, Worker
from platform_runtime.tenancy import acting_as

log = logging.getLogger(__name__)

STATUS_FOR_ERROR: list[tuple[type[errors.DomainError], grpc.StatusCode]] = [
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ConcurrentUpdate, grpc.StatusCode.ABORTED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
]


def status_for(error: errors.DomainError) -> grpc.StatusCode:
    for kind, code in STATUS_FOR_ERROR:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INVALID_ARGUMENT


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    for key, value in metadata:
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token:
                return token
    raise errors.Unauthenticated("missing bearer token")


class GuardInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Authentication, tenant context, request log and error mapping for every call, streaming or not."""

    def __init__(self, verifier: Verifier, public_methods: frozenset[str]) -> None:
        self._verifier = verifier
        self._public = public_methods

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        method: str = details.method
        if handler is None or method.startswith("/grpc."):
            return handler  # health and reflection are open
        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(self._single(handler.unary_unary, method), **serializers)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._single(handler.stream_unary, method), **serializers)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(self._streamed(handler.unary_stream, method), **serializers)
        return grpc.stream_stream_rpc_method_handler(self._streamed(handler.stream_stream, method), **serializers)

    def _caller(self, method: str, context: grpc.ServicerContext) -> Principal | None:
        if method in self._public:
            return None
        principal = self._verifier.verify(bearer_token(context.invocation_metadata()))
        span = trace.get_current_span()
        span.set_attribute("minorprot.tenant", principal.tenant)
        span.set_attribute("enduser.role", principal.role.value)
        return principal

    def _single(self, behavior: Callable[[Any, Any], Any], method: str) -> Callable[[Any, Any], Any]:
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            with _CallRecord(method, context) as call:
                call.principal = self._caller(method, context)
                request = checked(request)
                with acting_as(call.principal):
                    return behavior(request, context)
            context.abort(call.code, call.message)

        return guarded

    def _streamed(self, behavior: Callable[[Any, Any], Iterator[Any]], method: str) -> Callable[[Any, Any], Any]:
        def guarded(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with _CallRecord(method, context) as call:
                call.principal = self._caller(method, context)
                request = checked(request)
                with acting_as(call.principal):
                    yield from behavior(request, context)
                return
            context.abort(call.code, call.message)

        return guarded


class _CallRecord:
    """Maps what a call raised to a status (never a stack trace to the caller) and logs the call once."""

    def __init__(self, method: str, context: grpc.ServicerContext) -> None:
        self.method = method
        self.context = context
        self.principal: Principal | None = None
        self.code = grpc.StatusCode.OK
        self.message = ""

    def __enter__(self) -> _CallRecord:
        self.started = time.monotonic()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: object) -> bool:
        if isinstance(error, errors.DomainError):
            self.code, self.message = status_for(error), str(error)
            if isinstance(error, errors.InvalidInput):
                violations = [{"field": v.field, "message": v.message} for v in error.violations]
                self.context.set_trailing_metadata(
                    (("x-field-violations-bin", json.dumps(violations, ensure_ascii=False).encode()),)
                )
        elif error is not None and not isinstance(error, GeneratorExit):
            if isinstance(error, Exception) and not _aborted(self.context):
                log.exception("unhandled error in %s", self.method, exc_info=error)
                trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
                self.code, self.message = grpc.StatusCode.INTERNAL, f"internal error (trace {trace_id})"
            else:
                self._log()
                return False  # an abort by the servicer itself, or the interpreter stopping: let it through
        self._log()
        return error is not None and not isinstance(error, GeneratorExit)

    def _log(self) -> None:
        principal = self.principal
        log.info(
            "grpc %s %s %.1fms tenant=%s user=%s",
            self.method,
            self.code.name,
            (time.monotonic() - self.started) * 1000,
            principal.tenant if principal else "-",
            principal.user_id if principal else "-",
        )


def _aborted(context: grpc.ServicerContext) -> bool:
    # context.abort() raises a bare Exception after setting the status: that status stands.
    code = context.code()
    return code is not None and code != grpc.StatusCode.OK


@dataclass
class GrpcServer:
    """A running service: its gRPC server plus the supervised background workers (relay, consumers, periodic
    work) it owns. Health is SERVING while every worker is well, NOT_SERVING while one has been down too long
    and from the moment the process is told to stop."""

    server: grpc.Server
    health: health.HealthServicer
    service_names: list[str]
    port: int
    drain_seconds: float = 0.0
    # The whole stop (drain, in-flight calls, workers, clean-up) fits in this, inside Kubernetes' grace period.
    shutdown_seconds: float = 25.0
    workers: list[Worker] = field(default_factory=list)
    worker_down_seconds: float = 120.0
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    supervisor: Supervisor | None = None
    # The plaintext server of health alone beside a TLS one (GRPC_HEALTH_PORT), for the kubelet's probes.
    health_server: grpc.Server | None = None
    _stopping: bool = False

    def start(self) -> None:
        self.server.start()
        if self.health_server is not None:
            self.health_server.start()
        self.supervisor = Supervisor(
            self.workers, down_after=self.worker_down_seconds, on_health_change=self._set_health
        )
        self.supervisor.start()
        self._set_health(True)
        log.info("serving on port %d", self.port)

    def _set_health(self, serving: bool) -> None:
        if self._stopping:
            return  # shutting down: NOT_SERVING stays
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self.service_names]:
            self.health.set(name, status)

    def stop(self, grace: float | None = None) -> None:
        """Readiness first, so load balancers stop sending new calls; then in-flight calls finish, then the
        workers stop (the relay drains what is committed). Never longer than `shutdown_seconds` in all."""
        deadline = time.monotonic() + self.shutdown_seconds
        self._stopping = True
        self.health.enter_graceful_shutdown()
        time.sleep(min(self.drain_seconds, self.shutdown_seconds / 3))
        remaining = deadline - time.monotonic()
        calls_grace = min(grace if grace is not None else 10.0, remaining / 2)
        self.server.stop(calls_grace).wait(calls_grace + 1)
        if self.health_server is not None:
            self.health_server.stop(0)
        if self.supervisor is not None:
            # Keep a little for the clean-up callbacks (flushing traces, closing pools).
            self.supervisor.stop(max(0.0, deadline - time.monotonic() - 2))
        for callback in self.on_stop:
            try:
                callback()
            except Exception:
                log.exception("clean-up at shutdown failed")

    def serve_until_signalled(self) -> None:
        done = threading.Event()

        def handle(signum: int, _frame: object) -> None:
            log.info("signal %d: draining", signum)
            done.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        self.start()
        done.wait()
        started = time.monotonic()
        self.stop()
        log.info("stopped in %.1fs", time.monotonic() - started)


def build_server(
    *,
    port: int,
    verifier: Verifier,
    register: Callable[[grpc.Server], list[str]],
    public_methods: frozenset[str] = frozenset(),
    max_workers: int = 16,
    bind_host: str = "[::]",
    tls: GrpcTls | None = None,
) -> GrpcServer:
    """`register` adds the service's servicers and returns their full service names. With `tls` holding a
    certificate the port serves TLS only, and `tls.health_port` (if set) serves the health service alone in
    plaintext: nothing but SERVING / NOT_SERVING goes unencrypted."""
    tls = tls or GrpcTls()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        interceptors=[GuardInterceptor(verifier, public_methods)],
    )
    names = register(server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    address = f"{bind_host}:{port}"
    if tls.certificate:
        credentials = grpc.ssl_server_credentials([(tls.private_key, tls.certificate)])
        bound = server.add_secure_port(address, credentials)
    else:
        bound = server.add_insecure_port(address)
    if bound == 0:
        raise RuntimeError(f"cannot bind gRPC port {port}")
    health_server = None
    if tls.certificate and tls.health_port:
        # The same servicer: both ports answer the same status, flipped together at shutdown.
        health_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
        if health_server.add_insecure_port(f"{bind_host}:{tls.health_port}") == 0:
            raise RuntimeError(f"cannot bind gRPC health port {tls.health_port}")
    return GrpcServer(
        server=server, health=health_servicer, service_names=names, port=bound, health_server=health_server
    )
