"""Crisis alerts must be acknowledged: unacknowledged, they go up the chain on time, each step once, across
a restart of notify's workers; an acknowledgement (SMS reply, portal, gRPC) stops the chain."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from minorprot.notify.v1 import events_pb2 as notify_events
from sqlalchemy import select

from platform_runtime.auth import Role
from platform_runtime.db import Database, utcnow
from platform_runtime.supervisor import Supervisor
from platform_runtime.tenancy import acting_as
from services.notify.adapters.channels import HttpSmsCarrier
from services.notify.adapters.orm import CrisisStepRecord, DeliveryRecord, EscalationTimerRecord, detached
from services.notify.domain.channels import Channel
from services.notify.entrypoints.delivery_workers import delivery_worker, escalation_worker
from services.notify.service_layer.crises import CrisisService
from services.notify.service_layer.deliveries import DeliveryService
from services.notify.service_layer.directory import DirectoryService
from services.notify.service_layer.recipients import beijing_date
from services.notify.service_layer.services import NotifyService
from services.notify.tests.integration.builders import PILOT_TENANT, caller, crisis_declared
from services.notify.tests.integration.stand_ins import HttpStandIn, http_stand_in
from tests.support.events import events_of, message
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

LIMIT = timedelta(seconds=2)
CHAIN = {
    "duty1": (Role.CASEWORKER, "13900000001"),
    "admin1": (Role.TOWN_ADMIN, "13900000002"),
    "district1": (Role.DISTRICT_OFFICER, "13900000003"),
    "lgo1": (Role.LEADING_GROUP_OFFICE, "13900000004"),
}


@pytest.fixture
def crises(database: Database, service: NotifyService) -> CrisisService:
    return CrisisService(database, service, limit=LIMIT)


@pytest.fixture
def chain(database: Database) -> None:
    directory = DirectoryService(database)
    for user, (role, phone) in CHAIN.items():
        with acting_as(caller(role, user=user)):
            directory.update_my_contact(phone=phone, email="", channels_off=[], quiet_from="", quiet_until="")
    with acting_as(caller(Role.TOWN_ADMIN, user="admin1")):
        directory.set_duty_officer(beijing_date(utcnow()), "duty1")


def steps(database: Database) -> list[CrisisStepRecord]:
    with database.unit_of_work(PILOT_TENANT) as uow:
        return detached(uow, uow.session.scalars(select(CrisisStepRecord).order_by(CrisisStepRecord.step)))


def sms_to(database: Database) -> list[str]:
    with database.unit_of_work(PILOT_TENANT) as uow:
        rows = uow.session.scalars(select(DeliveryRecord).where(DeliveryRecord.channel == "sms"))
        return sorted(row.recipient for row in rows)


@contextmanager
def notify_workers(database: Database, carrier: HttpStandIn) -> Iterator[Supervisor]:
    """The workers of one notify process: fresh services over the same database, as after a restart."""
    service = NotifyService(database)
    crises = CrisisService(database, service, limit=LIMIT)
    supervisor = Supervisor(
        [
            escalation_worker(crises, 0.05),
            delivery_worker(DeliveryService(database), Channel.SMS, HttpSmsCarrier(carrier.url, "k", timeout=5), 0.05),
        ]
    )
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.stop(timeout=10)


def test_an_unacknowledged_crisis_escalates_on_time_step_by_step_across_a_restart(consumer, database, crises, chain):
    consumer.process(message(crisis_declared("report9"), "event1"))
    assert [(s.step, s.level, s.recipients) for s in steps(database)] == [(1, "duty_officer", "user:duty1")]
    with http_stand_in() as carrier:
        with notify_workers(database, carrier):
            eventually(lambda: len(steps(database)) >= 2, timeout=10)
        # notify is down here; it comes back up and the chain goes on where it stood
        assert len(steps(database)) == 2
        with notify_workers(database, carrier):
            eventually(lambda: len(steps(database)) == 4, timeout=15)
            time.sleep(LIMIT.total_seconds() + 0.5)  # nothing after the last step
            eventually(lambda: len(carrier.received) == len(sms_to(database)), timeout=10)

    taken = steps(database)
    assert [(s.step, s.level) for s in taken] == [
        (1, "duty_officer"),
        (2, "town_admin"),
        (3, "district_civil_affairs"),
        (4, "leading_group_office"),
    ]
    assert [s.recipients for s in taken[1:]] == [
        "role:town_admin,user:admin1",
        "role:district_officer,user:district1",
        "role:leading_group_office,user:lgo1",
    ]
    for before, after in itertools.pairwise(taken):
        assert LIMIT <= after.told_at - before.told_at < LIMIT + timedelta(seconds=3)
    # Each person texted once per message, however the restart fell: the town admin by the crisis alert's
    # subscription and again at step 2; the others at their step.
    assert sms_to(database) == ["user:admin1", "user:admin1", "user:district1", "user:duty1", "user:lgo1"]
    assert len(carrier.received) == 5
    escalated = events_of(database, PILOT_TENANT, notify_events.CrisisEscalated)
    assert [e.step for e in escalated] == [1, 2, 3, 4]
    with database.unit_of_work(PILOT_TENANT) as uow:
        assert uow.session.scalars(select(EscalationTimerRecord)).all() == []


def test_a_reply_with_the_code_acknowledges_and_stops_the_chain(consumer, database, crises, chain):
    consumer.process(message(crisis_declared("report9"), "event1"))
    with http_stand_in() as carrier, notify_workers(database, carrier):
        eventually(lambda: carrier.received, timeout=5)
        text = carrier.received[0].json()["text"]
        code = re.search(r"回复 (\d{6})", text).group(1)  # type: ignore[union-attr]
        with acting_as(caller(Role.SYSTEM, user="gateway")):
            assert crises.sms_reply("+86 139 0000 0002", f"好的 {code}") == ""  # not a phone that was told
            assert crises.sms_reply("13900000001", "000000") == ""  # no such code
            crisis_id = crises.sms_reply("13900000001", f"收到 {code}")
        assert crisis_id
        time.sleep(LIMIT.total_seconds() + 1)

    assert [s.step for s in steps(database)] == [1]
    with acting_as(caller(Role.CASEWORKER, user="duty1")):
        (view,) = crises.list_crises()[0]
    assert (view.crisis.acknowledged_by, view.crisis.acknowledged_via) == ("duty1", "sms")
    (acknowledged,) = events_of(database, PILOT_TENANT, notify_events.CrisisAcknowledged)
    assert acknowledged.crisis_id == crisis_id and acknowledged.via == "sms"


def test_acknowledging_the_inbox_item_acknowledges_the_crisis(consumer, database, service, crises, chain):
    consumer.process(message(crisis_declared("report9"), "event1"))
    duty = caller(Role.CASEWORKER, user="duty1")
    with acting_as(duty):
        (mine,) = [n for n in service.list_inbox() if n.recipient_user == "duty1"]
        acknowledged = service.acknowledge(mine.notification_id)
        (view,) = crises.list_crises(open_only=False)[0]
        assert crises.list_crises(open_only=True)[0] == []
    assert acknowledged.acknowledged_by == "duty1"
    assert (view.crisis.acknowledged_via, [s.step for s in view.steps]) == ("portal", [1])
    assert crises.escalate_due() == 0


def test_only_the_gateway_passes_sms_replies_and_only_a_towns_staff_acknowledge_its_crises(consumer, crises, chain):
    consumer.process(message(crisis_declared("report9"), "event1"))
    from platform_runtime import errors

    with acting_as(caller(Role.CASEWORKER, user="duty1")), pytest.raises(errors.PermissionDenied):
        crises.sms_reply("13900000001", "123456")
    with acting_as(caller(Role.CASEWORKER, tenant="110111009")), pytest.raises(errors.NotFound):
        crises.acknowledge(code="123456")


def test_a_town_sets_its_own_limit_for_acknowledging(consumer, database, crises, chain):
    directory = DirectoryService(database, default_ack_limit=LIMIT)
    with acting_as(caller(Role.TOWN_ADMIN, user="admin1")):
        assert directory.set_town_settings(7) == (7, 0)  # LIMIT is 2 s: 0 whole minutes
    consumer.process(message(crisis_declared("report9"), "event1"))
    with acting_as(caller(Role.CASEWORKER, user="duty1")):
        (view,) = crises.list_crises()[0]
    assert view.crisis.limit_seconds == 7 * 60
    with database.unit_of_work(PILOT_TENANT) as uow:
        (timer,) = uow.session.scalars(select(EscalationTimerRecord))
        assert timer.due_at - view.crisis.declared_at == timedelta(minutes=7)


def test_the_first_step_is_the_alert_and_later_steps_say_it_went_unanswered(consumer, database, crises, chain):
    consumer.process(message(crisis_declared("report9"), "event1"))
    assert crises.escalate_due() == 0
    with database.unit_of_work(PILOT_TENANT) as uow:
        timer = uow.session.scalars(select(EscalationTimerRecord)).one()
        timer.due_at = utcnow()
        uow.commit()
    assert crises.escalate_due() == 1
    with database.unit_of_work(PILOT_TENANT) as uow:
        rows = uow.session.scalars(select(DeliveryRecord).where(DeliveryRecord.channel == "sms")).all()
        titles = {(row.recipient, row.event_type, row.title) for row in rows}
    assert ("user:duty1", "crisis_declared", "【紧急】危机报告,请立即处置") in titles
    assert ("user:admin1", "crisis_escalation", "【紧急】危机报告无人确认,已升级") in titles
