"""A registry gRPC call through the whole runtime vs. a bare grpcio call plus the same insert.

Full: RegisterChild over loopback gRPC into the registry (token verification, tenant context, the guard
interceptor, tracing with a recording provider, SQLAlchemy unit of work with RLS, encryption, blind index,
match keys, case file, timeline and two outbox rows). Baseline: a bare grpcio unary call whose handler
inserts one row of the same child columns with the bare psycopg driver. The ratio is the price of the
platform's guarantees per call.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent import futures
from datetime import date

import grpc
import psycopg
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc

from bench.runner import Figure, Latencies, measure, print_figures
from platform_runtime.auth import Role
from platform_runtime.telemetry import setup_tracing
from tests.support.infra import DISTRICT, PILOT_TENANT, Secrets, start_kafka, start_postgres
from tests.support.services import bearer, running_registry

CALLS = int(os.environ.get("BENCH_CALLS", "300"))


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


def run() -> list[Figure]:
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    setup_tracing("bench")
    postgres_url = start_postgres()
    kafka = start_kafka()
    secrets = Secrets.generate()
    with running_registry(postgres_url, kafka, secrets) as registry:
        channel = registry.channel()
        directory = registry_pb2_grpc.TenantDirectoryServiceStub(channel)
        directory.OnboardTenant(
            registry_pb2.OnboardTenantRequest(code=PILOT_TENANT, name="良乡镇", district_code=DISTRICT),
            metadata=bearer(secrets.token(PILOT_TENANT, Role.SYSTEM)),
        )
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        metadata = bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER))
        cpu = time.process_time()
        full = measure(lambda i: stub.RegisterChild(_request(i), metadata=metadata), CALLS)
        full_cpu = (time.process_time() - cpu) * 1000 / (CALLS + 20)

        dsn = registry.database.owner_url.replace("postgresql+psycopg://", "postgresql://")
        server, port = _bare_server(dsn)
        bare_channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        bare_call = bare_channel.unary_unary(
            "/bare.Registry/Register",
            request_serializer=registry_pb2.RegisterChildRequest.SerializeToString,
            response_deserializer=registry_pb2.RegisterChildResponse.FromString,
        )
        cpu = time.process_time()
        bare = measure(lambda i: bare_call(_request(i)), CALLS)
        bare_cpu = (time.process_time() - cpu) * 1000 / (CALLS + 20)
        server.stop(0)
        channel.close()
    return _figures(full, bare, full_cpu, bare_cpu)


def _figures(full: Latencies, bare: Latencies, full_cpu: float, bare_cpu: float) -> list[Figure]:
    baseline = "bare grpcio + psycopg insert"
    return [
        Figure("RegisterChild p50 latency", full.p50, baseline, bare.p50, "ms"),
        Figure("RegisterChild p99 latency", full.p99, baseline, bare.p99, "ms"),
        Figure(
            "RegisterChild calls per second (1 client)", full.per_second, baseline, bare.per_second, "calls/s", True
        ),
        # Client and server share this process: its CPU per call moves less with the machine's other load.
        Figure("RegisterChild CPU per call (client+server)", full_cpu, baseline, bare_cpu, "ms"),
    ]


def main() -> None:
    print_figures(f"registry call through the full runtime ({CALLS} sequential calls)", run())


if __name__ == "__main__":
    main()
