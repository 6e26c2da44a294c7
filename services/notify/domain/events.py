"""What notify tells the others, as the domain says it (past tense). `adapters/messages.py` maps each to its
`minorprot.notify.v1` message, topic (notify.delivery) and key; the use cases never build protobuf.

A delivery's outcome goes out once it is known: an in-app one at once (it is the notification in the inbox), any
other when its channel's worker sent it or gave up. A crisis's steps and its acknowledgement go out for the
report's timeline, with names beside the recipients and never an address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.notify.domain.channels import Channel, DeliveryStatus
from services.notify.domain.templates import Priority


@dataclass(frozen=True)
class NotificationDelivered:
    """A delivery was sent or failed for good. `body` is the inbox item's text (in-app only; a message sent on
    another channel goes out without it), `notification_id` the inbox item's ("" for another channel)."""

    delivery_id: str
    recipient: str  # role:<role> or user:<id>
    channel: Channel
    status: DeliveryStatus
    attempts: int
    notification_id: str
    title: str
    body: str
    priority: Priority
    subject_type: str
    subject_id: str
    created_at: datetime


@dataclass(frozen=True)
class CrisisEscalated:
    """A step of a crisis's chain was told (step 1 at the alert, then each time it went unacknowledged)."""

    crisis_id: str
    report_id: str
    step: int
    level: str
    recipients: tuple[str, ...]
    recipient_names: tuple[str, ...]  # beside each recipient, the person's name ("" for a role's inbox)
    at: datetime


@dataclass(frozen=True)
class CrisisAcknowledged:
    """Someone acknowledged a crisis (in the portal, by SMS or over the API); its chain stops."""

    crisis_id: str
    report_id: str
    acknowledged_by: str
    acknowledged_by_name: str
    via: str
    at: datetime


NotifyEvent = NotificationDelivered | CrisisEscalated | CrisisAcknowledged
