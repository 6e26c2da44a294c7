"""Where a RegisterChild call's time goes on the server: `python -m bench.registry_call_profile`.

Runs the registry in this process (as bench/registry_call.py does) and profiles each call's handler thread
with pyinstrument, from the guard interceptor inward (token check, tenant, the use case, the database and
the outbox), then prints the combined profile. Not part of `python -m bench`: it reads, it does not time.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any

import grpc
from pyinstrument import Profiler
from pyinstrument.session import Session
from sqlalchemy import Engine, event

from bench.registry_call import _request
from platform_runtime import grpc_server
from platform_runtime.auth import Role
from platform_runtime.telemetry import setup_tracing
from tests.support.infra import DISTRICT, PILOT_TENANT, Secrets, start_kafka, start_postgres
from tests.support.services import bearer, running_registry

CALLS = int(os.environ.get("BENCH_CALLS", "300"))
sessions: list[Session] = []


def _profiled(guard: Callable[..., Any]) -> Callable[..., Any]:
    original = guard

    def wrap(self: Any, behavior: Callable[[Any, Any], Any], method: str) -> Callable[[Any, Any], Any]:
        inner = original(self, behavior, method)

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            profiler = Profiler(interval=0.0001)
            profiler.start()
            try:
                return inner(request, context)
            finally:
                profiler.stop()
                if "RegisterChild" in method and profiler.last_session is not None:
                    sessions.append(profiler.last_session)

        return call

    return wrap


def _registry_engine() -> Engine:
    """The registry's engine (its app role's), found among live objects: the server does not expose it."""
    for candidate in gc.get_objects():
        if isinstance(candidate, Engine) and "registry" in str(candidate.url) and "_app" in str(candidate.url):
            return candidate
    raise RuntimeError("the registry's engine was not found")


def main() -> None:
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    setup_tracing("bench")
    grpc_server.GuardInterceptor._single = _profiled(grpc_server.GuardInterceptor._single)  # type: ignore[method-assign]
    secrets = Secrets.generate().for_audience("registry")
    from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc

    with running_registry(start_postgres(), start_kafka(), secrets) as registry:
        channel = registry.channel()
        registry_pb2_grpc.TenantDirectoryServiceStub(channel).OnboardTenant(
            registry_pb2.OnboardTenantRequest(code=PILOT_TENANT, name="良乡镇", district_code=DISTRICT),
            metadata=bearer(secrets.token(PILOT_TENANT, Role.SYSTEM)),
        )
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        metadata = bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER))
        for i in range(CALLS):
            stub.RegisterChild(_request(i), metadata=metadata)
        statements: list[str] = []

        def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(" ".join(statement.split())[:150])

        engine = _registry_engine()
        event.listen(engine, "before_cursor_execute", note)
        stub.RegisterChild(_request(CALLS), metadata=metadata)
        event.remove(engine, "before_cursor_execute", note)
        print(f"{len(statements)} statements in one RegisterChild:")
        for statement in statements:
            print("  ", statement)
        channel.close()
    combined = sessions[20]
    for session in sessions[21:]:
        combined = Session.combine(combined, session)
    profiler = Profiler()
    profiler._last_session = combined
    print(profiler.output_text(unicode=True, color=False, show_all=False, timeline=False))


if __name__ == "__main__":
    main()
