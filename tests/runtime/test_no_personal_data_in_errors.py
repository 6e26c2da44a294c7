"""Nothing personal leaves through an error's text or a span: SQL errors carry no bound values, spans no query."""

from __future__ import annotations

import pytest
from flask import Flask
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Column, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError

from gateway.tracing import path_only
from platform_runtime.db import make_engine

SECRET_NAME = "张小明"
SECRET_PHONE = "13912345678"


def test_a_database_error_names_no_bound_value(tmp_path: object) -> None:
    engine = make_engine("sqlite://")
    people = Table("people", MetaData(), Column("name", String, primary_key=True), Column("phone", String))
    people.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(people).values(name=SECRET_NAME, phone=SECRET_PHONE))
    with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
        connection.execute(insert(people).values(name=SECRET_NAME, phone=SECRET_PHONE))
    text = str(caught.value)
    assert "UNIQUE" in text  # the error still says what went wrong
    assert SECRET_NAME not in text and SECRET_PHONE not in text


def test_gateway_spans_record_the_path_without_its_query() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Flask(__name__)

    @app.route("/public/lookup")
    def lookup() -> str:
        return "ok"

    FlaskInstrumentor().instrument_app(app, tracer_provider=provider, response_hook=path_only)  # type: ignore[no-untyped-call]
    try:
        assert app.test_client().get(f"/public/lookup?receipt=R-1&phone={SECRET_PHONE}").status_code == 200
    finally:
        FlaskInstrumentor().uninstrument_app(app)  # type: ignore[no-untyped-call]
    (span,) = exporter.get_finished_spans()
    recorded = " ".join(str(value) for value in (span.attributes or {}).values())
    assert "/public/lookup" in recorded
    assert SECRET_PHONE not in recorded and "receipt=" not in recorded
