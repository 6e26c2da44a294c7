"""What is outside the platform, for the fault suite: a real SMTP server, the SMS carrier's HTTP API and the
agencies' webhook receiver on loopback (the notify tests' stand-ins), and the people and agencies notify is
told to reach through them. What arrived is counted by notify's delivery id (every channel carries it)."""

from __future__ import annotations

import base64
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from services.notify.tests.integration.stand_ins import HttpStandIn, Mailbox, http_stand_in, smtp_server
from tests.faults.helpers import rows
from tests.support.infra import PILOT_TENANT

# The people with contact details (demo accounts): the crisis chain's levels that are people of the town.
CONTACTS = {
    "caseworker": ("13900000101", "caseworker@faults.test"),
    "town_admin": ("13900000102", "town-admin@faults.test"),
    "district_officer": ("13900000103", "district@faults.test"),
}
# Every agency the suite's reports are routed to has a webhook (an agency's own system).
WEBHOOK_AGENCIES = ("civil_affairs", "police", "education")


@dataclass
class Outside:
    smtp_port: int
    mailbox: Mailbox
    carrier: HttpStandIn
    webhooks: HttpStandIn
    signing_key: str

    def env(self) -> dict[str, str]:
        """Notify's settings that point its channels here (SMTP_HOST is the loopback already)."""
        return {
            "SMTP_PORT": str(self.smtp_port),
            "SMS_CARRIER_URL": self.carrier.url,
            "WEBHOOK_SIGNING_KEY": self.signing_key,
        }

    def received(self) -> Counter[str]:
        """How many times each delivery id arrived, on any channel."""
        found: Counter[str] = Counter()
        for mail in list(self.mailbox.messages):
            found[str(mail["X-Minorprot-Delivery"] or "")] += 1
        for request in list(self.carrier.received):
            found[str(request.json().get("client_reference", ""))] += 1
        for request in list(self.webhooks.received):
            found[request.headers.get("X-Minorprot-Delivery", "")] += 1
        return found


@contextmanager
def outside_servers() -> Iterator[Outside]:
    with ExitStack() as servers:
        port, mailbox = servers.enter_context(smtp_server())
        carrier = servers.enter_context(http_stand_in())
        webhooks = servers.enter_context(http_stand_in())
        yield Outside(port, mailbox, carrier, webhooks, base64.b64encode(os.urandom(32)).decode())


def tell_notify_where(outside: Outside, notify_url: str, people: dict[str, dict[str, str]]) -> None:
    """What the people in CONTACTS and the town administrator would enter in the portal, written into notify's
    directory (its database, as its owner: the suite's setup, not what is under test): each person's phone and
    e-mail, each agency's webhook. `people`: username -> the account as `GET /api/v1/me` answers."""
    for username, (phone, email) in CONTACTS.items():
        person = people[username]
        rows(
            notify_url,
            "INSERT INTO contacts (tenant_id, user_id, display_name, role, phone, email, channels_off, quiet_from, "
            "quiet_until, locale, updated_at) VALUES (:town, :user_id, :name, :role, :phone, :email, '', '', '', "
            "'zh-CN', now()) RETURNING user_id",
            town=person["tenant"],
            user_id=person["user_id"],
            name=person["display_name"],
            role=person["role"],
            phone=phone,
            email=email,
        )
    for agency in WEBHOOK_AGENCIES:
        rows(
            notify_url,
            "INSERT INTO agency_contacts (tenant_id, agency_code, channel, address) "
            "VALUES (:town, :agency, 'webhook', :address) RETURNING agency_code",
            town=PILOT_TENANT,
            agency=agency,
            address=f"{outside.webhooks.url}/agency/{agency}",
        )
