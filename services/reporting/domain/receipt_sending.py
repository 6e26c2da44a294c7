"""Sending a reporter their receipt number, when they ask for it: where it goes, and how it is retried.

The reporter ticks "send me the receipt number" (`ReceiptContact.consent`) and gives a mobile number or an e-mail
address, or lets the phone they left as a named reporter be used. Nothing is sent without the tick, and an address
typed without it is refused rather than silently dropped, so nobody believes a receipt is coming that is not.
The message itself is notify's (`report_receipt`: the receipt number and the public lookup page, nothing else).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from services.reporting.domain.errors import Violation
from services.reporting.domain.model import Submission
from services.reporting.domain.validation import is_email, is_mobile

LOCALES = ("zh-CN", "en")
ADDRESS_MAX_CHARS = 200
# Waits between tries to hand the receipt to notify; then every 30 minutes, until it is a day old.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
)
GIVE_UP_AFTER = timedelta(days=1)  # the receipt is news on the day; the contact is not kept longer


class ReceiptChannel(StrEnum):
    """Notify's names of the channels."""

    SMS = "sms"
    EMAIL = "email"


@dataclass(frozen=True)
class ReceiptDestination:
    channel: ReceiptChannel
    address: str
    locale: str


def _address(submission: Submission) -> str:
    contact = submission.receipt_contact
    if contact is None:
        return ""
    given = "".join(contact.address.split())
    if given:
        return given
    return "".join((submission.reporter.phone or "").split()) if submission.reporter else ""


def destination(submission: Submission) -> ReceiptDestination | None:
    """Where the receipt number goes; None without the reporter's consent (or with an address `problems` refuses)."""
    contact = submission.receipt_contact
    if contact is None or not contact.consent:
        return None
    address = _address(submission)
    locale = contact.locale if contact.locale in LOCALES else LOCALES[0]
    if len(address) > ADDRESS_MAX_CHARS:
        return None
    if is_mobile(address):
        return ReceiptDestination(ReceiptChannel.SMS, address, locale)
    if is_email(address):
        return ReceiptDestination(ReceiptChannel.EMAIL, address, locale)
    return None


def problems(submission: Submission) -> Iterator[Violation]:
    contact = submission.receipt_contact
    if contact is None:
        return
    if not contact.consent:
        if contact.address.strip():
            yield Violation(
                "receipt_contact.consent", "tick it to be sent the receipt number, or leave the address out"
            )
        return
    address = _address(submission)
    if not address:
        yield Violation("receipt_contact.address", "give a mobile number or an e-mail address for the receipt number")
    elif destination(submission) is None:
        yield Violation(
            "receipt_contact.address",
            "must be a mobile number (by SMS) or an e-mail address, at most 200 characters (a landline takes no SMS)",
        )


def retry_delay(attempts: int, age: timedelta) -> timedelta | None:
    """The wait after `attempts` failed tries of a receipt `age` old; None: give up (it is a day old)."""
    if age >= GIVE_UP_AFTER:
        return None
    return RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
