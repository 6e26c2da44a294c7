"""The channels a message leaves on, what one delivery carries, and how long to wait before trying again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Protocol


class Channel(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"


# The channels with a worker of their own: a dead SMTP server never holds up an SMS.
OUTBOUND = (Channel.EMAIL, Channel.SMS, Channel.WEBHOOK)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # for good: listed for operators, who may send it again


@dataclass(frozen=True)
class Outgoing:
    """One message as a channel client sends it: a short text and a portal link, never case data."""

    delivery_id: str
    tenant: str
    channel: Channel
    address: str
    title: str
    text: str
    event_type: str
    subject_type: str
    subject_id: str
    priority: str
    recipient: str = ""  # user:<id>, agency:<code>


class DeliveryError(Exception):
    """A channel could not take a message. `permanent`: trying again cannot help (a refused address, a 4xx)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Sender(Protocol):
    def send(self, message: Outgoing) -> str:
        """Hand one message to the channel; returns the provider's message id. Raises DeliveryError."""
        ...


# Back-off between attempts; after the last one a delivery has failed for good.
RETRY_DELAYS = (
    timedelta(seconds=2),
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def retry_delay(attempts: int) -> timedelta | None:
    """The wait after `attempts` failed attempts; None when there is no attempt left."""
    return RETRY_DELAYS[attempts - 1] if attempts < MAX_ATTEMPTS else None
