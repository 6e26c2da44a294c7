"""Referrals past their time limit escalate: step 1 to the agency's supervising level, step 2 to the leading group
office, each step once, through restarts of the process and with two replicas at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from minorprot.referral.v1 import events_pb2 as referral_events

from platform_runtime.auth import Role
from platform_runtime.db import Database, make_engine
from platform_runtime.supervisor import Supervisor
from platform_runtime.tenancy import acting_as
from services.referral.adapters.orm import metadata
from services.referral.domain.lifecycle import Action
from services.referral.entrypoints.consumers import consumers
from services.referral.entrypoints.escalation import escalate_once, escalation_worker
from services.referral.service_layer.services import ReferralService
from services.referral.tests.integration.builders import OTHER_TENANT, PILOT_TENANT, RECEIVED, caller, submitted
from tests.support.events import events_of, message
from tests.support.services import consumer_under_test

pytestmark = pytest.mark.integration

DUE = RECEIVED + timedelta(days=5)  # out_of_school → education, five days


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(RECEIVED)


@pytest.fixture
def timed(database: Database, clock: Clock) -> ReferralService:
    return ReferralService(database, now=clock)


@pytest.fixture
def report(timed, database, kafka) -> Iterator[str]:
    (spec,) = consumers(timed)
    with consumer_under_test(spec, database, kafka) as consumer:
        consumer.process(message(submitted("report-e", ["out_of_school"]), "event-e"))
        yield "report-e"


def escalations(database: Database, tenant: str = PILOT_TENANT) -> list[tuple[int, str]]:
    found = events_of(database, tenant, referral_events.ReferralEscalated)
    return [(event.step, event.escalated_to) for event in found]


def test_an_overdue_referral_escalates_once_per_step(timed, database, clock, report):
    clock.at = DUE - timedelta(minutes=1)
    escalate_once(timed)
    assert escalations(database) == []

    clock.at = DUE + timedelta(hours=1)
    escalate_once(timed)
    escalate_once(timed)
    assert escalations(database) == [(1, "education")]

    clock.at = DUE + timedelta(days=5)  # as long again past the limit
    escalate_once(timed)
    escalate_once(timed)
    clock.at = DUE + timedelta(days=50)
    escalate_once(timed)
    assert escalations(database) == [(1, "education"), (2, "leading_group_office")]
    (last,) = events_of(database, PILOT_TENANT, referral_events.ReferralEscalated)[1:]
    assert last.referral.escalated_step == 2
    assert "not accepted by" in last.reason
    with acting_as(caller(Role.LEADING_GROUP_OFFICE)):
        (seen,) = timed.list_district(overdue_only=True).referrals
    assert seen.escalated_step == 2


def test_accepting_starts_a_new_limit_with_its_own_steps(timed, database, clock, report):
    clock.at = DUE + timedelta(hours=1)
    escalate_once(timed)
    with acting_as(caller(Role.CASEWORKER)):
        (referral,) = timed.list_referrals(report_id=report).referrals
    with acting_as(caller(Role.AGENCY_OFFICER, agency="education")):
        accepted = timed.act_as_agency(Action.ACCEPT, referral.referral_id)
    assert (accepted.escalated_step, accepted.due_at) == (0, clock.at + timedelta(days=30))
    escalate_once(timed)
    assert escalations(database) == [(1, "education")]
    clock.at = accepted.due_at + timedelta(seconds=1)
    escalate_once(timed)
    assert escalations(database) == [(1, "education"), (1, "education")]
    assert "not completed by" in events_of(database, PILOT_TENANT, referral_events.ReferralEscalated)[-1].reason


def test_a_returned_referral_is_not_escalated_while_the_referrer_answers(timed, database, clock, report):
    with acting_as(caller(Role.CASEWORKER)):
        (referral,) = timed.list_referrals(report_id=report).referrals
    with acting_as(caller(Role.AGENCY_OFFICER, agency="education")):
        timed.act_as_agency(Action.RETURN, referral.referral_id, "which school?")
    clock.at = DUE + timedelta(days=20)
    escalate_once(timed)
    assert escalations(database) == []


def test_the_worker_escalates_once_across_a_restart(database, clock, report):
    """The supervised worker of one process escalates; the process stops; a new process (its own engine and
    service) goes on: nothing is raised twice, and what fell due while it was down is raised at its start."""
    clock.at = DUE + timedelta(hours=1)
    url = database.engine.url.render_as_string(hide_password=False)

    def run_process(rounds_until: float) -> None:
        process_database = Database(make_engine(url), metadata)
        service = ReferralService(process_database, now=clock)
        supervisor = Supervisor([escalation_worker(service, 0.05)])
        supervisor.start()
        try:
            time.sleep(rounds_until)  # several rounds
        finally:
            supervisor.stop(timeout=5)
            process_database.dispose()

    run_process(0.5)
    assert escalations(database) == [(1, "education")]
    clock.at = DUE + timedelta(days=6)  # the office's step fell due while no process ran
    run_process(0.5)
    run_process(0.3)
    assert escalations(database) == [(1, "education"), (2, "leading_group_office")]


def test_two_replicas_at_once_raise_each_step_once(database, clock, kafka):
    clock.at = RECEIVED
    replicas = [ReferralService(database, now=clock), ReferralService(database, now=clock)]
    (spec,) = consumers(replicas[0])
    with consumer_under_test(spec, database, kafka) as consumer:
        for number in range(30):
            consumer.process(message(submitted(f"report-{number}", ["out_of_school"]), f"event-{number}"))
    clock.at = DUE + timedelta(hours=1)
    start = threading.Barrier(2)

    def run(service: ReferralService) -> None:
        start.wait()
        escalate_once(service)

    threads = [threading.Thread(target=run, args=(replica,)) for replica in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(escalations(database)) == 30
    escalate_once(replicas[0])
    assert len(escalations(database)) == 30


def test_another_town_s_referrals_escalate_in_their_own_town(timed, database, clock, kafka):
    (spec,) = consumers(timed)
    with consumer_under_test(spec, database, kafka) as consumer:
        consumer.process(message(submitted("report-o", ["out_of_school"], tenant=OTHER_TENANT), "event-o"))
    clock.at = DUE + timedelta(hours=1)
    escalate_once(timed)
    assert escalations(database, OTHER_TENANT) == [(1, "education")]
    assert escalations(database, PILOT_TENANT) == []


def test_step_one_goes_to_the_supervising_unit_the_directory_names(timed, database, clock, report):
    from dataclasses import replace

    from services.referral.domain.agencies import DIRECTORY

    with acting_as(caller(Role.DISTRICT_ADMIN)):
        timed.config.save_agency(replace(DIRECTORY["education"], supervisor="civil_affairs"))
    clock.at = DUE + timedelta(hours=1)
    escalate_once(timed)
    assert escalations(database) == [(1, "civil_affairs")]
