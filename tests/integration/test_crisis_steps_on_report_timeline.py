"""A crisis report's escalation on its timeline, end to end over real gRPC, PostgreSQL and Kafka: reporting
declares the crisis, notify alerts the duty officer (step 1), the time runs out and the town administrator is
told (step 2), someone acknowledges in notify; reporting consumes notify's CrisisEscalated and
CrisisAcknowledged and lists "alerted X, escalated to Y, acknowledged by Z" by name and role, each step once,
with no phone number or e-mail address anywhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from minorprot.notify.v1 import notify_pb2, notify_pb2_grpc
from minorprot.reporting.v1 import crisis_steps_pb2, crisis_steps_pb2_grpc, reporting_pb2

from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, utcnow
from platform_runtime.settings import KafkaSettings
from platform_runtime.tenancy import acting_as
from services.notify.adapters.orm import metadata as notify_metadata
from services.notify.service_layer.crises import CrisisService
from services.notify.service_layer.directory import DirectoryService
from services.notify.service_layer.recipients import beijing_date
from services.notify.service_layer.services import NotifyService
from tests.support.infra import PILOT_TENANT, Secrets
from tests.support.reporting_stack import Stack, report_request, running_stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PEOPLE = {
    "duty1": (Role.CASEWORKER, "王值班", "13900000001", "duty1@town.example"),
    "admin1": (Role.TOWN_ADMIN, "李镇管", "13900000002", "admin1@town.example"),
}


@pytest.fixture(scope="module")
def stack(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Stack]:
    with running_stack(postgres_url, kafka, secrets) as running:
        yield running


def person(user_id: str) -> Principal:
    role, name, _, _ = PEOPLE[user_id]
    return Principal(user_id=user_id, display_name=name, role=role, tenant=PILOT_TENANT, district=PILOT_TENANT[:6])


def steps(stack: Stack, report_id: str) -> list[crisis_steps_pb2.CrisisStep]:
    stub = crisis_steps_pb2_grpc.CrisisStepServiceStub(stack.channels["reporting"])
    request = crisis_steps_pb2.ListCrisisStepsRequest(report_id=report_id)
    return list(stub.ListCrisisSteps(request, metadata=stack.auth(Role.CASEWORKER)).steps)


def test_a_crisis_reports_alert_escalation_and_acknowledgement_are_on_its_timeline(stack: Stack) -> None:
    notify_db = Database.connect(stack.notify.database.app_url, notify_metadata)
    directory = DirectoryService(notify_db)
    for user_id, (_, _, phone, email) in PEOPLE.items():
        with acting_as(person(user_id)):
            directory.update_my_contact(phone=phone, email=email, channels_off=[], quiet_from="", quiet_until="")
    with acting_as(person("admin1")):
        directory.set_duty_officer(beijing_date(utcnow()), "duty1")

    request = report_request(reporting_pb2.CHANNEL_STAFF_WALK_IN, situation_types=["abandoned_or_uncared"])
    report = stack.reporting_stub().SubmitReport(request, metadata=stack.auth(Role.CASEWORKER)).report
    assert report.crisis

    (alerted,) = eventually(lambda: steps(stack, report.report_id), 60, "step 1 on the report's timeline")
    assert (alerted.kind, alerted.step, alerted.level) == ("alerted", 1, "duty_officer")
    assert {(p.recipient, p.name) for p in alerted.people} >= {("user:duty1", "王值班")}

    # The limit runs out unacknowledged: notify's escalation takes step 2 (its clock 20 minutes on).
    def later() -> dt.datetime:
        return utcnow() + dt.timedelta(minutes=20)

    later_crises = CrisisService(notify_db, NotifyService(notify_db), limit=dt.timedelta(minutes=15), now=later)
    assert later_crises.escalate_due() == 1
    escalated = eventually(lambda: steps(stack, report.report_id)[1:], 60, "step 2 on the report's timeline")
    assert [(s.kind, s.step, s.level) for s in escalated] == [("escalated", 2, "town_admin")]
    assert ("user:admin1", "李镇管") in {(p.recipient, p.name) for p in escalated[0].people}

    notify = notify_pb2_grpc.NotifyServiceStub(stack.channels["notify"])
    notify.AcknowledgeCrisis(
        notify_pb2.AcknowledgeCrisisRequest(crisis_id=alerted.crisis_id),
        metadata=stack.auth(Role.TOWN_ADMIN, user="admin1", audience="notify"),
    )
    timeline = eventually(lambda: steps(stack, report.report_id)[2:] and steps(stack, report.report_id), 60, "ack")
    # (In time order; step 2 was taken on a clock 20 minutes ahead, so here the acknowledgement comes first.)
    assert sorted((s.kind, s.step) for s in timeline) == [("acknowledged", 0), ("alerted", 1), ("escalated", 2)]
    (acknowledged,) = [s for s in timeline if s.kind == "acknowledged"]
    assert acknowledged.via == "portal" and [(p.recipient, p.name) for p in acknowledged.people] == [
        ("user:admin1", "李镇管")
    ]
    # Names and roles only: no phone number or e-mail address reached the timeline.
    shown = str(timeline)
    for _, _, phone, email in PEOPLE.values():
        assert phone not in shown and email not in shown
    notify_db.dispose()
