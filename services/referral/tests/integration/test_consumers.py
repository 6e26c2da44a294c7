"""Reports become referrals: through the idempotent consumer, against PostgreSQL as the app role."""

from datetime import timedelta

import pytest
from minorprot.referral.v1 import events_pb2 as referral_events
from minorprot.reporting.v1 import reporting_pb2
from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.tenancy import acting_as
from services.referral.adapters.orm import ReferralRecord
from services.referral.domain.lifecycle import ReferralStatus
from services.referral.service_layer.services import ReferralService
from services.referral.service_layer.views import ReferralView
from services.referral.tests.integration.builders import (
    CHILD_NAME,
    OTHER_TENANT,
    PILOT_TENANT,
    RECEIVED,
    caller,
    linked,
    submitted,
    submitted_before_summaries,
    triage_confirmed,
)
from tests.support.events import events_of, message, outbox_rows

pytestmark = pytest.mark.integration

CASEWORKER = caller(Role.CASEWORKER)


def referrals_of(
    service: ReferralService, report_id: str = "", child_id: str = "", who: Principal = CASEWORKER
) -> list[ReferralView]:
    with acting_as(who):
        return service.list_referrals(child_id=child_id, report_id=report_id).referrals


def test_a_submitted_report_opens_its_referrals_once(consumer, service, database):
    event = submitted("report1", ["out_of_school"])
    consumer.process(message(event, "event1"))
    consumer.process(message(event, "event1"))

    (referral,) = referrals_of(service, report_id="report1")
    assert (referral.agency_code, referral.agency_name) == ("education", "区教委")
    assert referral.status is ReferralStatus.SENT  # opened and sent to the agency in one transaction
    assert referral.rule_code == "SCHOOLING_EDUCATION"
    assert referral.due_at == RECEIVED + timedelta(days=5)
    assert referral.child_id == ""

    rows = outbox_rows(database, PILOT_TENANT)
    assert [row.event_type for row in rows] == [
        "minorprot.referral.v1.ReferralOpened",
        "minorprot.referral.v1.ReferralSent",
    ]
    assert {row.topic for row in rows} == {"referral.referral"}
    assert {row.message_key for row in rows} == {f"{PILOT_TENANT}:{referral.referral_id}"}
    (opened,) = events_of(database, PILOT_TENANT, referral_events.ReferralOpened)
    assert opened.referral.referral_id == referral.referral_id
    assert (opened.referral.agency_code, opened.referral.status, opened.referral.version) == ("education", "opened", 1)
    (sent,) = events_of(database, PILOT_TENANT, referral_events.ReferralSent)
    assert (sent.referral.status, sent.referral.version) == ("sent", 2)
    with database.unit_of_work(PILOT_TENANT) as uow:
        assert len(uow.session.execute(select(database.inbox)).all()) == 1


def test_a_report_delivered_again_under_a_new_event_id_opens_no_second_referral(consumer, service, database):
    event = submitted("report1", ["wandering"])
    consumer.process(message(event, "event1"))
    consumer.process(message(event, "event2"))

    assert [r.agency_code for r in referrals_of(service, report_id="report1")] == ["civil_affairs"]
    assert len(outbox_rows(database, PILOT_TENANT)) == 2  # opened and sent, once


def test_a_crisis_opens_urgent_referrals_due_at_once(consumer, service):
    event = submitted("report2", ["violence_injury_signs"], urgency=reporting_pb2.URGENCY_CRISIS, crisis=True)
    consumer.process(message(event, "event1"))

    referrals = {r.agency_code: r for r in referrals_of(service, report_id="report2")}
    assert set(referrals) == {"civil_affairs", "police", "womens_federation", "town_government", "court"}
    assert all(r.urgent for r in referrals.values())
    assert referrals["police"].due_at == RECEIVED + timedelta(hours=1)
    assert referrals["civil_affairs"].rule_code == "CRISIS_RELIEF_STATION"


def test_a_linked_report_gives_its_referrals_the_child(consumer, service):
    consumer.process(message(submitted("report3", ["improperly_guarded"]), "event1"))
    consumer.process(message(linked("report3", "child7"), "event2"))
    consumer.process(message(linked("report3", "child7"), "event2"))

    referrals = referrals_of(service, child_id="child7")
    assert {r.agency_code for r in referrals} == {"womens_federation", "town_government"}
    assert {r.report_id for r in referrals} == {"report3"}


