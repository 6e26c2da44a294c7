"""From the registry's case work to the inboxes of the people who hold the case.

The registry runs as `serve` composes it, its overdue-visit checker included (every second here), and notify
beside it; both in the test process over real loopback gRPC, on fresh PostgreSQL databases and on Kafka
topics of their own. A case recorded with an assessment whose follow-up visit is past due is raised by the
checker, published by the relay, consumed by notify and read back through `NotifyService.ListInbox`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from minorprot.common.v1 import common_pb2
from minorprot.notify.v1 import notify_pb2, notify_pb2_grpc
from minorprot.registry.v1 import casework_pb2, casework_pb2_grpc, events_pb2, registry_pb2, registry_pb2_grpc
from sqlalchemy import create_engine, text

from platform_runtime.auth import Role
from platform_runtime.db import new_id
from platform_runtime.events import unpack
from platform_runtime.grpc_server import GrpcServer
from platform_runtime.outbox import make_producer
from platform_runtime.provision import ProvisionedDatabase
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, KafkaSettings
from platform_runtime.topics import REGISTRY_CASE
from platform_runtime.vocabulary import china_today
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, Secrets, isolated_kafka_env
from tests.support.services import Running, bearer, migrated_database, service_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

T = TypeVar("T")
M = TypeVar("M", bound=Message)
TODAY = china_today()
OVERDUE = "随访逾期"


@dataclass
class Stack:
    registry: Running
    notify: Running
    secrets: Secrets
    kafka: KafkaSettings
    topic_prefix: str
    channels: dict[str, grpc.Channel]

    def auth(self, role: Role, tenant: str = PILOT_TENANT, audience: str = "registry") -> tuple[tuple[str, str], ...]:
        return bearer(self.secrets.token(tenant, role, audience=audience))

    def registry_stub(self) -> registry_pb2_grpc.RegistryServiceStub:
        return registry_pb2_grpc.RegistryServiceStub(self.channels["registry"])

    def casework_stub(self) -> casework_pb2_grpc.CaseworkServiceStub:
        return casework_pb2_grpc.CaseworkServiceStub(self.channels["registry"])

    def inbox(self, role: Role, tenant: str = PILOT_TENANT) -> list[notify_pb2.Notification]:
        stub = notify_pb2_grpc.NotifyServiceStub(self.channels["notify"])
        request = notify_pb2.ListInboxRequest(page_size=200)
        return list(stub.ListInbox(request, metadata=self.auth(role, tenant, "notify")).notifications)

    def about(self, role: Role, child_id: str, title: str = "", tenant: str = PILOT_TENANT) -> list[Any]:
        return [n for n in self.inbox(role, tenant) if n.subject_id == child_id and n.title.startswith(title)]


def owner_rows(database: ProvisionedDatabase, query: str, tenant: str = PILOT_TENANT, **params: Any) -> list[Any]:
    """Rows read as the owner role within one town (the owner is under row-level security too)."""
    engine = create_engine(database.owner_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
            return list(connection.execute(text(query), params))
    finally:
        engine.dispose()


def registry_events(stack: Stack, kind: type[M], child_id: str) -> list[tuple[Any, M]]:
    """The registry's outbox rows of one event type about one child, with the event unpacked."""
    found: list[tuple[Any, M]] = []
    rows = owner_rows(
        stack.registry.database,
        "SELECT event_id, message_key, envelope FROM outbox WHERE message_key = :key ORDER BY id",
        key=f"{PILOT_TENANT}:{child_id}",
    )
    for row in rows:
        envelope = common_pb2.EventEnvelope.FromString(row.envelope)
        if envelope.event_type == kind.DESCRIPTOR.full_name:
            event = unpack(envelope, kind)
            found.append((row, event))
    return found


@contextmanager
def serving(server: GrpcServer, database: ProvisionedDatabase) -> Iterator[Running]:
    server.start()
    try:
        yield Running(server, database)
    finally:
        server.stop(grace=1)


