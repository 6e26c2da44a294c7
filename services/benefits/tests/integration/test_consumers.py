"""Registered children are considered for the 0–3 insurance: through the idempotent consumer, on PostgreSQL."""

from datetime import UTC, date, datetime

import pytest
from minorprot.benefits.v1 import events_pb2 as benefits_events
from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.tenancy import acting_as
from services.benefits.adapters.orm import InsuranceEnrolmentRecord
from services.benefits.service_layer.services import BenefitsService
from services.benefits.service_layer.views import EnrolmentView
from services.benefits.tests.integration.builders import (
    CHILD_NAME,
    OTHER_TENANT,
    PILOT_TENANT,
    caller,
    registered,
    registered_before_trimming,
)
from tests.support.events import events_of, message, outbox_rows

pytestmark = pytest.mark.integration

CASEWORKER = caller(Role.CASEWORKER)


def enrolments(service: BenefitsService, who: Principal = CASEWORKER, child_id: str = "") -> list[EnrolmentView]:
    with acting_as(who):
        return service.list_enrolments(child_id)[0]


def decisions(database, tenant: str = PILOT_TENANT) -> dict[str, tuple[str, str | None]]:
    """child id -> (status, reason not eligible), read without any filter: row-level security alone scopes it."""
    with database.unit_of_work(tenant) as uow:
        rows = uow.session.scalars(select(InsuranceEnrolmentRecord))
        return {row.child_id: (row.status, row.ineligible_reason) for row in rows}


def test_an_eligible_child_is_enrolled_once(consumer, service, database):
    event = registered("child1", date(2024, 1, 10))
    consumer.process(message(event, "event1"))
    consumer.process(message(event, "event1"))
    consumer.process(message(event, "event2"))  # the registry's event again, under another id

    (enrolment,) = enrolments(service)
    assert enrolment.child_id == "child1"
    assert enrolment.covered_until == date(2027, 1, 9)
    assert enrolment.policy_code == "INFANT_INSURANCE_0_3"

    (row,) = outbox_rows(database, PILOT_TENANT)
    assert (row.topic, row.message_key) == ("benefits.entitlement", f"{PILOT_TENANT}:child1")
    (enrolled,) = events_of(database, PILOT_TENANT, benefits_events.InsuranceEnrolled)
    assert enrolled.enrolment.enrolment_id == enrolment.enrolment_id
    assert (enrolled.enrolment.covered_until.year, enrolled.enrolment.covered_until.day) == (2027, 9)


def test_a_registration_written_before_the_event_was_trimmed_is_still_followed(consumer, service, database):
    consumer.process(message(registered_before_trimming("child1", date(2024, 1, 10)), "event1"))

    (enrolment,) = enrolments(service)
    assert (enrolment.child_id, enrolment.covered_until) == ("child1", date(2027, 1, 9))
    (row,) = outbox_rows(database, PILOT_TENANT)
    assert CHILD_NAME.encode() not in row.envelope  # the old event's name is not passed on


def test_a_child_registered_elsewhere_is_recorded_as_not_eligible_without_an_event(consumer, service, database):
    consumer.process(message(registered("child2", date(2024, 1, 10), household="130102001001"), "event1"))

    assert enrolments(service) == []
    assert decisions(database) == {"child2": ("ineligible", "household_registration_not_local")}
    assert outbox_rows(database, PILOT_TENANT) == []


def test_the_age_is_counted_in_beijing_calendar_days(consumer, service, database):
    # 16:30 UTC on 5 May is 00:30 on 6 May in Beijing: a child born on 6 April is 30 days old there.
    late_evening = datetime(2024, 5, 5, 16, 30, tzinfo=UTC)
    consumer.process(message(registered("child3", date(2024, 4, 6), at=late_evening), "event1"))
    consumer.process(message(registered("child4", date(2024, 4, 7), at=late_evening), "event2"))

    assert [e.child_id for e in enrolments(service)] == ["child3"]
    assert decisions(database) == {
        "child3": ("enrolled", None),
        "child4": ("ineligible", "younger_than_minimum_age"),
    }


def test_enrolments_are_listed_per_child(consumer, service):
    consumer.process(message(registered("child5", date(2023, 6, 1)), "event1"))
    consumer.process(message(registered("child6", date(2023, 7, 1)), "event2"))
    assert [e.child_id for e in enrolments(service, child_id="child6")] == ["child6"]
    assert {e.child_id for e in enrolments(service)} == {"child5", "child6"}


def test_another_town_sees_none_of_it(consumer, service, database):
    consumer.process(message(registered("child1", date(2024, 1, 10)), "event1"))

    assert enrolments(service, caller(Role.CASEWORKER, tenant=OTHER_TENANT)) == []
    assert decisions(database, OTHER_TENANT) == {}
    assert outbox_rows(database, OTHER_TENANT) == []


@pytest.mark.parametrize("role", [Role.TOWN_ADMIN, Role.DISTRICT_OFFICER, Role.FINANCE_AUDITOR])
def test_town_district_and_finance_staff_read_enrolments(consumer, service, role):
    consumer.process(message(registered("child1", date(2024, 1, 10)), "event1"))
    assert len(enrolments(service, caller(role))) == 1


@pytest.mark.parametrize("role", [Role.AGENCY_OFFICER, Role.MANDATED_REPORTER, Role.PUBLIC])
def test_other_roles_do_not(service, role):
    with acting_as(caller(role)), pytest.raises(errors.PermissionDenied):
        service.list_enrolments()[0]


def test_a_corrected_birth_date_insures_a_baby_registered_too_young_once(consumer, service, database):
    from datetime import timedelta

    from minorprot.common.v1 import common_pb2
    from minorprot.registry.v1 import events_pb2 as registry_events

    from platform_runtime.events import PendingEvent
    from platform_runtime.topics import REGISTRY_CHILD

    today = datetime.now(UTC).date()
    consumer.process(message(registered("baby", today - timedelta(days=5), at=datetime.now(UTC)), "event1"))
    assert decisions(database) == {"baby": ("ineligible", "younger_than_minimum_age")}
    born = today - timedelta(days=60)
    corrected = registry_events.ChildBirthDateCorrected(
        child_id="baby", birth_date=common_pb2.Date(year=born.year, month=born.month, day=born.day)
    )
    event = PendingEvent(REGISTRY_CHILD, PILOT_TENANT, "child", "baby", corrected)
    consumer.process(message(event, "event2"))
    consumer.process(message(event, "event2"))
    consumer.process(message(event, "event3"))  # the same correction again, under another id
    assert decisions(database) == {"baby": ("enrolled", None)}
    assert [e.enrolment.child_id for e in events_of(database, PILOT_TENANT, benefits_events.InsuranceEnrolled)] == [
        "baby"
    ]
