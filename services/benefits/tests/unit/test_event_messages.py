"""The benefits domain events as the outbox publishes them (adapters/messages.py): the same contract message, topic
and key as the use cases built themselves before, for every event benefits raises."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from google.protobuf.message import Message
from minorprot.benefits.v1 import benefits_pb2, events_pb2
from minorprot.common.v1 import common_pb2

from platform_runtime.topics import BENEFITS_DISBURSEMENT, BENEFITS_ENTITLEMENT
from services.benefits.adapters import messages
from services.benefits.domain import events
from services.benefits.service_layer.views import EnrolmentView
from tests.support.events import as_published

TOWN = "110111008"
DISTRICT = "110111"
AT = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)

CASES: list[tuple[events.BenefitsEvent, str, str, str, Message]] = [
    (
        events.InsuranceEnrolled("e1", TOWN, "c1", date(2029, 2, 28), AT),
        BENEFITS_ENTITLEMENT,
        "child",
        "c1",
        events_pb2.InsuranceEnrolled(
            enrolment=benefits_pb2.InsuranceEnrolment(
                enrolment_id="e1",
                tenant=TOWN,
                child_id="c1",
                covered_until=common_pb2.Date(year=2029, month=2, day=28),
                enrolled_at=messages.timestamp(AT),
            )
        ),
    ),
    (
        events.EntitlementChanged("n1", "c1", "orphan_basic", "started", date(2026, 12, 1), "approved", 180000),
        BENEFITS_ENTITLEMENT,
        "child",
        "c1",
        events_pb2.EntitlementChanged(
            entitlement_id="n1",
            child_id="c1",
            benefit_code="orphan_basic",
            change="started",
            effective_on=common_pb2.Date(year=2026, month=12, day=1),
            reason="approved",
            monthly_amount_fen=180000,
        ),
    ),
    (
        events.DisbursementRunChanged("r1", DISTRICT, date(2026, 12, 1), "checked", 12, 345600, "u-checker"),
        BENEFITS_DISBURSEMENT,
        "run",
        "r1",
        events_pb2.DisbursementRunChanged(
            run_id="r1",
            district=DISTRICT,
            period=common_pb2.Date(year=2026, month=12, day=1),
            status="checked",
            line_count=12,
            total_fen=345600,
            by="u-checker",
        ),
    ),
    (
        events.PaymentFailed("r1", "11011120261200000001", "c1", "orphan_basic", 180000, "account closed"),
        BENEFITS_DISBURSEMENT,
        "run",
        "r1",
        events_pb2.PaymentFailed(
            run_id="r1",
            reference="11011120261200000001",
            child_id="c1",
            benefit_code="orphan_basic",
            amount_fen=180000,
            reason="account closed",
        ),
    ),
]


@pytest.mark.parametrize(("event", "topic", "aggregate_type", "key", "message"), CASES)
def test_each_event_goes_out_as_its_message_on_its_topic_keyed_by_its_aggregate(
    event: events.BenefitsEvent, topic: str, aggregate_type: str, key: str, message: Message
) -> None:
    pending = messages.pending(TOWN, event)
    assert as_published(pending) == (topic, TOWN, aggregate_type, key, message)


def test_every_kind_of_event_is_mapped() -> None:
    assert {type(case[0]) for case in CASES} == set(events.BenefitsEvent.__args__)


def test_an_enrolment_goes_out_as_the_api_shows_it() -> None:
    """InsuranceEnrolled carries the same InsuranceEnrolment that ListInsuranceEnrolments answers with (and the
    use case built from the same view before)."""
    view = EnrolmentView("e1", TOWN, "c1", "urban_resident_0_3", None, None, AT)
    message = messages.event_message(events.InsuranceEnrolled("e1", TOWN, "c1", None, AT))
    assert message == events_pb2.InsuranceEnrolled(enrolment=messages.enrolment(view))
    assert isinstance(message, events_pb2.InsuranceEnrolled)
    assert message.enrolment.covered_until == common_pb2.Date()  # no end of cover: the empty date, as before