@pytest.fixture(scope="module")
def stack(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Stack]:
    from services.notify import bootstrap as notify_bootstrap
    from services.notify.settings import load_settings as notify_settings
    from services.registry import bootstrap as registry_bootstrap
    from services.registry.adapters.orm import APPEND_ONLY_TABLES
    from services.registry.settings import load_settings as registry_settings

    isolated = isolated_kafka_env(kafka)
    with ExitStack() as stack:
        db = migrated_database(postgres_url, "registry", APPEND_ONLY_TABLES)
        env = service_env(db, kafka, secrets, VISIT_CHECK_INTERVAL_SECONDS="1", **isolated)
        registry = stack.enter_context(
            serving(build(registry_bootstrap.definition(registry_settings(EnvReader(env)))), db)
        )

        db = migrated_database(postgres_url, "notify")
        env = service_env(db, kafka, secrets, **isolated)
        notify = stack.enter_context(serving(build(notify_bootstrap.definition(notify_settings(EnvReader(env)))), db))

        channels = {name: stack.enter_context(r.channel()) for name, r in (("registry", registry), ("notify", notify))}
        directory = registry_pb2_grpc.TenantDirectoryServiceStub(channels["registry"])
        for code, name in ((PILOT_TENANT, "良乡镇"), (OTHER_TENANT, "周口店地区")):
            directory.OnboardTenant(
                registry_pb2.OnboardTenantRequest(code=code, name=name, district_code=DISTRICT),
                metadata=bearer(secrets.token(code, Role.SYSTEM, audience="registry")),
            )
        yield Stack(registry, notify, secrets, kafka, isolated["KAFKA_TOPIC_PREFIX"], channels)


def day(value: date) -> common_pb2.Date:
    return common_pb2.Date(year=value.year, month=value.month, day=value.day)


def new_case(stack: Stack, name: str, responsible_person: str = "", social_worker: str = "") -> str:
    """A child of the pilot town in assessment, with named staff; returns the child id."""
    caseworker = stack.auth(Role.CASEWORKER)
    request = registry_pb2.RegisterChildRequest(
        legal_name=name,
        sex=common_pb2.SEX_MALE,
        birth_date=common_pb2.Date(year=2014, month=9, day=1),
        household_division_code=PILOT_TENANT,
    )
    child_id: str = stack.registry_stub().RegisterChild(request, metadata=caseworker).child.child_id
    casework = stack.casework_stub()
    casework.ChangeCaseStatus(
        casework_pb2.ChangeCaseStatusRequest(child_id=child_id, status="assessing"), metadata=caseworker
    )
    casework.AssignCase(
        casework_pb2.AssignCaseRequest(
            child_id=child_id, responsible_person=responsible_person, social_worker=social_worker
        ),
        metadata=caseworker,
    )
    return child_id


def assess_high_risk(stack: Stack, child_id: str, days_ago: int) -> date:
    """An initial assessment `days_ago` with a high risk (a visit every 7 days); returns the visit's due date."""
    domains = ("safety", "guardianship", "health", "education", "livelihood", "psychology")
    reply = stack.casework_stub().RecordAssessment(
        casework_pb2.RecordAssessmentRequest(
            child_id=child_id,
            kind="initial",
            assessed_on=day(TODAY - timedelta(days=days_ago)),
            domains=[
                registry_pb2.DomainFinding(
                    domain=d, score=4 if d == "safety" else 0, finding="见记录" if d == "safety" else ""
                )
                for d in domains
            ],
        ),
        metadata=stack.auth(Role.CASEWORKER),
    )
    due = TODAY - timedelta(days=days_ago - 7)
    assert reply.next_visit_due == day(due)
    return due


def test_an_overdue_visit_reaches_the_holders_of_the_case_in_its_town_only(stack: Stack) -> None:
    child_id = new_case(stack, "吴小东", responsible_person="王专人", social_worker="李社工")
    due = assess_high_risk(stack, child_id, days_ago=20)

    (reminder,) = eventually(
        lambda: stack.about(Role.CASEWORKER, child_id, OVERDUE), what="the caseworkers reminded", timeout=45
    )
    assert reminder.title == "随访逾期 Follow-up visit overdue: 13 天 days"
    assert reminder.priority == notify_pb2.PRIORITY_URGENT
    assert (reminder.tenant, reminder.recipient_role, reminder.subject_type) == (PILOT_TENANT, "caseworker", "child")
    assert due.isoformat() in reminder.body and "社工 李社工" in reminder.body and "专人 王专人" in reminder.body
    assert "吴小东" not in reminder.title + reminder.body  # the child by id only
    # The responsible person named by the village committee: the village's inbox (child directors).
    (village,) = eventually(
        lambda: stack.about(Role.CHILD_DIRECTOR, child_id, OVERDUE), what="the village reminded", timeout=45
    )
    assert village.notification_id != reminder.notification_id
    assert stack.about(Role.TOWN_ADMIN, child_id) == []

    for role in (Role.CASEWORKER, Role.CHILD_DIRECTOR, Role.TOWN_ADMIN):
        assert stack.inbox(role, OTHER_TENANT) == [], f"{role} of another town sees the pilot town's work"


