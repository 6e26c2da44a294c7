"""The notifications pages and the carrier's inbound SMS route, against fake services (the pages are tested
in the browser against the real notify service in tests/e2e/test_notify_browser.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import replace

import pytest
from flask.testing import FlaskClient
from minorprot.notify.v1 import notify_pb2

from gateway import bootstrap
from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.tests.unit.conftest import csrf_from, login
from gateway.tests.unit.fakes import FakeBackends

KEY = b"s" * 32


@pytest.mark.parametrize(
    "path",
    [
        "/notifications",
        "/notifications/crises",
        "/notifications/rota",
        "/notifications/subscriptions",
        "/notifications/me",
        "/notifications/templates",
    ],
)
def test_every_page_opens_for_a_caseworker(client: FlaskClient, path: str) -> None:
    login(client)
    assert client.get(path).status_code == 200


def test_only_the_town_admin_sees_failed_deliveries_or_changes_the_rota(
    client: FlaskClient, backends: FakeBackends
) -> None:
    login(client)
    assert client.get("/notifications/deliveries").status_code == 403
    token = csrf_from(client, "/notifications/rota")
    assert client.post("/notifications/rota", data={"csrf_token": token}).status_code == 403
    assert not [call for call in backends.calls if call[0] == "SetDutyOfficer"]


def test_a_link_in_a_message_leads_to_the_report(client: FlaskClient) -> None:
    login(client)
    reply = client.get("/notifications/about/report/r1")
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/reports/r1")


@pytest.fixture
def signed_app_client(settings: GatewaySettings, backends: FakeBackends) -> FlaskClient:
    signed = replace(settings, sms_inbound_key=KEY)
    return create_app(signed, bootstrap.build(signed, backends=backends)).test_client()


def post_reply(client: FlaskClient, body: bytes, *, key: bytes = KEY, age: int = 0) -> int:
    stamp = str(int(time.time()) - age)
    signature = "v1=" + hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {"X-Minorprot-Timestamp": stamp, "X-Minorprot-Signature": signature, "Content-Type": "application/json"}
    return client.post("/notifications/sms/inbound", data=body, headers=headers).status_code


def test_a_signed_reply_from_the_carrier_is_passed_to_notify(
    signed_app_client: FlaskClient, backends: FakeBackends
) -> None:
    body = json.dumps({"from": "+8613900000001", "text": "收到 482913"}).encode()
    assert post_reply(signed_app_client, body) == 200
    caller, request = backends.last("ReceiveSmsReply")
    assert isinstance(request, notify_pb2.ReceiveSmsReplyRequest)
    assert (request.from_phone, request.text) == ("+8613900000001", "收到 482913")
    assert caller.principal is not None


@pytest.mark.parametrize(
    ("key", "age", "body"),
    [
        (b"x" * 32, 0, b'{"from": "1", "text": "2"}'),  # not the carrier
        (KEY, 3600, b'{"from": "1", "text": "2"}'),  # replayed
    ],
)
def test_an_unsigned_or_replayed_reply_is_refused(
    signed_app_client: FlaskClient, backends: FakeBackends, key: bytes, age: int, body: bytes
) -> None:
    assert post_reply(signed_app_client, body, key=key, age=age) == 401
    assert not [call for call in backends.calls if call[0] == "ReceiveSmsReply"]


def test_the_route_is_off_without_a_key(client: FlaskClient) -> None:
    assert post_reply(client, b"{}") == 404


def test_a_malformed_reply_is_refused(signed_app_client: FlaskClient) -> None:
    assert post_reply(signed_app_client, b"not json") == 400


def test_the_town_admins_forms_become_the_services_calls(client: FlaskClient, backends: FakeBackends) -> None:
    login(client, "town_admin")
    token = csrf_from(client, "/notifications/subscriptions")
    form = {"csrf_token": token, "form": "subscription", "event_type": "crisis_declared", "recipient": "duty_officer"}
    client.post("/notifications/subscriptions", data=form | {"channels": ["sms", "email"]})
    _, subscription = backends.last("SetSubscription")
    assert (subscription.subscription.recipient, list(subscription.subscription.channels)) == (
        "duty_officer",
        ["sms", "email"],
    )
    agency = {"csrf_token": token, "form": "agency", "agency_code": "police", "channel": "sms", "address": "110"}
    client.post("/notifications/subscriptions", data=agency)
    _, contact = backends.last("SetAgencyContact")
    assert (contact.contact.agency_code, contact.contact.address) == ("police", "110")
    client.post(
        "/notifications/subscriptions", data={"csrf_token": token, "form": "settings", "crisis_ack_minutes": "x"}
    )
    _, settings = backends.last("SetTownSettings")
    assert settings.settings.crisis_ack_minutes == -1  # refused by the service, never taken as the default
