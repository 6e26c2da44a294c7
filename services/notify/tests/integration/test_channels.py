"""Each channel against its real local server: e-mail to an SMTP server, SMS to a carrier's HTTP API, signed
webhooks to an agency; retries with back-off, permanent failures listed and re-sent, one message per event,
recipient and channel, and a hung SMTP server that holds up nothing else."""

from __future__ import annotations

import hmac
import time
from datetime import datetime, timedelta

import pytest
from minorprot.notify.v1 import events_pb2 as notify_events
from sqlalchemy import create_engine, pool, select, text

from platform_runtime.auth import Role
from platform_runtime.db import Database, utcnow
from platform_runtime.supervisor import Supervisor
from platform_runtime.tenancy import acting_as
from services.notify.adapters.channels import (
    HttpSmsCarrier,
    SmtpMailer,
    WebhookSender,
    agency_key,
    webhook_signature,
)
from services.notify.adapters.orm import DeliveryRecord, detached
from services.notify.domain.channels import Channel, Outgoing
from services.notify.entrypoints.delivery_workers import delivery_worker
from services.notify.service_layer.deliveries import LEASE, DeliveryService
from services.notify.service_layer.directory import DirectoryService
from services.notify.tests.integration.builders import PILOT_TENANT, caller, crisis_declared, referral_sent
from services.notify.tests.integration.stand_ins import http_stand_in, silent_smtp_server, smtp_server
from tests.support.events import events_of, message
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

KEY = b"k" * 32
CASEWORKER = caller(Role.CASEWORKER, user="cw1")
TOWN_ADMIN = caller(Role.TOWN_ADMIN, user="admin1")


class Clock:
    """The time now, moved forward by `ahead`."""

    def __init__(self) -> None:
        self.ahead = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.ahead


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deliveries(database: Database, clock: Clock) -> DeliveryService:
    return DeliveryService(database, now=clock)


@pytest.fixture
def directory(database: Database) -> DirectoryService:
    return DirectoryService(database)


@pytest.fixture
def people(directory: DirectoryService) -> None:
    """A caseworker and the town administrator with phones and e-mail addresses."""
    for who, phone, email in ((CASEWORKER, "13800000001", "cw1@town.example"), (TOWN_ADMIN, "13800000002", "")):
        with acting_as(who):
            directory.update_my_contact(phone=phone, email=email, channels_off=[], quiet_from="", quiet_until="")


def rows(database: Database, channel: Channel) -> list[DeliveryRecord]:
    with database.unit_of_work(PILOT_TENANT) as uow:
        return detached(uow, uow.session.scalars(select(DeliveryRecord).where(DeliveryRecord.channel == channel.value)))


def test_a_crisis_is_texted_to_the_town_staff_through_the_carrier(consumer, database, deliveries, people):
    consumer.process(message(crisis_declared("report9"), "event1"))
    consumer.process(message(crisis_declared("report9"), "event1"))

    with http_stand_in() as carrier:
        sent = deliveries.deliver_due(Channel.SMS, HttpSmsCarrier(carrier.url, "api-key-1", timeout=5))
        assert sent == 2
        assert deliveries.deliver_due(Channel.SMS, HttpSmsCarrier(carrier.url, "api-key-1", timeout=5)) == 0

    assert sorted(r.json()["to"] for r in carrier.received) == ["13800000001", "13800000002"]
    request = carrier.received[0]
    assert request.path == "/messages"
    assert request.headers["Authorization"] == "Bearer api-key-1"
    text = request.json()["text"]
    assert "危机报告" in text and "http://127.0.0.1:8080/notifications/about/report/report9" in text
    assert "abandoned" not in text  # the body's details stay in the portal
    assert {(r.status, r.attempts) for r in rows(database, Channel.SMS)} == {("sent", 1)}
    statuses = [e for e in events_of(database, PILOT_TENANT, notify_events.NotificationDelivered) if e.channel == "sms"]
    assert sorted(e.recipient for e in statuses) == ["user:admin1", "user:cw1"]
    assert {e.status for e in statuses} == {"sent"}


