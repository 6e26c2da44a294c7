"""Every gRPC method of every service, probed as an attacker or a careless client would: without a token, with
each role's token and an empty request, and with requests whose every field is hostile (NUL and control
characters, very long text, markup and SQL, negative and enormous numbers, unknown enum values, impossible
timestamps). Whatever the method, the answer is a deliberate status (never INTERNAL,
UNKNOWN or UNIMPLEMENTED) and its message carries no stack trace, SQL or driver text. Then the other town's
real records (a registered child, a crisis report with its referrals, notifications and crisis chain) are
named by their ids in every id field of every method, as this town's caseworker and administrator: no answer
shows them and none of their rows changes.

The five services run in this process over real loopback gRPC, on real PostgreSQL and Kafka (topics of their
own, so the garbage some calls accept never reaches another test's consumers).
"""

from __future__ import annotations

import importlib
import inspect
import io
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import (
    casework_pb2,
    casework_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    survey_pb2,
    survey_pb2_grpc,
)
from minorprot.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from platform_runtime.auth import Role
from platform_runtime.grpc_server import GrpcServer
from platform_runtime.provision import ProvisionedDatabase
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, KafkaSettings
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, Secrets, isolated_kafka_env
from tests.support.services import bearer, migrated_database, reporting_keys, service_env
from tests.support.waiting import eventually

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
        code, message, _ = self.call_for_reply(channel, request, metadata)
        return code, message

    def call_for_reply(self, channel: grpc.Channel, request: Any, metadata: Any) -> tuple[grpc.StatusCode, str, bytes]:
        """(status, its message, the reply's bytes: every message of a stream, up to the first few)."""
        reply = b""
        try:
            if self.descriptor.server_streaming:
                replies = channel.unary_stream(self.path)(request.SerializeToString(), metadata=metadata, timeout=3)
                for count, part in enumerate(replies):
                    reply += part
                    if count >= 20:
                        break
                replies.cancel()
            else:
                reply = channel.unary_unary(self.path)(request.SerializeToString(), metadata=metadata, timeout=15)
        except grpc.RpcError as error:
            code = error.code()
            if self.descriptor.server_streaming and code in (
                grpc.StatusCode.CANCELLED,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ):
                return grpc.StatusCode.OK, "", reply  # a stream that waits for news: nothing wrong with it
            return code, error.details() or "", reply
        return grpc.StatusCode.OK, "", reply


@dataclass
class Probed:
    """The five services as they run for the probes, with their databases."""

    servers: dict[str, GrpcServer]
    databases: dict[str, ProvisionedDatabase]

    def channel(self, service: str) -> grpc.Channel:
        return grpc.insecure_channel(f"127.0.0.1:{self.servers[service].port}")


def start(service: str, env: dict[str, str], database: ProvisionedDatabase) -> GrpcServer:
    bootstrap = importlib.import_module(f"services.{service}.bootstrap")
    settings = importlib.import_module(f"services.{service}.settings").load_settings(EnvReader(env))
    options = {"periodic_work": False} if "periodic_work" in inspect.signature(bootstrap.definition).parameters else {}
    server = build(bootstrap.definition(settings, **options))
    server.start()
    return server


@pytest.fixture(scope="module")
def stack(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Probed]:
    isolated = isolated_kafka_env(kafka)
    probed = Probed({}, {})
    try:
        for service in SERVICES:
            database = probed.databases[service] = migrated_database(postgres_url, service)
            env = service_env(database, kafka, secrets) | isolated
            if service == "reporting":
                env |= {"REGISTRY_TARGET": f"127.0.0.1:{probed.servers['registry'].port}", **reporting_keys(secrets)}
                env |= {"NOTIFY_TARGET": f"127.0.0.1:{probed.servers['notify'].port}"}
            probed.servers[service] = start(service, env, database)
        with probed.channel("registry") as channel:
            directory = registry_pb2_grpc.TenantDirectoryServiceStub(channel)
            for code, name in ((PILOT_TENANT, "良乡镇"), (OTHER_TENANT, "周口店地区")):
                directory.OnboardTenant(
                    registry_pb2.OnboardTenantRequest(code=code, name=name, district_code=DISTRICT),
                    metadata=bearer(secrets.token(code, Role.SYSTEM, audience="registry")),
                )
        yield probed
    finally:
        # Together: each waits for its workers (relay, consumers) to stop, which is most of the module's time.
        stopping = [threading.Thread(target=server.stop, kwargs={"grace": 1}) for server in probed.servers.values()]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()


