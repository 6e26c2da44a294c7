"""Reporting with the registry and notify beside it, for the integration tests of tests/integration/test_reporting_*.

All three run in the test process over real loopback gRPC, on fresh PostgreSQL databases (app, owner and
relay roles) and on Kafka topics of their own (a prefix), so their consumers see only this stack's events.
Reporting runs as its `serve` command composes it (deadline checker included) on the test's clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc
from minorprot.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from sqlalchemy import create_engine, select, text

from platform_runtime.auth import Role
from platform_runtime.events import unpack
from platform_runtime.grpc_server import GrpcServer
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, KafkaSettings
from services.reporting.adapters.orm import metadata
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, Secrets, isolated_kafka_env
from tests.support.services import Running, bearer, migrated_database, reporting_keys, service_env

T = TypeVar("T")
M = TypeVar("M", bound=Message)


@dataclass
class Clock:
    """Reporting's clock, moved by the test (the deadline checker reads it from its own thread)."""

    current: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)


@dataclass
class Stack:
    registry: Running
    reporting: Running
    notify: Running
    secrets: Secrets
    clock: Clock
    channels: dict[str, grpc.Channel]

    def reporting_stub(self) -> reporting_pb2_grpc.ReportingServiceStub:
        return reporting_pb2_grpc.ReportingServiceStub(self.channels["reporting"])

    def registry_stub(self) -> registry_pb2_grpc.RegistryServiceStub:
        return registry_pb2_grpc.RegistryServiceStub(self.channels["registry"])

    def auth(
        self, role: Role, tenant: str = PILOT_TENANT, audience: str = "reporting", user: str = "", agency: str = ""
    ) -> tuple[tuple[str, str], ...]:
        return bearer(self.secrets.token(tenant, role, user, audience=audience, agency=agency))

    def events(self, kind: type[M], report_id: str = "", tenant: str = PILOT_TENANT) -> list[M]:
        """Reporting's outbox events of one type (about one report), oldest first, read as the owner role."""
        outbox = metadata.tables["outbox"]
        engine = create_engine(self.reporting.database.owner_url)
        try:
            with engine.begin() as connection:
                connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
                envelopes = connection.execute(select(outbox.c.envelope).order_by(outbox.c.id)).scalars().all()
        finally:
            engine.dispose()
        found = []
        for raw in envelopes:
            envelope = common_pb2.EventEnvelope.FromString(raw)
            if envelope.event_type == kind.DESCRIPTOR.full_name:
                event = unpack(envelope, kind)
                if not report_id or getattr(event, "report_id", "") == report_id:
                    found.append(event)
        return found


def refused(call: Callable[[], object]) -> grpc.StatusCode:
    """The status code of a call that must fail."""
    try:
        call()
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    raise AssertionError("the call succeeded")


@contextmanager
def _serving(server: GrpcServer, database: Any) -> Iterator[Running]:
    server.start()
    try:
        yield Running(server, database)
    finally:
        server.stop(grace=1)


@contextmanager
def running_stack(
    postgres_url: str,
    kafka: KafkaSettings,
    secrets: Secrets,
    notify_env: Mapping[str, str] | None = None,
    **reporting_env: str,
) -> Iterator[Stack]:
    from services.notify import bootstrap as notify_bootstrap
    from services.notify.settings import load_settings as notify_settings
    from services.registry import bootstrap as registry_bootstrap
    from services.registry.adapters.orm import APPEND_ONLY_TABLES
    from services.registry.settings import load_settings as registry_settings
    from services.reporting import bootstrap as reporting_bootstrap
    from services.reporting.settings import load_settings as reporting_settings

    isolated = isolated_kafka_env(kafka)
    clock = Clock()
    with ExitStack() as stack:
        db = migrated_database(postgres_url, "registry", APPEND_ONLY_TABLES)
        settings = registry_settings(EnvReader(service_env(db, kafka, secrets, **isolated)))
        registry = stack.enter_context(
            _serving(build(registry_bootstrap.definition(settings, periodic_work=False)), db)
        )

        db = migrated_database(postgres_url, "notify")
        settings_n = notify_settings(EnvReader(service_env(db, kafka, secrets, **isolated, **(notify_env or {}))))
        notify = stack.enter_context(_serving(build(notify_bootstrap.definition(settings_n)), db))

        db = migrated_database(postgres_url, "reporting")
        targets = {"REGISTRY_TARGET": registry.target, "NOTIFY_TARGET": notify.target}
        env = service_env(db, kafka, secrets, **(targets | isolated | reporting_keys(secrets) | reporting_env))
        server = build(reporting_bootstrap.definition(reporting_settings(EnvReader(env)), now=clock))
        reporting = stack.enter_context(_serving(server, db))

        channels = {
            name: stack.enter_context(r.channel())
            for name, r in (("registry", registry), ("reporting", reporting), ("notify", notify))
        }
        directory = registry_pb2_grpc.TenantDirectoryServiceStub(channels["registry"])
        for code, name in ((PILOT_TENANT, "良乡镇"), (OTHER_TENANT, "周口店地区")):
            directory.OnboardTenant(
                registry_pb2.OnboardTenantRequest(code=code, name=name, district_code=DISTRICT),
                metadata=bearer(secrets.token(code, Role.SYSTEM, audience="registry")),
            )
        yield Stack(registry, reporting, notify, secrets, clock, channels)


# -- requests ------------------------------------------------------------------------------------------------


def timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def report_request(channel: reporting_pb2.Channel.ValueType, **fields: Any) -> reporting_pb2.SubmitReportRequest:
    """A valid report through `channel` (with the reporter it needs); `fields` replace any part."""
    reporter = {
        reporting_pb2.CHANNEL_PUBLIC_ANONYMOUS: None,
        reporting_pb2.CHANNEL_MANDATED_REPORTER: reporting_pb2.Reporter(
            name="陈老师", phone="13900000004", organisation="良乡中心小学", role="teacher"
        ),
        reporting_pb2.CHANNEL_AGENCY_SHARE: reporting_pb2.Reporter(
            name="孙警官", phone="010-69351234", organisation="良乡派出所"
        ),
    }.get(channel, reporting_pb2.Reporter(name="赵女士", phone="13912345678"))
    values: dict[str, Any] = {
        "channel": channel,
        "child": reporting_pb2.ChildDescription(description="约8岁男孩,穿红色上衣"),
        "division_code": PILOT_TENANT + "201",
        "place_text": "良乡火车站南广场",
        "occurred_at": timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)),
        "situation_types": ["out_of_school"],
        "narrative": "孩子连续两周没有到校,家中无人应答。",
    }
    if reporter is not None:
        values["reporter"] = reporter
    return reporting_pb2.SubmitReportRequest(**(values | fields))
