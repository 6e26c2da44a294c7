"""What a report puts on Kafka, and a public report waiting for a person before any agency acts on it.

Reporting and referral as their `serve` commands compose them (relay, consumers), over real loopback gRPC, on
fresh PostgreSQL databases and Kafka topics of their own. A public report is never linked automatically, so
the registry is not needed here (reporting is pointed at an address where nothing answers).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import grpc
import pytest
from confluent_kafka import Consumer
from minorprot.common.v1 import common_pb2
from minorprot.referral.v1 import referral_pb2, referral_pb2_grpc
from minorprot.reporting.v1 import events_pb2, reporting_pb2, reporting_pb2_grpc
from sqlalchemy import create_engine, select, text

from platform_runtime.auth import Role
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, KafkaSettings
from platform_runtime.topics import REPORTING_REPORT
from services.referral.adapters.orm import metadata as referral_metadata
from services.reporting.adapters.orm import metadata as reporting_metadata
from tests.support.infra import PILOT_TENANT, Secrets, isolated_kafka_env
from tests.support.reporting_stack import report_request
from tests.support.services import (
    NO_NOTIFY,
    Running,
    bearer,
    migrated_database,
    reporting_keys,
    service_env,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

CRISIS = ["other_serious_harm"]  # a child in immediate danger: CrisisDeclared at once, police by the rules


@dataclass
class Stack:
    reporting: Running
    referral: Running
    kafka: KafkaSettings
    topic_prefix: str
    secrets: Secrets

    def auth(self, role: Role, audience: str = "reporting") -> tuple[tuple[str, str], ...]:
        return bearer(self.secrets.token(PILOT_TENANT, role, audience=audience))

    def reporting_stub(self) -> reporting_pb2_grpc.ReportingServiceStub:
        return reporting_pb2_grpc.ReportingServiceStub(grpc.insecure_channel(self.reporting.target))

    def referrals(self, report_id: str) -> list[referral_pb2.Referral]:
        stub = referral_pb2_grpc.ReferralServiceStub(grpc.insecure_channel(self.referral.target))
        request = referral_pb2.ListReferralsRequest(report_id=report_id)
        return list(stub.ListReferrals(request, metadata=self.auth(Role.CASEWORKER, "referral")).referrals)

    def outbox_event_ids(self, report_id: str) -> dict[str, str]:
        """Event type (short name) -> event id of reporting's events about one report, read as the owner."""
        outbox = reporting_metadata.tables["outbox"]
        engine = create_engine(self.reporting.database.owner_url)
        try:
            with engine.begin() as connection:
                connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
                rows = connection.execute(
                    select(outbox.c.event_type, outbox.c.event_id).where(
                        outbox.c.message_key == f"{PILOT_TENANT}:{report_id}"
                    )
                ).all()
        finally:
            engine.dispose()
        return {event_type.rsplit(".", 1)[1]: event_id for event_type, event_id in rows}

    def applied_by_referral(self, event_id: str) -> bool:
        inbox = referral_metadata.tables["inbox"]
        engine = create_engine(self.referral.database.owner_url)
        try:
            with engine.begin() as connection:
                connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
                found = connection.scalar(select(inbox.c.event_id).where(inbox.c.event_id == event_id))
        finally:
            engine.dispose()
        return found is not None

    def raw_messages(self, report_id: str, wanted: int, timeout: float = 60) -> list[tuple[bytes, list[bytes]]]:
        """The bytes Kafka holds for one report's events (value and header values), as any reader gets them."""
        consumer = Consumer(
            self.kafka.client_config() | {"group.id": f"probe-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe([self.topic_prefix + REPORTING_REPORT])
        key = f"{PILOT_TENANT}:{report_id}".encode()
        found: list[tuple[bytes, list[bytes]]] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and len(found) < wanted:
                message = consumer.poll(0.5)
                if message is None or message.error() or message.key() != key:
                    continue
                headers = [header[1] for header in message.headers() or [] if isinstance(header, tuple)]
                found.append((message.value() or b"", [value for value in headers if isinstance(value, bytes)]))
        finally:
            consumer.close()
        return found


@pytest.fixture(scope="module")
def stack(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Stack]:
    from services.referral import bootstrap as referral_bootstrap
    from services.referral.settings import load_settings as referral_settings
    from services.reporting import bootstrap as reporting_bootstrap
    from services.reporting.settings import load_settings as reporting_settings

    isolated = isolated_kafka_env(kafka)
    with ExitStack() as running:
        db = migrated_database(postgres_url, "reporting")
        env = service_env(
            db,
            kafka,
            secrets,
            REGISTRY_TARGET="127.0.0.1:1",
            NOTIFY_TARGET=NO_NOTIFY,
            **isolated,
            **reporting_keys(secrets),
        )
        reporting = build(reporting_bootstrap.definition(reporting_settings(EnvReader(env)), periodic_work=False))
        reporting.start()
        running.callback(reporting.stop, 1)
        reporting_running = Running(reporting, db)

        db = migrated_database(postgres_url, "referral")
        env = service_env(db, kafka, secrets, **isolated)
        referral = build(referral_bootstrap.definition(referral_settings(EnvReader(env)), periodic_work=False))
        referral.start()
        running.callback(referral.stop, 1)
        yield Stack(reporting_running, Running(referral, db), kafka, isolated["KAFKA_TOPIC_PREFIX"], secrets)


def test_the_bytes_on_kafka_for_a_report_name_nobody(stack: Stack) -> None:
    unique = uuid.uuid4().hex[:6]
    child_name, guardian, reporter_name = f"欧阳小雪{unique}", f"欧阳大山{unique}", f"司马女士{unique}"
    school, description = f"良乡第{unique}小学", f"扎两个辫子{unique}"
    narrative = f"孩子在桥洞下过夜,身上有伤,父亲酒后打人。{unique}"
    phone = "139" + str(uuid.uuid4().int)[:8]
    request = report_request(
        reporting_pb2.CHANNEL_PUBLIC_NAMED,
        child=reporting_pb2.ChildDescription(
            name=child_name, approximate_age=9, description=description, school=school, guardian_names=[guardian]
        ),
        reporter=reporting_pb2.Reporter(name=reporter_name, phone=phone),
        narrative=narrative,
        situation_types=CRISIS,
    )
    reporting = stack.reporting_stub()
    report = reporting.SubmitReport(request, metadata=stack.auth(Role.PUBLIC)).report
    reporting.DecideTriage(
        reporting_pb2.DecideTriageRequest(report_id=report.report_id, confirmed=True),
        metadata=stack.auth(Role.CASEWORKER),
    )

    messages = stack.raw_messages(report.report_id, wanted=3)

    types = {common_pb2.EventEnvelope.FromString(value).event_type.rsplit(".", 1)[1] for value, _ in messages}
    assert types == {"ReportSubmitted", "CrisisDeclared", "ReportTriageConfirmed"}
    for value, headers in messages:
        for personal in (child_name, guardian, reporter_name, phone, school, description, narrative):
            assert personal.encode() not in value
            assert all(personal.encode() not in header for header in headers)
    submitted = next(
        events_pb2.ReportSubmitted.FromString(envelope.payload.value)
        for envelope in (common_pb2.EventEnvelope.FromString(value) for value, _ in messages)
        if envelope.event_type.endswith("ReportSubmitted")
    )
    # What referral routes by is there: the facts, the age, the place.
    assert (submitted.summary.report_id, submitted.summary.approximate_age) == (report.report_id, 9)
    assert list(submitted.summary.situation_types) == CRISIS and submitted.summary.crisis
    assert submitted.summary.place_text == request.place_text and submitted.awaiting_triage


def test_a_public_report_reaches_agencies_only_once_a_caseworker_confirms_it(stack: Stack) -> None:
    reporting = stack.reporting_stub()
    request = report_request(reporting_pb2.CHANNEL_PUBLIC_ANONYMOUS, situation_types=CRISIS)
    report = reporting.SubmitReport(request, metadata=stack.auth(Role.PUBLIC)).report
    assert report.person_triage == "awaiting" and report.crisis

    # Referral has read the report (its inbox holds the event) and opened nothing, not even for the police.
    events = stack.outbox_event_ids(report.report_id)
    assert {"ReportSubmitted", "CrisisDeclared"} <= set(events)  # the crisis is announced at once all the same
    eventually(lambda: stack.applied_by_referral(events["ReportSubmitted"]), what="referral reading the report")
    assert stack.referrals(report.report_id) == []

    caseworker = stack.auth(Role.CASEWORKER)
    shown = reporting.GetReport(reporting_pb2.GetReportRequest(report_id=report.report_id), metadata=caseworker).report
    assert shown.person_triage == "awaiting"
    confirmed = reporting.DecideTriage(
        reporting_pb2.DecideTriageRequest(report_id=report.report_id, confirmed=True, expected_version=shown.version),
        metadata=caseworker,
    ).report
    assert confirmed.person_triage == "confirmed"

    referrals = eventually(lambda: stack.referrals(report.report_id), what="referrals after the confirmation")
    police = next(r for r in referrals if r.agency_code == "police")
    assert police.urgent and police.case_facts.situation_types == CRISIS

    with pytest.raises(grpc.RpcError) as again:
        reporting.DecideTriage(
            reporting_pb2.DecideTriageRequest(report_id=report.report_id, confirmed=False), metadata=caseworker
        )
    assert again.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_a_rejected_public_report_opens_no_referral(stack: Stack) -> None:
    reporting = stack.reporting_stub()
    report = reporting.SubmitReport(
        report_request(reporting_pb2.CHANNEL_PUBLIC_ANONYMOUS), metadata=stack.auth(Role.PUBLIC)
    ).report
    with pytest.raises(grpc.RpcError) as public:
        reporting.DecideTriage(
            reporting_pb2.DecideTriageRequest(report_id=report.report_id, confirmed=True),
            metadata=stack.auth(Role.PUBLIC),
        )
    assert public.value.code() is grpc.StatusCode.PERMISSION_DENIED
    rejected = reporting.DecideTriage(
        reporting_pb2.DecideTriageRequest(report_id=report.report_id, confirmed=False),
        metadata=stack.auth(Role.CASEWORKER),
    ).report
    assert rejected.person_triage == "rejected"

    events = stack.outbox_event_ids(report.report_id)
    assert set(events) == {"ReportSubmitted"}  # nothing tells the agencies
    eventually(lambda: stack.applied_by_referral(events["ReportSubmitted"]), what="referral reading the report")
    assert stack.referrals(report.report_id) == []