def methods(stack: Probed) -> list[Method]:
    pool = descriptor_pool.Default()
    found = []
    for service, server in stack.servers.items():
        for name in server.service_names:
            if name in OPEN:
                continue
            for method in pool.FindServiceByName(name).methods:
                if not method.client_streaming:
                    found.append(Method(service, f"/{name}/{method.name}", method))
    return found


@contextmanager
def channels(stack: Probed) -> Iterator[dict[str, grpc.Channel]]:
    with ExitStack() as opened:
        yield {service: opened.enter_context(stack.channel(service)) for service in stack.servers}


def defect(code: grpc.StatusCode, message: str) -> str:
    if code not in DELIBERATE:
        return f"{code.name}: {message[:200]}"
    leaked = [marker for marker in LEAKS if marker in message]
    return f"{code.name} with {leaked} in its message: {message[:200]}" if leaked else ""


def test_every_method_refuses_a_caller_without_a_token(stack: Probed) -> None:
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


def test_every_method_answers_hostile_requests_deliberately(stack: Probed, secrets: Secrets) -> None:
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


# -- another town's ids --------------------------------------------------------------------------------------

MARK = f"外镇{uuid.uuid4().hex[:6].upper()}"  # in every name and text the other town's records carry
NOT_IDS = {"tenant_id", "event_id", "trace_id"}
BOOKKEEPING = {"outbox", "inbox", "alembic_version"}


def seed_the_other_town(stack: Probed, secrets: Secrets) -> None:
    """A child with a poverty category (benefits drafts an application) and a crisis report about another
    child (referrals, notifications, a crisis chain), all in the other town, through the services' own APIs."""
    theirs = bearer(secrets.token(OTHER_TENANT, Role.CASEWORKER, audience="registry"))
    village = OTHER_TENANT + "001"
    with stack.channel("registry") as channel:
        child = (
            registry_pb2_grpc.RegistryServiceStub(channel)
            .RegisterChild(
                registry_pb2.RegisterChildRequest(
                    legal_name=MARK,
                    sex=common_pb2.SEX_MALE,
                    birth_date=common_pb2.Date(year=2014, month=5, day=6),
                    household_division_code=village,
                    residence_division_code=village,
                ),
                metadata=theirs,
            )
            .child
        )
        since = date.today() - timedelta(days=30)
        casework_pb2_grpc.CaseworkServiceStub(channel).AddCategory(
            casework_pb2.AddCategoryRequest(
                child_id=child.child_id,
                category="poverty",
                source="survey",
                evidence=f"低保户{MARK}",
                valid_from=common_pb2.Date(year=since.year, month=since.month, day=since.day),
            ),
            metadata=theirs,
        )
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    with stack.channel("reporting") as channel:
        reporting_pb2_grpc.ReportingServiceStub(channel).SubmitReport(
            reporting_pb2.SubmitReportRequest(
                channel=reporting_pb2.CHANNEL_STAFF_HOTLINE,
                child=reporting_pb2.ChildDescription(name=f"{MARK}妹", sex=common_pb2.SEX_FEMALE),
                division_code=village,
                place_text=f"{MARK}村口",
                occurred_at=occurred,
                situation_types=["wandering"],
                facts=["child_alone"],
                narrative=f"{MARK}妹独自在村口徘徊两天,无成年人陪伴。",
            ),
            metadata=bearer(secrets.token(OTHER_TENANT, Role.CASEWORKER, audience="reporting")),
        )


def as_the_other_town(connection: Connection) -> Connection:
    """Row-level security shows a table's owner only the town it is set to."""
    connection.execute(
        text("SELECT set_config('app.tenant_id', :town, false), set_config('app.district', :district, false)"),
        {"town": OTHER_TENANT, "district": DISTRICT},
    )
    return connection


