"""The periodic review (复核) of approved entitlements, on PostgreSQL: the supervised worker marks what is due
(yearly under the sample policy) and tells the caseworker once per due date, across restarts and replicas;
the application that granted it shows "review due"; the town's review done (RecordReview) moves the next one
a cycle on."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from minorprot.benefits.v1 import events_pb2 as benefits_events

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.supervisor import Supervisor
from platform_runtime.tenancy import acting_as
from services.benefits.bootstrap import Services
from services.benefits.domain.policy import sample_policy
from services.benefits.entrypoints.workers import REVIEWS, reviews_round, reviews_worker
from services.benefits.service_layer import eligibility
from services.benefits.service_layer.applications import Applications
from services.benefits.service_layer.register_events import RegisterFollower
from tests.support.events import events_of
from tests.support.infra import DISTRICT, PILOT_TENANT
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

APPROVED = datetime(2024, 3, 4, 2, 0, tzinfo=UTC)  # Monday 4 March 2024, 10:00 in Beijing
DOCUMENTS = ["申请书", "户口簿", "监护人身份证明", "低保或低收入证明"]


def person(user: str, role: Role, tenant: str = PILOT_TENANT) -> Principal:
    return Principal(user_id=user, display_name=user, role=role, tenant=tenant, district=tenant[:6])


CASEWORKER = person("cw", Role.CASEWORKER)
TOWN_ADMIN = person("ta", Role.TOWN_ADMIN)
OFFICER = person("civil-affairs", Role.DISTRICT_OFFICER, DISTRICT)


@pytest.fixture
def approved(database, services: Services) -> str:
    """An allowance approved from 1 March 2024 for child1 (and a second child's, under no application)."""
    with acting_as(person("admin", Role.DISTRICT_ADMIN, DISTRICT)):
        services.catalogue.save(replace(sample_policy(DISTRICT), version=0))
    with database.unit_of_work(PILOT_TENANT) as uow:
        for child in ("child1", "child2"):
            eligibility.record_child(
                uow, child, birth_date=date(2015, 1, 1), household_division_code="110111008001", at=APPROVED
            )
        eligibility.start(uow, "child2", "BLA_ORPHAN", date(2024, 6, 30), "approved", at=APPROVED)
        uow.commit()
    applications = Applications(database, now=lambda: APPROVED)
    with acting_as(CASEWORKER):
        draft = applications.create("child1", "BLA_POOR", documents=DOCUMENTS, starts_on=date(2024, 3, 1))
        applications.submit(draft.application_id)
    with acting_as(TOWN_ADMIN):
        applications.town_review(draft.application_id, approve=True)
    with acting_as(OFFICER):
        applications.district_decide(draft.application_id, approve=True)
    return draft.application_id


def follower(database, day: date) -> RegisterFollower:
    """The worker's follower as a process started on `day` (10:00 in Beijing) would build it."""
    moment = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
    return RegisterFollower(database, Applications(database, now=lambda: moment), now=lambda: moment)


def reminders(database) -> list[tuple[str, date]]:
    return [
        (e.child_id, date(e.effective_on.year, e.effective_on.month, e.effective_on.day))
        for e in events_of(database, PILOT_TENANT, benefits_events.EntitlementChanged)
        if e.change == "review_due"
    ]


def application(database, application_id: str, day: date) -> tuple[date | None, bool]:
    moment = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
    with acting_as(CASEWORKER):
        found = Applications(database, now=lambda: moment).get(application_id)
    return found.review_due_on, found.review_due


def test_a_review_comes_a_year_after_the_start_and_the_caseworker_is_told_once(database, approved):
    assert application(database, approved, date(2024, 3, 4)) == (date(2025, 3, 1), False)
    reviews_round(follower(database, date(2025, 2, 28)))
    assert reminders(database) == []  # not yet

    reviews_round(follower(database, date(2025, 3, 1)))
    assert reminders(database) == [("child1", date(2025, 3, 1))]
    assert application(database, approved, date(2025, 3, 1)) == (date(2025, 3, 1), True)
    with acting_as(CASEWORKER):
        listed, _ = Applications(database).list(status="approved")
    assert [(a.application_id, a.review_due) for a in listed] == [(approved, True)]

    # the next rounds, a restarted process and a second replica tell nobody again
    reviews_round(follower(database, date(2025, 3, 1)))
    reviews_round(follower(database, date(2025, 3, 20)))
    assert reminders(database) == [("child1", date(2025, 3, 1))]
    # child2's began on 30 June: due on 30 June 2025 (a cycle of 12 months, the sample policy's)
    reviews_round(follower(database, date(2025, 6, 30)))
    assert reminders(database) == [("child1", date(2025, 3, 1)), ("child2", date(2025, 6, 30))]


def test_a_review_done_moves_the_next_one_a_year_on(database, approved):
    reviews_round(follower(database, date(2025, 3, 2)))
    applications = Applications(database, now=lambda: datetime(2025, 3, 10, 2, 0, tzinfo=UTC))
    with acting_as(OFFICER), pytest.raises(errors.PermissionDenied):
        applications.record_review(approved)  # the town reviews
    with acting_as(CASEWORKER):
        done = applications.record_review(approved)
    assert (done.review_due_on, done.review_due) == (date(2026, 3, 10), False)
    assert application(database, approved, date(2025, 3, 10)) == (date(2026, 3, 10), False)
    reviews_round(follower(database, date(2026, 3, 10)))
    assert [day for child, day in reminders(database) if child == "child1"] == [date(2025, 3, 1), date(2026, 3, 10)]


def test_an_ended_entitlement_is_not_reviewed(database, approved):
    with database.unit_of_work(PILOT_TENANT) as uow:
        (record,) = eligibility.open_entitlements(uow, "child1")
        eligibility.stop(uow, record, date(2024, 12, 31), eligibility.ENDED, "moved", at=APPROVED)
        uow.commit()
    reviews_round(follower(database, date(2025, 3, 5)))
    assert [child for child, _ in reminders(database)] == []  # child2's is not due until June


def test_the_review_worker_runs_under_the_supervisor(database, approved):
    supervisor = Supervisor([reviews_worker(follower(database, date(2025, 3, 1)), interval_seconds=0.2)])
    supervisor.start()
    try:
        eventually(lambda: reminders(database), what="the supervised worker's reminder")
    finally:
        supervisor.stop(timeout=5)
    assert list(supervisor.states) == [REVIEWS]
    assert reminders(database) == [("child1", date(2025, 3, 1))]
