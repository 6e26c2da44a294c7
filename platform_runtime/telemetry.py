"""OpenTelemetry set-up from the standard OTEL_* variables, with the official instrumentations.

`OTEL_SERVICE_NAME`, `OTEL_TRACES_EXPORTER` (otlp | console | none), `OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_BSP_SCHEDULE_DELAY`, `OTEL_SDK_DISABLED` are read by the SDK itself; nothing home-made.
Logs carry the trace id, span id and tenant of the call that wrote them.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from sqlalchemy import Engine

from platform_runtime.tenancy import optional_principal

_provider: TracerProvider | None = None


def _exporter() -> SpanExporter | None:
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER={kind} is not supported (otlp, console, none)")


def setup_tracing(service_name: str) -> TracerProvider:
    """Install the tracer provider once per process and instrument gRPC (server and client)."""
    global _provider
    if _provider is not None:
        return _provider
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    exporter = None if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true" else _exporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient, GrpcInstrumentorServer

    GrpcInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
    GrpcInstrumentorClient().instrument()  # type: ignore[no-untyped-call]
    _provider = provider
    return provider


def instrument_engine(engine: Engine) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=False)


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.shutdown()


class TraceContextFilter(logging.Filter):
    """Adds trace_id, span_id and tenant to every record so a log line leads to its trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else "-"
        record.span_id = format(context.span_id, "016x") if context.is_valid else "-"
        principal = optional_principal()
        record.tenant = principal.tenant if principal else "-"
        return True


def setup_logging(level: str, service_name: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s %(levelname)s {service_name} %(name)s "
            "trace_id=%(trace_id)s span_id=%(span_id)s tenant=%(tenant)s %(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
