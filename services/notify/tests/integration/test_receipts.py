"""SendReceipt over real loopback gRPC: only the reporting service's workload identity may call it, for the town
of its token; one message per report however often asked; the receipt reaches the carrier stand-in and the real
SMTP server with the receipt number and the public lookup page, nothing else; the reporter's address and the
number are erased once it is sent or given up, and never travel on notify's events."""

from __future__ import annotations

import grpc
import pytest
from minorprot.notify.v1 import events_pb2 as notify_events
from minorprot.notify.v1 import notify_pb2
from sqlalchemy import select

from platform_runtime.auth import Role, TokenIssuer, workload_principal
from platform_runtime.tenancy import acting_as
from services.notify.adapters.channels import HttpSmsCarrier, SmtpMailer
from services.notify.adapters.orm import DeliveryRecord, detached
from services.notify.domain.channels import Channel
from services.notify.service_layer.deliveries import DeliveryService
from services.notify.tests.integration.builders import OTHER_TENANT, PILOT_TENANT, caller
from services.notify.tests.integration.stand_ins import http_stand_in, smtp_server
from tests.support.events import events_of

pytestmark = pytest.mark.integration

RECEIPT = "R-T242F2X-Q4KERV3-R7HPCPW"
PHONE = "13912345678"


def as_reporting(secrets, tenant: str = PILOT_TENANT) -> tuple[tuple[str, str], ...]:
    token = TokenIssuer(secrets.workload_keys["reporting"]).issue(workload_principal("reporting", tenant), "notify")
    return (("authorization", f"Bearer {token}"),)


def receipt_request(channel: str = "sms", address: str = PHONE, **fields: str) -> notify_pb2.SendReceiptRequest:
    given = {"report_id": "report1", "receipt_number": RECEIPT, "channel": channel, "address": address} | fields
    return notify_pb2.SendReceiptRequest(**given)


def deliveries(database, tenant: str = PILOT_TENANT) -> list[DeliveryRecord]:
    with database.unit_of_work(tenant) as uow:
        return detached(uow, uow.session.scalars(select(DeliveryRecord)))


def test_a_receipt_is_texted_once_with_its_number_and_the_lookup_page_then_the_address_is_erased(
    stub, database, secrets
):
    first = stub.SendReceipt(receipt_request(), metadata=as_reporting(secrets))
    again = stub.SendReceipt(receipt_request(), metadata=as_reporting(secrets))
    assert first.delivery_id and again.delivery_id == first.delivery_id
    (queued,) = deliveries(database)
    assert (queued.recipient, queued.channel, queued.address, queued.subject_type) == (
        "reporter",
        "sms",
        PHONE,
        "receipt",
    )

    with http_stand_in() as carrier:
        assert DeliveryService(database).deliver_due(Channel.SMS, HttpSmsCarrier(carrier.url, "key", timeout=5)) == 1
    (sent,) = carrier.received
    assert sent.json()["to"] == PHONE
    assert sent.json()["text"] == (
        f"【未成年人保护】您的报告已收到,回执编号 {RECEIPT}。凭回执编号可查询处理进展:http://127.0.0.1:8080/public/receipt"
    )
    (done,) = deliveries(database)
    assert (done.status, done.address, done.text) == ("sent", "", "")
    for event in events_of(database, PILOT_TENANT, notify_events.NotificationDelivered):
        assert PHONE not in str(event) and RECEIPT not in str(event)
    # Asked again after it was sent: still the one message.
    assert stub.SendReceipt(receipt_request(), metadata=as_reporting(secrets)).delivery_id == first.delivery_id
    assert len(deliveries(database)) == 1


def test_a_receipt_by_e_mail_reaches_the_smtp_server_in_the_reporters_language(stub, database, secrets):
    stub.SendReceipt(receipt_request("email", "zhao@example.cn", locale="en"), metadata=as_reporting(secrets))
    with smtp_server() as (port, mailbox):
        mailer = SmtpMailer("127.0.0.1", port, "noreply@minorprot.local", timeout=5)
        assert DeliveryService(database).deliver_due(Channel.EMAIL, mailer) == 1
    (mail,) = mailbox.messages
    assert mail["To"] == "zhao@example.cn" and mail["Subject"] == "Your report was received"
    body = mail.get_content()
    assert RECEIPT in body and "http://127.0.0.1:8080/public/receipt" in body
    assert PILOT_TENANT not in body  # not even the town


def test_the_receipt_goes_to_the_town_of_reportings_token(stub, database, secrets):
    stub.SendReceipt(receipt_request(), metadata=as_reporting(secrets, OTHER_TENANT))
    assert deliveries(database, PILOT_TENANT) == []
    assert len(deliveries(database, OTHER_TENANT)) == 1


@pytest.mark.parametrize("role", [Role.CASEWORKER, Role.TOWN_ADMIN, Role.SYSTEM, Role.PUBLIC])
def test_nobody_but_the_reporting_service_sends_receipts(stub, database, secrets, role):
    with pytest.raises(grpc.RpcError) as refused:
        stub.SendReceipt(
            receipt_request(), metadata=(("authorization", f"Bearer {secrets.token(role=role, audience='notify')}"),)
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as anonymous:
        stub.SendReceipt(receipt_request())
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert deliveries(database) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"channel": "webhook"}, "channel"),
        ({"address": "010-69351234x"}, "address"),
        ({"channel": "email", "address": PHONE}, "address"),
        ({"receipt_number": ""}, "receipt_number"),
        ({"report_id": ""}, "report_id"),
    ],
)
def test_a_receipt_that_cannot_be_sent_is_refused(stub, secrets, fields, field):
    with pytest.raises(grpc.RpcError) as refused:
        stub.SendReceipt(receipt_request(**fields), metadata=as_reporting(secrets))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in refused.value.details()


def test_a_receipt_that_failed_for_good_is_erased_and_cannot_be_sent_again(stub, database, secrets):
    stub.SendReceipt(receipt_request(), metadata=as_reporting(secrets))
    with http_stand_in() as carrier:
        carrier.statuses.append(400)  # the carrier refuses the number for good
        DeliveryService(database).deliver_due(Channel.SMS, HttpSmsCarrier(carrier.url, "key", timeout=5))
    (failed,) = deliveries(database)
    assert (failed.status, failed.address, failed.text) == ("failed", "", "")
    with acting_as(caller(Role.TOWN_ADMIN)), pytest.raises(Exception, match="erased"):
        DeliveryService(database).resend(failed.id)
