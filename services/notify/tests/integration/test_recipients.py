"""Recipients as data: the duty officer of the day, the named staff's accounts, the town's own subscriptions
(the district's defaults copied at onboarding)."""

from __future__ import annotations

import pytest
from minorprot.registry.v1 import events_pb2 as registry_events
from minorprot.registry.v1 import registry_pb2
from sqlalchemy import select

from platform_runtime.auth import Role
from platform_runtime.db import Database, utcnow
from platform_runtime.events import PendingEvent
from platform_runtime.tenancy import acting_as
from platform_runtime.topics import PLATFORM_TENANT
from services.notify.adapters.orm import DeliveryRecord, SubscriptionRecord, detached
from services.notify.domain.audience import DEFAULTS
from services.notify.service_layer.directory import DirectoryService
from services.notify.service_layer.recipients import beijing_date
from services.notify.tests.integration.builders import (
    OTHER_TENANT,
    PILOT_TENANT,
    caller,
    crisis_declared,
    visit_overdue,
)
from tests.support.events import message

pytestmark = pytest.mark.integration

ADMIN = caller(Role.TOWN_ADMIN, user="admin1")
DUTY = caller(Role.CASEWORKER, user="duty1")
WORKER = caller(Role.CHILD_DIRECTOR, user="director7")


def told(database: Database, tenant: str = PILOT_TENANT) -> set[tuple[str, str]]:
    with database.unit_of_work(tenant) as uow:
        return {(r.recipient, r.channel) for r in detached(uow, uow.session.scalars(select(DeliveryRecord)))}


@pytest.fixture
def directory(database: Database) -> DirectoryService:
    return DirectoryService(database)


def test_a_crisis_reaches_the_duty_officer_of_the_day_on_every_channel(consumer, database, directory):
    with acting_as(DUTY):
        directory.update_my_contact(
            phone="13900000009", email="duty@town.example", channels_off=["sms"], quiet_from="", quiet_until=""
        )
    with acting_as(ADMIN):
        directory.set_duty_officer(beijing_date(utcnow()), "duty1")
    consumer.process(message(crisis_declared("report9"), "event1"))
    assert {("user:duty1", "in_app"), ("user:duty1", "sms"), ("user:duty1", "email")} <= told(database)


def test_without_a_duty_officer_the_town_admin_answers(consumer, database):
    consumer.process(message(crisis_declared("report9"), "event1"))
    assert told(database) == {("role:caseworker", "in_app"), ("role:town_admin", "in_app")}


def test_a_case_event_tells_the_named_staff_by_account(consumer, database, directory, service):
    with acting_as(WORKER):
        directory.update_my_contact(
            phone="", email="d7@village.example", channels_off=[], quiet_from="", quiet_until=""
        )
    consumer.process(message(visit_overdue("child1", responsible_user_id="director7"), "event1"))
    assert told(database) == {("user:director7", "in_app"), ("user:director7", "email")}
    with acting_as(WORKER):
        (notification,) = service.list_inbox()
    assert notification.recipient_user == "director7"


def test_routine_mail_waits_for_the_end_of_quiet_hours(consumer, database, directory):
    with acting_as(WORKER):
        directory.update_my_contact(
            phone="", email="d7@village.example", channels_off=[], quiet_from="00:00", quiet_until="23:59"
        )
    consumer.process(message(visit_overdue("child1", responsible_user_id="director7"), "event1"))
    with database.unit_of_work(PILOT_TENANT) as uow:
        (mail,) = uow.session.scalars(select(DeliveryRecord).where(DeliveryRecord.channel == "email"))
        assert mail.not_before > utcnow()


def test_a_new_town_gets_the_district_defaults_as_its_own(consumer, database):
    tenant = registry_pb2.Tenant(code=OTHER_TENANT, name="周口店", district_code=OTHER_TENANT[:6])
    event = PendingEvent(
        PLATFORM_TENANT, OTHER_TENANT, "tenant", OTHER_TENANT, registry_events.TenantOnboarded(tenant=tenant)
    )
    consumer.process(message(event, "event1"))
    with database.unit_of_work(OTHER_TENANT) as uow:
        rows = uow.session.scalars(select(SubscriptionRecord)).all()
        assert len(rows) == sum(len(recipients) for recipients in DEFAULTS.values())
    with database.unit_of_work(PILOT_TENANT) as uow:
        assert uow.session.scalars(select(SubscriptionRecord)).all() == []