def test_a_visit_delivered_twice_or_raised_again_for_its_due_date_is_one_reminder(stack: Stack) -> None:
    child_id = new_case(stack, "郑小龙", social_worker="李社工")
    assess_high_risk(stack, child_id, days_ago=10)
    eventually(lambda: stack.about(Role.CASEWORKER, child_id, OVERDUE), what="the first reminder", timeout=45)
    ((row, raised),) = registry_events(stack, events_pb2.VisitOverdue, child_id)

    # Kafka delivers the same message again (a relay retry, a consumer restart before its commit) ...
    producer = make_producer(stack.kafka, "test-redelivery")
    topic = stack.topic_prefix + REGISTRY_CASE
    headers = [("tenant", PILOT_TENANT.encode()), ("event_type", events_pb2.VisitOverdue.DESCRIPTOR.full_name.encode())]
    producer.produce(
        topic, key=row.message_key.encode(), value=row.envelope, headers=[*headers, ("event_id", row.event_id.encode())]
    )
    # ... and the registry raises the same due date again, as a new event, one day later.
    again = common_pb2.EventEnvelope.FromString(row.envelope)
    again.event_id = new_id()
    raised.days_overdue += 1
    again.payload.Pack(raised)
    producer.produce(
        topic,
        key=row.message_key.encode(),
        value=again.SerializeToString(),
        headers=[*headers, ("event_id", again.event_id.encode())],
    )
    assert producer.flush(30) == 0

    # Both are on the child's partition in that order: once the second is applied, so is the first.
    eventually(
        lambda: owner_rows(stack.notify.database, "SELECT 1 FROM inbox WHERE event_id = :e", e=again.event_id),
        what="notify to apply the repeated event",
        timeout=45,
    )
    assert len(stack.about(Role.CASEWORKER, child_id, OVERDUE)) == 1
    assert stack.about(Role.CHILD_DIRECTOR, child_id) == []  # nobody of the village is named on this case


def test_holders_hear_of_their_new_case_and_of_its_closing_but_not_of_routine_steps(stack: Stack) -> None:
    child_id = new_case(stack, "孙小梅", responsible_person="王专人", social_worker="李社工")
    stack.casework_stub().ChangeCaseStatus(
        casework_pb2.ChangeCaseStatusRequest(child_id=child_id, status="closed", reason="随父母迁居外省,监护落实"),
        metadata=stack.auth(Role.CASEWORKER),
    )

    closed = eventually(
        lambda: stack.about(Role.CASEWORKER, child_id, "个案已结案"), what="the closing told", timeout=45
    )
    # The closing comes after the assignment and the move into assessment on the child's partition.
    titles = sorted(n.title for n in stack.about(Role.CASEWORKER, child_id))
    assert titles == ["个案分配 Case assigned", "个案已结案 Case closed"]
    assert "迁居" not in closed[0].body  # the reason typed in stays in the case file
    assert sorted(n.title for n in stack.about(Role.CHILD_DIRECTOR, child_id)) == titles

    ((_, change),) = [
        e for e in registry_events(stack, events_pb2.CaseStatusChanged, child_id) if e[1].to_status == "closed"
    ]
    assert (change.responsible_person, change.social_worker, change.child_director) == ("王专人", "李社工", "")
    ((_, assigned),) = registry_events(stack, events_pb2.CaseAssigned, child_id)
    assert (assigned.social_worker, assigned.previous_social_worker) == ("李社工", "")