class SendThenLockOut:
    """The real carrier client, after which PostgreSQL turns notify away (its role may not log in, its
    connections are ended), as when the database stops right after a message has left."""

    def __init__(self, carrier: HttpSmsCarrier, postgres_url: str, role: str) -> None:
        self._carrier, self._role = carrier, role
        self._admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)

    def send(self, outgoing: Outgoing) -> str:
        provider_id = self._carrier.send(outgoing)
        self._alter(f'ALTER ROLE "{self._role}" NOLOGIN')
        self._alter("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :role")
        return provider_id

    def let_in(self) -> None:
        self._alter(f'ALTER ROLE "{self._role}" LOGIN')

    def _alter(self, sql: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(sql), {"role": self._role})


def test_a_message_sent_while_the_database_goes_away_is_recorded_once_it_is_back_and_never_sent_again(
    consumer, database, deliveries, people, clock, postgres_url
):
    consumer.process(message(crisis_declared("report8"), "event8"))
    away: list[Exception] = []
    with http_stand_in() as carrier:
        client = HttpSmsCarrier(carrier.url, "k", timeout=5)
        sender = SendThenLockOut(client, postgres_url, str(database.engine.url.username))

        def database_away(error: Exception, seconds: float) -> bool:
            away.append(error)
            sender.let_in()  # back before the next try
            return False

        try:
            assert deliveries.deliver_due(Channel.SMS, sender, database_away=database_away) == 2
        finally:
            sender.let_in()
        clock.ahead = LEASE + timedelta(minutes=1)  # an outcome left unrecorded would be sent again now
        assert deliveries.deliver_due(Channel.SMS, client) == 0

    assert away, "the database never turned notify away"
    assert sorted(r.json()["client_reference"] for r in carrier.received) == sorted(
        r.id for r in rows(database, Channel.SMS)
    )
    assert {(r.status, r.attempts) for r in rows(database, Channel.SMS)} == {("sent", 1)}


def test_e_mail_reaches_a_real_smtp_server(consumer, database, deliveries, people):
    consumer.process(message(crisis_declared("report9"), "event1"))
    with smtp_server() as (port, mailbox):
        assert deliveries.deliver_due(Channel.EMAIL, SmtpMailer("127.0.0.1", port, "noreply@minorprot.local")) == 1
    (mail,) = mailbox.messages
    assert mail["To"] == "cw1@town.example"
    assert mail["Subject"] == "【紧急】危机报告,请立即处置"
    delivery_id = rows(database, Channel.EMAIL)[0].id
    assert mail["X-Minorprot-Delivery"] == delivery_id
    # Sent again after a crash, it is the same message to the mail system (which drops the repeat).
    assert mail["Message-ID"] == f"<{delivery_id}@minorprot.local>"
    assert "/notifications/about/report/report9" in mail.get_content()
    assert rows(database, Channel.EMAIL)[0].status == "sent"


