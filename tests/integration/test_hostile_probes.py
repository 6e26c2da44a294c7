"""Every gRPC method of every service, probed as an attacker or a careless client would: without a token, with
each role's token and an empty request, and with requests whose every field is hostile (NUL and control
characters, very long text, markup and SQL, negative and enormous numbers, unknown enum values, impossible
timestamps, another town's codes). Whatever the method, the answer is a deliberate status (never INTERNAL,
UNKNOWN or UNIMPLEMENTED) and its message carries no stack trace, SQL or driver text.

The five services run in this process over real loopback gRPC, on real PostgreSQL and Kafka (topics of their
own, so the garbage some calls accept never reaches another test's consumers).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc

from platform_runtime.auth import Role
from platform_runtime.grpc_server import GrpcServer
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, KafkaSettings
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, Secrets, isolated_kafka_env
from tests.support.services import bearer, migrated_database, reporting_keys, service_env

pytestmark = pytest.mark.integration

SERVICES = ("registry", "notify", "referral", "benefits", "reporting")  # reporting calls registry and notify
OPEN = {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
# A deliberate answer to a request that is wrong, not allowed or of no use; anything else is a defect.
DELIBERATE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
LEAKS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "SELECT ", "INSERT ", "UPDATE ", "(Background on")
ROLES_WITH_EVERY_VARIANT = (Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_ADMIN, Role.SYSTEM, Role.AGENCY_OFFICER)


@dataclass(frozen=True)
class Hostile:
    """How every field of a request is filled in one probe."""

    name: str
    text: str
    integer: int
    unsigned: int
    real: float


VARIANTS = (
    Hostile("nul-and-controls", "a\x00b\x1b[2J\u202e\x7f", -1, 0, float("nan")),
    Hostile("very-long", "长" * 20_000, 2**31 - 1, 2**32 - 1, float("inf")),
    Hostile(
        "markup-and-sql", "'; DROP TABLE children; -- <script>alert(1)</script> %s {0} ../../etc", -(2**31), 1, -1e308
    ),
    Hostile("other-town", OTHER_TENANT, 0, 0, 0.0),
    Hostile("whitespace", " \t\n ", -(2**31), 2**32 - 1, -0.0),
)
INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}
UINT = {
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_FIXED64,
}
REAL = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE}


def hostile_message(descriptor: Descriptor, variant: Hostile, depth: int = 0) -> Any:
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        value = hostile_value(field, variant, depth)
        if value is None:
            continue
        if field.is_repeated:
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                continue  # maps: none carries input the services act on
            target = getattr(message, field.name)
            for _ in range(3):
                target.append(value) if field.message_type is None else target.add().CopyFrom(value)
        elif field.message_type is not None:
            getattr(message, field.name).CopyFrom(value)
        else:
            setattr(message, field.name, value)
    return message


def hostile_value(field: FieldDescriptor, variant: Hostile, depth: int) -> Any:
    if field.message_type is not None:
        if depth >= 3:
            return None
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return message_factory.GetMessageClass(field.message_type)(
                seconds=253402300800 * (1 if variant.integer >= 0 else -1)
            )
        return hostile_message(field.message_type, variant, depth + 1)
    if field.type == FieldDescriptor.TYPE_STRING:
        return variant.text
    if field.type == FieldDescriptor.TYPE_BYTES:
        return variant.text.encode("utf-8", "surrogatepass")[:4096]
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type == FieldDescriptor.TYPE_ENUM:
        return 9999 if variant.integer >= 0 else -7  # open enums keep unknown numbers
    if field.type in REAL:
        return variant.real
    if field.type in UINT:
        return variant.unsigned
    if field.type in INT64:
        return variant.integer * (2**32 if variant.integer not in (0, 1) else 1)
    return variant.integer


@dataclass(frozen=True)
class Method:
    service: str  # which of ours serves it
    path: str  # /package.Service/Method
    descriptor: MethodDescriptor

    def call(self, channel: grpc.Channel, request: Any, metadata: Any) -> tuple[grpc.StatusCode, str]:
        output = message_factory.GetMessageClass(self.descriptor.output_type)
        try:
            if self.descriptor.server_streaming:
                replies = channel.unary_stream(self.path, response_deserializer=output.FromString)(
                    request.SerializeToString(), metadata=metadata, timeout=3
                )
                for _ in replies:
                    break
                replies.cancel()
            else:
                channel.unary_unary(self.path, response_deserializer=output.FromString)(
                    request.SerializeToString(), metadata=metadata, timeout=15
                )
        except grpc.RpcError as error:
            code = error.code()
            if self.descriptor.server_streaming and code in (
                grpc.StatusCode.CANCELLED,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ):
                return grpc.StatusCode.OK, ""  # a stream that waits for news: nothing wrong with it
            return code, error.details() or ""
        return grpc.StatusCode.OK, ""


def start(
    service: str,
    postgres_url: str,
    kafka: KafkaSettings,
    secrets: Secrets,
    isolated: dict[str, str],
    targets: dict[str, str],
) -> GrpcServer:
    bootstrap = importlib.import_module(f"services.{service}.bootstrap")
    settings_module = importlib.import_module(f"services.{service}.settings")
    extra = dict(isolated)
    if service == "reporting":
        extra |= {"REGISTRY_TARGET": targets["registry"], "NOTIFY_TARGET": targets["notify"], **reporting_keys(secrets)}
    env = service_env(migrated_database(postgres_url, service), kafka, secrets) | extra
    settings = settings_module.load_settings(EnvReader(env))
    options = {"periodic_work": False} if "periodic_work" in inspect.signature(bootstrap.definition).parameters else {}
    server = build(bootstrap.definition(settings, **options))
    server.start()
    return server


@pytest.fixture(scope="module")
def stack(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[dict[str, GrpcServer]]:
    isolated = isolated_kafka_env(kafka)
    servers: dict[str, GrpcServer] = {}
    try:
        for service in SERVICES:
            servers[service] = start(
                service, postgres_url, kafka, secrets, isolated, {s: f"127.0.0.1:{g.port}" for s, g in servers.items()}
            )
        with grpc.insecure_channel(f"127.0.0.1:{servers['registry'].port}") as channel:
            directory = registry_pb2_grpc.TenantDirectoryServiceStub(channel)
            for code, name in ((PILOT_TENANT, "良乡镇"), (OTHER_TENANT, "周口店地区")):
                directory.OnboardTenant(
                    registry_pb2.OnboardTenantRequest(code=code, name=name, district_code=DISTRICT),
                    metadata=bearer(secrets.token(code, Role.SYSTEM, audience="registry")),
                )
        yield servers
    finally:
        for server in servers.values():
            server.stop(grace=1)


def methods(servers: dict[str, GrpcServer]) -> list[Method]:
    pool = descriptor_pool.Default()
    found = []
    for service, server in servers.items():
        for name in server.service_names:
            if name in OPEN:
                continue
            for method in pool.FindServiceByName(name).methods:
                if not method.client_streaming:
                    found.append(Method(service, f"/{name}/{method.name}", method))
    return found


@contextmanager
def channels(servers: dict[str, GrpcServer]) -> Iterator[dict[str, grpc.Channel]]:
    with ExitStack() as opened:
        yield {s: opened.enter_context(grpc.insecure_channel(f"127.0.0.1:{g.port}")) for s, g in servers.items()}


def defect(code: grpc.StatusCode, message: str) -> str:
    if code not in DELIBERATE:
        return f"{code.name}: {message[:200]}"
    leaked = [marker for marker in LEAKS if marker in message]
    return f"{code.name} with {leaked} in its message: {message[:200]}" if leaked else ""


def test_every_method_refuses_a_caller_without_a_token(stack: dict[str, GrpcServer]) -> None:
    problems = []
    with channels(stack) as channel_of:
        for method in methods(stack):
            request = message_factory.GetMessageClass(method.descriptor.input_type)()
            code, message = method.call(channel_of[method.service], request, metadata=())
            public = method.path.endswith("/LookupReceipt")  # the public receipt lookup needs no token
            if not public and code is not grpc.StatusCode.UNAUTHENTICATED:
                problems.append(f"{method.path}: {code.name} without a token")
            elif public and (found := defect(code, message)):
                problems.append(f"{method.path}: {found}")
    assert not problems, "\n".join(problems)


def test_every_method_answers_hostile_requests_deliberately(stack: dict[str, GrpcServer], secrets: Secrets) -> None:
    problems: dict[str, str] = {}
    probes = 0
    with channels(stack) as channel_of:
        for method in methods(stack):
            audience = method.service
            for role in Role:
                metadata = bearer(
                    secrets.token(
                        PILOT_TENANT,
                        role,
                        audience=audience,
                        agency="police" if role in (Role.AGENCY_OFFICER, Role.AGENCY_SYSTEM) else "",
                    )
                )
                requests = [("empty", message_factory.GetMessageClass(method.descriptor.input_type)())]
                if role in ROLES_WITH_EVERY_VARIANT:
                    requests += [(v.name, hostile_message(method.descriptor.input_type, v)) for v in VARIANTS]
                for variant, request in requests:
                    probes += 1
                    code, message = method.call(channel_of[method.service], request, metadata)
                    if found := defect(code, message):
                        problems.setdefault(f"{method.path} as {role.value}, {variant}", found)
    print(f"hostile probes: {probes} calls, {len(methods(stack))} methods, {len(problems)} defects")
    assert not problems, "\n".join(f"{where}: {what}" for where, what in sorted(problems.items()))