def tenant_tables(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND column_name = 'tenant_id' ORDER BY table_name"
                )
            ).scalars()
        )


def other_town_state(stack: Probed) -> dict[str, str]:
    """Each table's rows of the other town, as a count and a digest: what a probe must never change."""
    state = {}
    for service, database in stack.databases.items():
        engine = create_engine(database.owner_url, poolclass=NullPool)
        with engine.connect() as connection:
            as_the_other_town(connection)
            for table in tenant_tables(engine):
                count, digest = connection.execute(
                    text(
                        # The table's name comes from information_schema, never from input.
                        f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM \"{table}\" t "  # noqa: S608
                        "WHERE tenant_id = :town"
                    ),
                    {"town": OTHER_TENANT},
                ).one()
                state[f"{service}.{table}"] = f"{count}:{digest}"
        engine.dispose()
    return state


def other_town_ids(stack: Probed) -> list[str]:
    """An id of each kind the other town's records have (every `id` and `*_id` text column)."""
    ids: set[str] = set()
    for database in stack.databases.values():
        engine = create_engine(database.owner_url, poolclass=NullPool)
        with engine.connect() as connection:
            as_the_other_town(connection)
            columns = connection.execute(
                text(
                    "SELECT c.table_name, c.column_name FROM information_schema.columns c JOIN information_schema.columns t "
                    "ON t.table_name = c.table_name AND t.table_schema = c.table_schema AND t.column_name = 'tenant_id' "
                    "WHERE c.table_schema = 'public' AND c.data_type IN ('character varying', 'text') "
                    "AND (c.column_name = 'id' OR c.column_name LIKE '%\\_id')"
                )
            ).all()
            for table, column in columns:
                if table in BOOKKEEPING or column in NOT_IDS:
                    continue
                ids.update(
                    connection.execute(
                        text(
                            f'SELECT DISTINCT "{column}" FROM "{table}" WHERE tenant_id = :town AND "{column}" <> \'\' LIMIT 1'  # noqa: S608
                        ),
                        {"town": OTHER_TENANT},
                    ).scalars()
                )
        engine.dispose()
    return sorted(ids)


def with_ids(descriptor: Descriptor, value: str, depth: int = 0) -> Any:
    """A request whose every id field (`id`, `*_id`, `*_ids`), nested ones too, holds `value`."""
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_STRING and (field.name == "id" or field.name.endswith(("_id", "_ids"))):
            if field.is_repeated:
                getattr(message, field.name).append(value)
            else:
                setattr(message, field.name, value)
        elif field.message_type is not None and depth < 2 and not field.message_type.GetOptions().map_entry:
            nested = with_ids(field.message_type, value, depth + 1)
            if nested.ByteSize():
                (getattr(message, field.name).add() if field.is_repeated else getattr(message, field.name)).CopyFrom(
                    nested
                )
    return message


def test_no_method_shows_or_changes_another_towns_records_given_their_ids(stack: Probed, secrets: Secrets) -> None:
    seed_the_other_town(stack, secrets)
    # Everything the seed sets off (referrals, notifications, the benefits draft) has settled when nothing changes.
    settled: list[dict[str, str]] = []

    def quiet() -> bool:
        settled.append(other_town_state(stack))
        if len(settled) >= 4 and settled[-1] == settled[-4] and not settled[-1]["referral.referrals"].startswith("0:"):
            return True
        time.sleep(1)
        return False

    try:
        eventually(quiet, timeout=90, what="the other town's records to settle")
    except AssertionError:
        changing = sorted(t for t in settled[-1] if settled[-1][t] != settled[-4].get(t)) if len(settled) >= 4 else []
        filled = {t: v for t, v in settled[-1].items() if not v.startswith("0:")}
        raise AssertionError(f"still changing: {changing}; rows: {filled}") from None
    before = settled[-1]
    ids = other_town_ids(stack)
    assert len(ids) >= 5, ids

    problems: dict[str, str] = {}
    probes = 0
    with channels(stack) as channel_of:
        for method in methods(stack):
            for role in (Role.CASEWORKER, Role.TOWN_ADMIN):
                metadata = bearer(secrets.token(PILOT_TENANT, role, audience=method.service))
                for other_id in ids:
                    request = with_ids(method.descriptor.input_type, other_id)
                    if not request.ByteSize():
                        break  # a method without ids: nothing of the other town to name
                    probes += 1
                    code, message, reply = method.call_for_reply(channel_of[method.service], request, metadata)
                    where = f"{method.path} as {role.value} with {other_id}"
                    if found := defect(code, message):
                        problems.setdefault(where, found)
                    elif MARK.encode() in reply or MARK in message:
                        problems.setdefault(where, f"{code.name}: the other town's record in the answer")
    after = other_town_state(stack)
    changed = sorted(table for table in before if before[table] != after.get(table))
    print(f"other-town probes: {probes} calls with {len(ids)} of the other town's ids; tables changed: {changed}")
    print(
        "other town's rows:",
        {table: state.split(":")[0] for table, state in before.items() if not state.startswith("0:")},
    )
    assert not problems, "\n".join(f"{where}: {what}" for where, what in sorted(problems.items()))
    assert not changed, f"the other town's records changed under another town's calls: {changed}"


