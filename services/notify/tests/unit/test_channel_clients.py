"""The channel clients against local servers, without a database: the webhook's per-agency signature, the
carrier's refusals and failures classified."""

from __future__ import annotations

import hmac

import pytest

from services.notify.adapters.channels import HttpSmsCarrier, WebhookSender, agency_key, webhook_signature
from services.notify.domain.channels import Channel, DeliveryError, Outgoing
from services.notify.tests.integration.stand_ins import http_stand_in

KEY = b"k" * 32


def outgoing(channel: Channel, address: str, recipient: str = "agency:education") -> Outgoing:
    return Outgoing(
        delivery_id="d1",
        tenant="110111008",
        channel=channel,
        address=address,
        title="新转介",
        text="详情请登录平台",
        event_type="referral_opened",
        subject_type="referral",
        subject_id="referral1",
        priority="normal",
        recipient=recipient,
    )


def test_a_webhook_is_signed_with_the_agencys_own_key():
    with http_stand_in() as agency:
        WebhookSender(KEY, timeout=5).send(outgoing(Channel.WEBHOOK, agency.url + "/hooks"))
    (received,) = agency.received
    stamp, signature = received.headers["X-Minorprot-Timestamp"], received.headers["X-Minorprot-Signature"]
    own = agency_key(KEY, "110111008", "agency:education")
    assert hmac.compare_digest(signature, webhook_signature(own, stamp, received.body))
    for other in (KEY, agency_key(KEY, "110111009", "agency:education"), agency_key(KEY, "110111008", "agency:police")):
        assert signature != webhook_signature(other, stamp, received.body)
    assert received.json()["subject_id"] == "referral1"


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (401, True), (422, True), (429, False), (503, False)])
def test_the_carriers_answers_are_classified(status, permanent):
    with http_stand_in() as carrier:
        carrier.statuses = [status]
        with pytest.raises(DeliveryError) as failed:
            HttpSmsCarrier(carrier.url, "key", timeout=5).send(outgoing(Channel.SMS, "13900000001", "user:cw1"))
    assert failed.value.permanent is permanent


def test_a_carrier_that_is_not_there_is_tried_again():
    with pytest.raises(DeliveryError) as failed:
        HttpSmsCarrier("http://127.0.0.1:9", "key", timeout=2).send(outgoing(Channel.SMS, "13900000001", "user:cw1"))
    assert not failed.value.permanent
