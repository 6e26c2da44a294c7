"""A reporter's receipt: one short message telling a reporter who asked for it that their report was received,
with the receipt number to look it up by (SendReceipt, called by the reporting service only).

The reporter's contact comes over gRPC from reporting, never over Kafka, and notify keeps it only until the
message has been sent or has failed for good (`DeliveryService` erases it then). The message is the town's
`report_receipt` template: the receipt number and the public lookup page, nothing about the child, the family,
the place or the reporter (notify is not told them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.db import Database, utcnow
from platform_runtime.tenancy import current_principal
from services.notify.domain.channels import Channel
from services.notify.domain.outbound import DEFAULT_LOCALE, LOCALES, RECEIPT
from services.notify.domain.templates import Content, Priority
from services.notify.service_layer.directory import EMAIL, PHONE
from services.notify.service_layer.recipients import Target
from services.notify.service_layer.services import NotifyService

CALLER = "reporting"  # the one workload identity that may send receipts
RECIPIENT = "reporter"  # as deliveries name the recipient: never the reporter's name or contact
SUBJECT_TYPE = "receipt"  # not "report": a crisis's view of who was told lists the report's deliveries
RECEIPT_NUMBER_MAX = 40
REPORT_ID_MAX = 64
ADDRESS_CHECKS = {Channel.EMAIL: (EMAIL, "not an e-mail address"), Channel.SMS: (PHONE, "not a phone number")}


def event_id(report_id: str) -> str:
    """Deliveries are unique per event, recipient and channel: one receipt per report, however often asked."""
    return f"{RECEIPT}:{report_id}"


class ReceiptService:
    def __init__(self, database: Database, notify: NotifyService, *, now: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self._notify = notify
        self._now = now

    def send_receipt(self, report_id: str, receipt_number: str, channel: str, address: str, locale: str) -> str:
        """Queue the receipt on its channel (once per report); returns the delivery's id."""
        caller = current_principal()
        if caller.role is not Role.SYSTEM or caller.workload != CALLER:
            raise errors.PermissionDenied("only the reporting service sends reporters their receipts")
        chosen, address = _checked(report_id, receipt_number, channel, address)
        if chosen not in self._notify.channels:
            raise errors.Conflict(f"the {chosen.value} channel is not configured in notify")
        content = Content(
            title="",
            body="",
            priority=Priority.NORMAL,
            subject_type=SUBJECT_TYPE,
            subject_id=report_id,
            # The public lookup page, not the staff's link; no town code either (a place, however coarse).
            facts={"receipt": receipt_number, "link": self._notify.public_link("/public/receipt"), "town": ""},
        )
        target = Target(RECIPIENT, chosen, address, locale=locale if locale in LOCALES else DEFAULT_LOCALE)
        with self._database.unit_of_work(caller.tenant) as uow:
            self._notify.deliver(uow, event_id(report_id), RECEIPT, content, [target], self._now())
            delivery_id = self._notify.delivery_of(uow, event_id(report_id), RECIPIENT, chosen)
            uow.commit()
        return delivery_id


def _checked(report_id: str, receipt_number: str, channel: str, address: str) -> tuple[Channel, str]:
    problems = []
    if not report_id.strip() or len(report_id) > REPORT_ID_MAX:
        problems.append(errors.FieldViolation("report_id", "is required (at most 64 characters)"))
    if not receipt_number.strip() or len(receipt_number) > RECEIPT_NUMBER_MAX:
        problems.append(errors.FieldViolation("receipt_number", "is required (at most 40 characters)"))
    chosen = Channel.EMAIL if channel == Channel.EMAIL.value else Channel.SMS if channel == Channel.SMS.value else None
    address = address.strip().replace(" ", "") if chosen is Channel.SMS else address.strip()
    if chosen is None:
        problems.append(errors.FieldViolation("channel", "a receipt goes by email or sms"))
    else:
        pattern, problem = ADDRESS_CHECKS[chosen]
        if not pattern.match(address):
            problems.append(errors.FieldViolation("address", problem))
    if problems or chosen is None:
        raise errors.InvalidInput(problems)
    return chosen, address
