"""A reporter's receipt end to end, over real loopback gRPC on PostgreSQL: a public report whose reporter ticked
"send me the receipt number" is stored, reporting's worker hands the number to notify as its own workload
identity, and notify's channel workers text it to the carrier stand-in or mail it to the real local SMTP server.
The reporter's address is never in an event, and is gone from both services once the receipt is sent. With notify
away the report is still accepted, and the receipt goes once notify is back."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from minorprot.reporting.v1 import reporting_pb2
from sqlalchemy import create_engine, text

from platform_runtime.auth import Role
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, KafkaSettings
from services.notify.tests.integration.stand_ins import HttpStandIn, Mailbox, http_stand_in, smtp_server
from tests.support.infra import PILOT_TENANT, Secrets, isolated_kafka_env
from tests.support.reporting_stack import Stack, report_request, running_stack
from tests.support.services import Running, service_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PHONE = "13700000042"
EMAIL = "reporter42@example.cn"
FAST = {"DELIVERY_POLL_MS": "50"}


@pytest.fixture(scope="module")
def outside() -> Iterator[tuple[HttpStandIn, int, Mailbox]]:
    with http_stand_in() as carrier, smtp_server() as (port, mailbox):
        yield carrier, port, mailbox


def channels_env(outside: tuple[HttpStandIn, int, Mailbox]) -> dict[str, str]:
    carrier, smtp_port, _ = outside
    return {
        "SMS_CARRIER_URL": carrier.url,
        "SMS_CARRIER_API_KEY": "carrier-key",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        **FAST,
    }


@pytest.fixture(scope="module")
def stack(postgres_url: str, kafka: KafkaSettings, secrets: Secrets, outside) -> Iterator[Stack]:
    with running_stack(
        postgres_url,
        kafka,
        secrets,
        notify_env=channels_env(outside),
        RECEIPT_POLL_MS="50",
        DEADLINE_CHECK_SECONDS="3600",
    ) as running:
        yield running


def public_report(
    stack: Stack, channel: reporting_pb2.Channel.ValueType, *, consent: bool, address: str, locale: str = ""
) -> reporting_pb2.SubmitReportResponse:
    contact = reporting_pb2.ReceiptContact(consent=consent, address=address, locale=locale)
    request = report_request(channel, receipt_contact=contact)
    reply: reporting_pb2.SubmitReportResponse = stack.reporting_stub().SubmitReport(
        request, metadata=stack.auth(Role.PUBLIC)
    )
    return reply


def rows(database_url: str, query: str, **params: str) -> list[tuple[object, ...]]:
    """Rows as the owner role reads them, in the pilot town (the tenant tables' row-level security is forced)."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
            return [tuple(row) for row in connection.execute(text(query), params)]
    finally:
        engine.dispose()


def dumped(running: Running) -> str:
    """Everything the service's outbox and delivery tables hold, as text (events and messages)."""
    outbox = rows(running.database.owner_url, "SELECT encode(envelope, 'escape') FROM outbox")
    return "\n".join(str(row) for row in outbox)


def test_an_anonymous_reporter_is_texted_the_receipt_number_and_stays_anonymous(stack, outside):
    carrier = outside[0]
    reply = public_report(stack, reporting_pb2.CHANNEL_PUBLIC_ANONYMOUS, consent=True, address=PHONE)
    assert not reply.report.HasField("reporter")

    sms = eventually(lambda: [r for r in carrier.received if r.json()["to"] == PHONE], timeout=30, what="the SMS")
    (message,) = sms
    assert reply.receipt_number in message.json()["text"]
    assert "/public/receipt" in message.json()["text"]

    # Gone from reporting once notify took it, and from notify once sent.
    eventually(
        lambda: rows(stack.reporting.database.owner_url, "SELECT count(*) FROM pending_receipts") == [(0,)],
        timeout=10,
        what="the pending receipt to be deleted",
    )
    notify_rows = eventually(
        lambda: rows(
            stack.notify.database.owner_url,
            "SELECT status, address, text, recipient FROM deliveries WHERE event_type = 'report_receipt'"
            " AND subject_id = :report AND status = 'sent'",
            report=reply.report.report_id,
        ),
        timeout=10,
        what="the delivery recorded as sent",
    )
    assert notify_rows == [("sent", "", "", "reporter")]
    # Never on Kafka: neither reporting's events nor notify's carry the address or the receipt number.
    for running in (stack.reporting, stack.notify):
        assert PHONE not in dumped(running) and reply.receipt_number not in dumped(running)
    # The report keeps no trace of the address either.
    report_rows = rows(
        stack.reporting.database.owner_url,
        "SELECT reporter_cipher FROM reports WHERE id = :report",
        report=reply.report.report_id,
    )
    assert report_rows == [(None,)]


def test_a_named_reporter_gets_the_receipt_by_e_mail_in_english(stack, outside):
    mailbox = outside[2]
    reply = public_report(stack, reporting_pb2.CHANNEL_PUBLIC_NAMED, consent=True, address=EMAIL, locale="en")
    mails = eventually(lambda: [m for m in mailbox.messages if m["To"] == EMAIL], timeout=30, what="the mail")
    (mail,) = mails
    assert mail["Subject"] == "Your report was received"
    body = mail.get_content()
    assert reply.receipt_number in body
    for detail in ("赵女士", "13912345678", "良乡火车站", "红色上衣", PILOT_TENANT):  # reporter, place, child, town
        assert detail not in body


def test_without_the_tick_nothing_is_sent_and_an_address_without_it_is_refused(stack, outside):
    carrier, _, mailbox = outside
    before = len(carrier.received), len(mailbox.messages)
    stack.reporting_stub().SubmitReport(
        report_request(reporting_pb2.CHANNEL_PUBLIC_NAMED), metadata=stack.auth(Role.PUBLIC)
    )
    with pytest.raises(Exception) as refused:
        public_report(stack, reporting_pb2.CHANNEL_PUBLIC_ANONYMOUS, consent=False, address=PHONE)
    assert "receipt_contact.consent" in str(refused.value)
    assert rows(stack.reporting.database.owner_url, "SELECT count(*) FROM pending_receipts") == [(0,)]
    assert (len(carrier.received), len(mailbox.messages)) == before


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_with_notify_away_the_report_is_accepted_and_the_receipt_goes_once_it_is_back(
    postgres_url, kafka, secrets, outside
):
    from services.notify import bootstrap as notify_bootstrap
    from services.notify.settings import load_settings as notify_settings

    carrier = outside[0]
    port = free_port()  # where notify will be, once it is back
    with (
        running_stack(postgres_url, kafka, secrets, NOTIFY_TARGET=f"127.0.0.1:{port}", RECEIPT_POLL_MS="50") as stack,
        ExitStack() as later,
    ):
        reply = public_report(stack, reporting_pb2.CHANNEL_PUBLIC_ANONYMOUS, consent=True, address="13700000043")
        assert reply.receipt_number
        tried = eventually(
            lambda: rows(
                stack.reporting.database.owner_url,
                "SELECT attempts, last_error FROM pending_receipts WHERE attempts > 0",
            ),
            timeout=20,
            what="a failed try to be recorded",
        )
        assert "notify SendReceipt failed" in str(tried[0][1])  # DEADLINE_EXCEEDED: nobody answers

        env = service_env(
            stack.notify.database,
            kafka,
            secrets,
            GRPC_PORT=str(port),
            **channels_env(outside),
            **isolated_kafka_env(kafka),
        )
        server = build(notify_bootstrap.definition(notify_settings(EnvReader(env))))
        server.start()
        later.callback(server.stop, 1)

        stack.clock.advance(seconds=5)  # reporting's clock (the test's): the next try is due
        sms = eventually(
            lambda: [r for r in carrier.received if r.json()["to"] == "13700000043"], timeout=30, what="the SMS"
        )
        assert len(sms) == 1 and reply.receipt_number in sms[0].json()["text"]