# -- files no survey is -------------------------------------------------------------------------------------


def hostile_surveys(template: bytes) -> Iterator[tuple[str, list[Any]]]:
    """(what it is, the messages of one ImportSurvey call)."""

    def upload(name: str, content: bytes) -> list[Any]:
        options = survey_pb2.SurveyImportOptions(file_name=name, dry_run=True)
        chunks = [content[at : at + 64 * 1024] for at in range(0, len(content), 64 * 1024)]
        return [
            survey_pb2.ImportSurveyRequest(options=options),
            *(survey_pb2.ImportSurveyRequest(chunk=c) for c in chunks),
        ]

    empty_zip = io.BytesIO()
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    header = template_header_csv(template)
    yield "random bytes as .xlsx", upload("排查.xlsx", bytes(range(256)) * 64)
    yield "a zip that is no workbook", upload("排查.xlsx", empty_zip.getvalue())
    yield "the template cut in half", upload("排查.xlsx", template[: len(template) // 2])
    yield "a csv of NUL and broken encodings", upload("排查.csv", header + b"\x00\xff\xfe\x81\x30" * 500 + b"\n")
    yield "a csv with a 200,000-character field", upload("排查.csv", header + ("长" * 200_000).encode() + b",x\n")
    yield "a csv of 5,000 empty columns", upload("排查.csv", header + b"," * 5_000 + b"\n")
    yield "a name with a path", upload("../../../etc/passwd.csv", header)
    yield "a name with NUL", upload("排查\x00.csv", header)
    yield "a name no reader knows", upload("排查.exe", header)
    yield "a chunk before the options", upload("排查.csv", header)[::-1]
    yield "two options", [*upload("排查.csv", header)[:1], *upload("排查.csv", header)]
    yield "nothing at all", []


def template_header_csv(template: bytes) -> bytes:
    """The template's header row, as a CSV line (the columns a survey must have)."""
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(template), read_only=True).worksheets[0]
    first = next(sheet.iter_rows(max_row=1, values_only=True))
    return (",".join(str(cell or "") for cell in first) + "\n").encode()


def test_the_survey_import_answers_files_that_are_no_survey_deliberately(stack: Probed, secrets: Secrets) -> None:
    metadata = bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER, audience="registry"))
    problems = []
    with stack.channel("registry") as channel:
        survey = survey_pb2_grpc.SurveyServiceStub(channel)
        template = survey.GetSurveyTemplate(survey_pb2.GetSurveyTemplateRequest(), metadata=metadata).content
        for what, messages in hostile_surveys(template):
            try:
                for _ in survey.ImportSurvey(iter(messages), metadata=metadata, timeout=60):
                    pass
                code, message = grpc.StatusCode.OK, ""
            except grpc.RpcError as error:
                code, message = error.code(), error.details() or ""
            if found := defect(code, message):
                problems.append(f"{what}: {found}")
    assert not problems, "\n".join(problems)