def test_the_child_hears_once_of_referrals_opened_before_the_link(consumer, database):
    consumer.process(message(submitted("report8", ["improperly_guarded"]), "event1"))
    consumer.process(message(linked("report8", "child8"), "event2"))
    consumer.process(message(linked("report8", "child8"), "event3"))  # a second link to the same child

    told = events_of(database, PILOT_TENANT, referral_events.ReferralLinkedToChild)
    assert sorted(e.referral.agency_code for e in told) == ["town_government", "womens_federation"]
    assert {e.referral.child_id for e in told} == {"child8"}


def test_an_event_written_before_summaries_still_opens_referrals_and_nothing_about_the_child_leaves(
    consumer, service, database
):
    consumer.process(message(submitted_before_summaries("report4", ["out_of_school"]), "event1"))

    (referral,) = referrals_of(service, report_id="report4")
    assert referral.agency_code == "education" and referral.due_at == RECEIVED + timedelta(days=5)
    for row in outbox_rows(database, PILOT_TENANT):
        assert CHILD_NAME.encode() not in row.envelope


def test_a_public_report_opens_referrals_only_once_a_person_confirms_it(consumer, service):
    crisis = reporting_pb2.URGENCY_CRISIS
    situations = ["violence_injury_signs"]
    consumer.process(
        message(submitted("report9", situations, awaiting_triage=True, urgency=crisis, crisis=True), "event1")
    )
    assert referrals_of(service, report_id="report9") == []  # not even the police: a person checks it first
    consumer.process(message(linked("report9", "child9"), "event2"))  # a person linked it meanwhile
    assert referrals_of(service, report_id="report9") == []

    confirmed = triage_confirmed("report9", situations, urgency=crisis, crisis=True)
    consumer.process(message(confirmed, "event3"))
    consumer.process(message(confirmed, "event4"))  # delivered again under a new id: no second referral

    referrals = {r.agency_code: r for r in referrals_of(service, report_id="report9")}
    assert "police" in referrals and referrals["police"].urgent
    assert {r.child_id for r in referrals.values()} == {"child9"}
    # The time limit runs from when the town learnt of the child, not from the confirmation.
    assert referrals["police"].due_at == RECEIVED + timedelta(hours=1)


def test_another_town_sees_none_of_it(consumer, service, database):
    consumer.process(message(submitted("report5", ["out_of_school"]), "event1"))
    (referral,) = referrals_of(service, report_id="report5")

    other = caller(Role.CASEWORKER, tenant=OTHER_TENANT)
    assert referrals_of(service, report_id="report5", who=other) == []
    with acting_as(other), pytest.raises(errors.NotFound):
        service.get_referral(referral.referral_id)
    # Row-level security, not only the query's filter: an unfiltered read in the other town finds nothing.
    with database.unit_of_work(OTHER_TENANT) as uow:
        assert uow.session.scalars(select(ReferralRecord)).all() == []
    assert outbox_rows(database, OTHER_TENANT) == []


def test_the_same_report_id_in_another_town_is_another_report(consumer, service):
    consumer.process(message(submitted("report6", ["out_of_school"]), "event1"))
    consumer.process(message(submitted("report6", ["out_of_school"], tenant=OTHER_TENANT), "event2"))

    other = caller(Role.CASEWORKER, tenant=OTHER_TENANT)
    assert len(referrals_of(service, report_id="report6")) == 1
    assert len(referrals_of(service, report_id="report6", who=other)) == 1


def test_a_report_and_its_link_applied_in_one_batch_give_the_referrals_the_child(consumer, service, database):
    # A consumer that fell behind (a broker restart) fetches both at once and applies them in one transaction.
    outcomes, failure = consumer.process_batch(
        [
            message(submitted("report9", ["improperly_guarded"]), "event1"),
            message(linked("report9", "child9"), "event2"),
        ]
    )

    assert (outcomes, failure) == (["applied", "applied"], None)
    referrals = referrals_of(service, report_id="report9")
    assert {r.child_id for r in referrals} == {"child9"}
    told = events_of(database, PILOT_TENANT, referral_events.ReferralLinkedToChild)
    assert sorted(e.referral.agency_code for e in told) == ["town_government", "womens_federation"]


def test_a_link_applied_before_its_report_in_one_batch_still_names_the_child(consumer, service):
    outcomes, failure = consumer.process_batch(
        [message(linked("report10", "child10"), "event2"), message(submitted("report10", ["wandering"]), "event1")]
    )

    assert (outcomes, failure) == (["applied", "applied"], None)
    assert {r.child_id for r in referrals_of(service, report_id="report10")} == {"child10"}