def test_a_signed_webhook_reaches_the_agency_and_is_retried_with_back_off(
    consumer, database, deliveries, directory, clock
):
    with http_stand_in() as agency:
        with acting_as(TOWN_ADMIN):
            directory.set_agency_contact("education", "webhook", agency.url + "/hooks/minorprot")
        consumer.process(message(referral_sent("referral1"), "event1"))
        agency.statuses = [503]
        sender = WebhookSender(KEY, timeout=5)

        assert deliveries.deliver_due(Channel.WEBHOOK, sender) == 1
        (row,) = rows(database, Channel.WEBHOOK)
        assert (row.status, row.attempts) == ("pending", 1) and "503" in row.last_error
        assert deliveries.deliver_due(Channel.WEBHOOK, sender) == 0  # backing off
        clock.ahead += timedelta(seconds=3)
        assert deliveries.deliver_due(Channel.WEBHOOK, sender) == 1

    _first, second = agency.received
    assert second.path == "/hooks/minorprot"
    stamp = second.headers["X-Minorprot-Timestamp"]
    own_key = agency_key(KEY, PILOT_TENANT, "agency:education")
    assert hmac.compare_digest(second.headers["X-Minorprot-Signature"], webhook_signature(own_key, stamp, second.body))
    # Another agency's key (or notify's own) does not sign it.
    for other in (KEY, agency_key(KEY, PILOT_TENANT, "agency:police")):
        assert second.headers["X-Minorprot-Signature"] != webhook_signature(other, stamp, second.body)
    assert second.json()["subject_id"] == "referral1" and second.json()["event_type"] == "referral_sent"
    (row,) = rows(database, Channel.WEBHOOK)
    assert (row.status, row.attempts, row.recipient) == ("sent", 2, "agency:education")


def test_a_refused_message_fails_for_good_is_listed_and_can_be_sent_again(consumer, database, deliveries, people):
    consumer.process(message(crisis_declared("report9"), "event1"))
    with http_stand_in() as carrier:
        carrier.statuses = [400, 400]
        deliveries.deliver_due(Channel.SMS, HttpSmsCarrier(carrier.url, "k", timeout=5))
        with acting_as(TOWN_ADMIN):
            failed = deliveries.list_deliveries(status="failed")
            assert sorted(f.recipient for f in failed) == ["user:admin1", "user:cw1"]
            assert all("HTTP 400" in f.last_error for f in failed)
            again = deliveries.resend(failed[0].id)
        assert (again.status, again.attempts) == ("pending", 0)
        assert deliveries.deliver_due(Channel.SMS, HttpSmsCarrier(carrier.url, "k", timeout=5)) == 1
    assert sorted(r.status for r in rows(database, Channel.SMS)) == ["failed", "sent"]
    failed_events = [
        e for e in events_of(database, PILOT_TENANT, notify_events.NotificationDelivered) if e.status == "failed"
    ]
    assert len(failed_events) == 2


def test_a_hung_smtp_server_holds_up_neither_sms_nor_the_inbox(consumer, database, people):
    service = DeliveryService(database)
    with silent_smtp_server() as smtp_port, http_stand_in() as carrier:
        supervisor = Supervisor(
            [
                delivery_worker(service, Channel.EMAIL, SmtpMailer("127.0.0.1", smtp_port, "n@x.cn", timeout=5), 0.05),
                delivery_worker(service, Channel.SMS, HttpSmsCarrier(carrier.url, "k", timeout=5), 0.05),
            ]
        )
        supervisor.start()
        try:
            time.sleep(0.3)  # the e-mail worker is idle; then a crisis comes in
            started = time.monotonic()
            consumer.process(message(crisis_declared("report9"), "event1"))
            eventually(lambda: len(carrier.received) == 2, timeout=3)
            assert carrier.received[-1].at - started < 2  # well inside the SMTP timeout
            assert [r.status for r in rows(database, Channel.EMAIL)] == ["pending"]
            eventually(lambda: rows(database, Channel.EMAIL)[0].attempts == 1, timeout=10)
            assert "SMTP unavailable" in rows(database, Channel.EMAIL)[0].last_error
        finally:
            supervisor.stop(timeout=10)
    assert {r.status for r in rows(database, Channel.IN_APP)} == {"sent"}


def test_preferences_and_quiet_hours_hold_routine_mail_but_never_a_crisis(consumer, database, directory):
    with acting_as(CASEWORKER):
        directory.update_my_contact(
            phone="13800000001", email="cw1@town.example", channels_off=["sms"], quiet_from="00:00", quiet_until="23:59"
        )
    consumer.process(message(crisis_declared("report9"), "event1"))
    (sms,) = rows(database, Channel.SMS)  # turned off, yet a crisis is texted
    assert sms.not_before <= utcnow()
