"""A reporter's receipt by SMS or e-mail: only with their consent, where it goes, what is refused, how it is kept
for notify, and how the handing-over is retried and given up (on fakes: the SQL and gRPC sides are in
tests/integration/test_reporter_receipts.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.pii import BlindIndex
from platform_runtime.tenancy import acting_as
from services.reporting.domain import receipt_sending
from services.reporting.domain.model import Channel, ReceiptContact, Reporter, Submission
from services.reporting.domain.receipt_sending import ReceiptChannel, ReceiptDestination, destination, retry_delay
from services.reporting.domain.receipts import parse_receipt
from services.reporting.service_layer.receipt_sending import PendingReceipt, ReceiptNotTaken, ReceiptSender
from services.reporting.service_layer.services import ReportingService
from services.reporting.tests.unit import builders
from services.reporting.tests.unit.fakes import FakeChildDirectory, FakeReportStore

TOWN = builders.LIANGXIANG
PUBLIC = Principal("u-public", "public", Role.PUBLIC, TOWN, TOWN[:6])


def with_contact(channel: Channel = Channel.PUBLIC_NAMED, **contact: Any) -> Submission:
    return builders.submission(channel, receipt_contact=ReceiptContact(**contact))


def problems(submission: Submission) -> dict[str, str]:
    return {v.field: v.message for v in receipt_sending.problems(submission)}


# -- where it goes -------------------------------------------------------------------------------------------


def test_a_mobile_number_gets_an_sms_and_an_email_address_an_email():
    assert destination(with_contact(consent=True, address="139 1234 5678")) == ReceiptDestination(
        ReceiptChannel.SMS, "13912345678", "zh-CN"
    )
    assert destination(with_contact(consent=True, address="zhao@example.cn", locale="en")) == ReceiptDestination(
        ReceiptChannel.EMAIL, "zhao@example.cn", "en"
    )


def test_a_named_reporter_who_consents_without_an_address_gets_it_on_their_phone():
    found = destination(with_contact(consent=True))
    assert found == ReceiptDestination(ReceiptChannel.SMS, "13912345678", "zh-CN")


def test_nothing_is_sent_without_consent_even_with_a_phone_left_for_staff():
    assert destination(builders.submission(Channel.PUBLIC_NAMED)) is None  # no receipt_contact at all
    assert destination(with_contact(consent=False)) is None
    assert problems(with_contact(consent=False)) == {}


def test_an_address_without_the_consent_tick_is_refused_not_dropped():
    assert "receipt_contact.consent" in problems(with_contact(consent=False, address="13912345678"))


def test_an_anonymous_reporter_may_leave_an_address_for_the_receipt_alone():
    anonymous = with_contact(Channel.PUBLIC_ANONYMOUS, consent=True, address="13912345678")
    assert anonymous.reporter is None
    assert destination(anonymous) == ReceiptDestination(ReceiptChannel.SMS, "13912345678", "zh-CN")
    assert "receipt_contact.address" in problems(with_contact(Channel.PUBLIC_ANONYMOUS, consent=True))


@pytest.mark.parametrize("address", ["010-69351234", "not an address", "1391234567", "x@" + "y" * 200 + ".cn"])
def test_a_landline_or_anything_but_a_mobile_or_email_is_refused(address):
    assert "receipt_contact.address" in problems(with_contact(consent=True, address=address))


def test_a_named_reporters_landline_cannot_take_the_receipt():
    landline = builders.submission(
        Channel.PUBLIC_NAMED,
        reporter=Reporter("钱先生", "010-69351234"),
        receipt_contact=ReceiptContact(consent=True),
    )
    assert "receipt_contact.address" in problems(landline)


def test_an_unknown_language_is_sent_in_chinese():
    found = destination(with_contact(consent=True, locale="fr"))
    assert found is not None and found.locale == "zh-CN"


# -- kept with the report --------------------------------------------------------------------------------------


@pytest.fixture
def store() -> FakeReportStore:
    return FakeReportStore()


@pytest.fixture
def service(store: FakeReportStore) -> ReportingService:
    return ReportingService(store, BlindIndex(b"k" * 32), FakeChildDirectory(), now=lambda: builders.NOW)


def test_a_consenting_reporters_receipt_is_kept_with_the_report_and_not_in_any_event(service, store):
    submission = with_contact(Channel.PUBLIC_ANONYMOUS, consent=True, address="zhao@example.cn")
    with acting_as(PUBLIC):
        outcome = service.submit(submission)
    receipt, to = store.receipts_to_send[outcome.report.report_id]
    assert parse_receipt(receipt) == outcome.receipt == receipt
    assert to == ReceiptDestination(ReceiptChannel.EMAIL, "zhao@example.cn", "zh-CN")
    assert outcome.report.submission.reporter is None  # still anonymous
    for event in store.outbox:
        assert b"zhao@example.cn" not in event.payload.SerializeToString()


def test_no_receipt_is_kept_without_consent_and_a_refused_address_keeps_no_report(service, store):
    with acting_as(PUBLIC):
        service.submit(builders.submission(Channel.PUBLIC_NAMED))
        with pytest.raises(errors.InvalidInput) as refused:
            service.submit(with_contact(consent=True, address="010-69351234"))
    assert store.receipts_to_send == {}
    assert len(store.rows) == 1
    assert [v.field for v in refused.value.violations] == ["receipt_contact.address"]


# -- handed to notify ------------------------------------------------------------------------------------------

START = datetime(2024, 5, 20, 2, 0, tzinfo=builders.NOW.tzinfo)


class Queue:
    """The pending receipts as the worker sees them."""

    def __init__(self, *pending: PendingReceipt) -> None:
        self.rows = {p.report_id: (p, START) for p in pending}
        self.errors: dict[str, str] = {}

    def due(self, now: datetime, limit: int) -> list[PendingReceipt]:
        return [p for p, due in self.rows.values() if due <= now][:limit]

    def taken(self, report_id: str) -> None:
        del self.rows[report_id]

    def retry(self, report_id: str, due_at: datetime, error: str) -> None:
        pending, _ = self.rows[report_id]
        self.rows[report_id] = (replace(pending, attempts=pending.attempts + 1), due_at)
        self.errors[report_id] = error

    def backlog(self, now: datetime) -> tuple[int, float]:
        return len(self.rows), 0.0


class Notify:
    def __init__(self, *answers: Exception | None) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def send_receipt(self, pending: PendingReceipt) -> str:
        self.asked.append(pending.report_id)
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer
        return "delivery-1"


def pending(report_id: str = "rep-1") -> PendingReceipt:
    to = ReceiptDestination(ReceiptChannel.SMS, "13912345678", "zh-CN")
    return PendingReceipt(TOWN, report_id, "R-T242F2X-Q4KERV3-R7HPCPW", to, START, 0)


def test_a_receipt_notify_takes_leaves_the_queue():
    queue, notify = Queue(pending()), Notify()
    done = ReceiptSender(queue, notify, now=lambda: START).send_due()
    assert (done.taken, notify.asked, queue.rows) == (1, ["rep-1"], {})


def test_a_receipt_notify_cannot_take_now_is_tried_again_later_then_taken():
    queue, notify = Queue(pending()), Notify(ReceiptNotTaken("UNAVAILABLE"))
    now = [START]
    sender = ReceiptSender(queue, notify, now=lambda: now[0])
    assert sender.send_due().retried == 1
    assert queue.errors["rep-1"] == "UNAVAILABLE" and queue.rows["rep-1"][1] == START + timedelta(seconds=5)
    assert sender.send_due().tried == 0  # not due yet
    now[0] = START + timedelta(seconds=5)
    assert sender.send_due().taken == 1 and queue.rows == {}


def test_a_receipt_refused_for_good_or_a_day_old_is_given_up_and_its_contact_deleted():
    queue = Queue(pending("rep-1"), pending("rep-2"))
    notify = Notify(ReceiptNotTaken("INVALID_ARGUMENT", permanent=True), ReceiptNotTaken("UNAVAILABLE"))
    done = ReceiptSender(queue, notify, now=lambda: START + timedelta(days=1)).send_due()
    assert (done.given_up, queue.rows) == (2, {})


def test_the_waits_grow_to_half_an_hour_and_stop_after_a_day():
    assert [retry_delay(n, timedelta()) for n in (1, 2, 5, 9)] == [
        timedelta(seconds=5),
        timedelta(seconds=30),
        timedelta(minutes=30),
        timedelta(minutes=30),
    ]
    assert retry_delay(3, timedelta(hours=23)) == timedelta(minutes=2)
    assert retry_delay(3, timedelta(days=1)) is None
