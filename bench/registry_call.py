"""A registry gRPC call through the whole runtime vs. a bare grpcio call plus the same insert.

Full: RegisterChild over loopback gRPC into the registry (token verification, tenant context, the guard
interceptor, tracing with a recording provider, SQLAlchemy unit of work with RLS, encryption, blind index,
match keys, case file, timeline and two outbox rows). Baseline: a bare grpcio unary call whose handler
inserts one row of the same child columns with the bare psycopg driver. The ratio is the price of the
platform's guarantees per call. Also the same call with the runtime's hot path as it was before issue #16
(`previous_hot_path`: no token cache, set_config in its own round trip), in blocks interleaved with the
others so that all three see the same load on a shared machine.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import grpc
import psycopg
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc
from sqlalchemy import Connection, event, text
from sqlalchemy.orm import Session

from bench.runner import Figure, Latencies, measure, print_figures
from platform_runtime import db
from platform_runtime.auth import Principal, Role, TokenVerifier
from platform_runtime.telemetry import setup_tracing
from tests.support.infra import DISTRICT, PILOT_TENANT, Secrets, start_kafka, start_postgres
from tests.support.services import bearer, running_registry

CALLS = int(os.environ.get("BENCH_CALLS", "300"))
BLOCK = 20  # calls of one variant before the next, so every variant sees the same load


def _bare_server(dsn: str) -> tuple[grpc.Server, int]:
    connection = psycopg.connect(dsn, autocommit=True)
    connection.execute(
        "CREATE TABLE IF NOT EXISTS bare_children (id text PRIMARY KEY, tenant_id text, legal_name text, sex text,"
        " birth_date date, created_at timestamptz DEFAULT now())"
    )

    def register(request: bytes, context: grpc.ServicerContext) -> bytes:
        child = registry_pb2.RegisterChildRequest.FromString(request)
        connection.execute(
            "INSERT INTO bare_children (id, tenant_id, legal_name, sex, birth_date) VALUES (%s, %s, %s, %s, %s)",
            (uuid.uuid4().hex, PILOT_TENANT, child.legal_name, "1", date(2016, 5, 1)),
        )
        return registry_pb2.RegisterChildResponse().SerializeToString()

    handler = grpc.method_handlers_generic_handler(
        "bare.Registry", {"Register": grpc.unary_unary_rpc_method_handler(register)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _request(i: int) -> registry_pb2.RegisterChildRequest:
    return registry_pb2.RegisterChildRequest(
        legal_name=f"测试{i:06d}",
        sex=common_pb2.SEX_MALE,
        birth_date=common_pb2.Date(year=2016, month=5, day=1),
        household_division_code=PILOT_TENANT,
    )


@contextmanager
def previous_hot_path() -> Iterator[None]:
    """The runtime's hot path as it was before issue #16: every token verified afresh, and the tenant guard's
    set_config in a round trip of its own after psycopg's BEGIN."""

    def verify_afresh(self: TokenVerifier, token: str) -> Principal:
        return self._verify(token)[0]

    def unpipelined_guard(session: Session, _transaction: Any, connection: Connection) -> None:
        connection.execute(
            text("SELECT set_config('app.tenant_id', :tenant, true), set_config('app.district', :district, true)"),
            {"tenant": session.info.get(db.TENANT_KEY, ""), "district": session.info.get(db.DISTRICT_KEY, "")},
        )

    cached = TokenVerifier.verify
    TokenVerifier.verify = verify_afresh  # type: ignore[method-assign]
    event.remove(Session, "after_begin", db._set_tenant_guard)
    event.listen(Session, "after_begin", unpipelined_guard)
    try:
        yield
    finally:
        event.remove(Session, "after_begin", unpipelined_guard)
        event.listen(Session, "after_begin", db._set_tenant_guard)
        TokenVerifier.verify = cached  # type: ignore[method-assign]


@dataclass
class Variant:
    """One way of making the call, measured in blocks interleaved with the others (same machine load)."""

    call: Callable[[int], object]
    around: Callable[[], AbstractContextManager[None]] = nullcontext
    samples: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0

    def block(self, start: int, count: int) -> None:
        with self.around():
            cpu = time.process_time()
            self.samples += measure(lambda i: self.call(start + i), count, warmup=0).samples_ms
            self.cpu_seconds += time.process_time() - cpu

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / len(self.samples)


def run() -> list[Figure]:
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    setup_tracing("bench")
    postgres_url = start_postgres()
    kafka = start_kafka()
    secrets = Secrets.generate().for_audience("registry")
    with running_registry(postgres_url, kafka, secrets) as registry:
        channel = registry.channel()
        directory = registry_pb2_grpc.TenantDirectoryServiceStub(channel)
        directory.OnboardTenant(
            registry_pb2.OnboardTenantRequest(code=PILOT_TENANT, name="良乡镇", district_code=DISTRICT),
            metadata=bearer(secrets.token(PILOT_TENANT, Role.SYSTEM)),
        )
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        metadata = bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER))
        dsn = registry.database.owner_url.replace("postgresql+psycopg://", "postgresql://")
        server, port = _bare_server(dsn)
        bare_channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        bare_call = bare_channel.unary_unary(
            "/bare.Registry/Register",
            request_serializer=registry_pb2.RegisterChildRequest.SerializeToString,
            response_deserializer=registry_pb2.RegisterChildResponse.FromString,
        )
        full = Variant(lambda i: stub.RegisterChild(_request(i), metadata=metadata))
        before = Variant(lambda i: stub.RegisterChild(_request(1_000_000 + i), metadata=metadata), previous_hot_path)
        bare = Variant(lambda i: bare_call(_request(i)))
        variants = (full, before, bare)
        for variant in variants:  # warm-up, not kept
            variant.block(-100, 20)
            variant.samples, variant.cpu_seconds = [], 0.0
        for start in range(0, CALLS, BLOCK):
            for variant in variants:
                variant.block(start, min(BLOCK, CALLS - start))
        server.stop(0)
        channel.close()
    return _figures(full, before, bare)


def _figures(full: Variant, before: Variant, bare: Variant) -> list[Figure]:
    baseline = "bare grpcio + psycopg insert"
    now, then, floor = Latencies(full.samples), Latencies(before.samples), Latencies(bare.samples)
    return [
        Figure("RegisterChild p50 latency", now.p50, baseline, floor.p50, "ms"),
        Figure("RegisterChild p99 latency", now.p99, baseline, floor.p99, "ms"),
        Figure(
            "RegisterChild calls per second (1 client)", now.per_second, baseline, floor.per_second, "calls/s", True
        ),
        # Client and server share this process: its CPU per call moves less with the machine's other load.
        Figure("RegisterChild CPU per call (client+server)", full.cpu_ms, baseline, bare.cpu_ms, "ms"),
        Figure("RegisterChild p50, this runtime", now.p50, "previous hot path, same run", then.p50, "ms"),
        Figure("RegisterChild p99, this runtime", now.p99, "previous hot path, same run", then.p99, "ms"),
        Figure(
            "RegisterChild CPU per call, this runtime", full.cpu_ms, "previous hot path, same run", before.cpu_ms, "ms"
        ),
    ]


def main() -> None:
    print_figures(f"registry call through the full runtime ({CALLS} sequential calls)", run())


if __name__ == "__main__":
    main()
