"""The whole life of a referral against PostgreSQL: the agency it is addressed to (in its district, and only it)
accepts, rejects, returns, updates and completes; the referrer answers, cancels and reassigns; the leading group
office takes what is rejected. Every move is in the history and leaves its event in the outbox."""

from datetime import timedelta
from typing import Any

import pytest
from minorprot.referral.v1 import events_pb2 as referral_events

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.tenancy import acting_as
from services.referral.domain.lifecycle import Action, ReferralStatus
from services.referral.domain.routing import PILOT_START, RoutingRule
from services.referral.entrypoints.consumers import consumers
from services.referral.service_layer.services import ReferralService
from services.referral.service_layer.views import ReferralView
from services.referral.tests.integration.builders import OTHER_TENANT, PILOT_TENANT, caller, submitted
from tests.support.events import events_of, message, outbox_rows
from tests.support.services import consumer_under_test

pytestmark = pytest.mark.integration

EDUCATION = caller(Role.AGENCY_OFFICER, agency="education")
EDUCATION_SYSTEM = caller(Role.AGENCY_SYSTEM, agency="education")
CASEWORKER = caller(Role.CASEWORKER)
OFFICE = caller(Role.LEADING_GROUP_OFFICE)
ANOTHER_DISTRICT = "110112001"


@pytest.fixture
def referral_id(consumer, service):
    consumer.process(message(submitted("report1", ["out_of_school"]), "event1"))
    with acting_as(CASEWORKER):
        (referral,) = service.list_referrals(report_id="report1").referrals
    return referral.referral_id


def act(
    service: ReferralService, who: Principal, action: Action, referral_id: str, text: str = "", **options: Any
) -> ReferralView:
    with acting_as(who):
        if action in (Action.ANSWER, Action.CANCEL, Action.REASSIGN):
            return service.act_as_referrer(action, referral_id, text, **options)
        return service.act_as_agency(action, referral_id, text, **options)


def test_the_addressed_agency_accepts_updates_then_completes(service, database, referral_id):
    accepted = act(service, EDUCATION, Action.ACCEPT, referral_id, "劝返小组已联系家长")
    assert accepted.status is ReferralStatus.ACCEPTED
    progressed = act(service, EDUCATION_SYSTEM, Action.PROGRESS, referral_id, "家访一次 visited the family")
    assert progressed.status is ReferralStatus.IN_PROGRESS
    act(service, EDUCATION, Action.PROGRESS, referral_id, "已联系学校 the school agreed")
    completed = act(service, EDUCATION_SYSTEM, Action.COMPLETE, referral_id, "已复学 back at school")
    assert (completed.status, completed.outcome) == (ReferralStatus.COMPLETED, "已复学 back at school")

    (accepted_event,) = events_of(database, PILOT_TENANT, referral_events.ReferralAccepted)
    assert accepted_event.referral.status == "accepted"
    progressed_events = events_of(database, PILOT_TENANT, referral_events.ReferralProgressed)
    assert [e.referral.version for e in progressed_events] == [4, 5]
    (completed_event,) = events_of(database, PILOT_TENANT, referral_events.ReferralCompleted)
    assert completed_event.outcome == "已复学 back at school"  # the registry notes it on the plan action
    # The notes are free text: they stay in the history, off Kafka (the referral on the events has none).
    sent = b"".join(row.envelope for row in outbox_rows(database, PILOT_TENANT))
    for note in ("劝返小组已联系家长", "家访一次 visited the family", "已联系学校 the school agreed"):
        assert note.encode() not in sent
    assert sent.count("已复学 back at school".encode()) == 1
    with acting_as(caller(Role.TOWN_ADMIN)):
        detail = service.referral_detail(referral_id)
    assert detail.referral.status is ReferralStatus.COMPLETED
    assert [e.action for e in detail.entries] == ["open", "send", "accept", "progress", "progress", "complete"]
    assert [e.version for e in detail.entries] == [1, 2, 3, 4, 5, 6]


def test_a_returned_referral_waits_for_the_answer_then_has_its_full_time_again(service, database, referral_id):
    returned = act(service, EDUCATION, Action.RETURN, referral_id, "孩子现在住在哪里? where does the child live now?")
    assert returned.status is ReferralStatus.RETURNED
    (event,) = events_of(database, PILOT_TENANT, referral_events.ReferralReturned)
    assert (event.referral.status, event.question, event.referral.last_note) == ("returned", "", "")
    assert returned.last_note.startswith("孩子现在住在哪里")  # the referral service's own reply keeps it
    with acting_as(EDUCATION), pytest.raises(errors.Conflict):
        service.act_as_agency(Action.ACCEPT, referral_id)  # the referrer's turn

    answered = act(service, CASEWORKER, Action.ANSWER, referral_id, "住在外婆家 with the grandmother")
    assert answered.status is ReferralStatus.SENT
    assert answered.last_note == "住在外婆家 with the grandmother"
    assert answered.due_at > answered.opened_at + timedelta(days=4)  # five days from the answer
    sent_again = events_of(database, PILOT_TENANT, referral_events.ReferralSent)[-1]
    assert sent_again.referral.version == answered.version
    assert act(service, EDUCATION, Action.ACCEPT, referral_id).status is ReferralStatus.ACCEPTED


def test_a_rejection_goes_to_the_rule_s_next_unit_then_to_the_office_which_reassigns_it(service, database, referral_id):
    rejected = act(service, EDUCATION, Action.REJECT, referral_id, "not of school age")
    assert rejected.status is ReferralStatus.REJECTED
    (rejection,) = events_of(database, PILOT_TENANT, referral_events.ReferralRejected)
    assert (rejection.referral.status, rejection.reason) == ("rejected", "")
    # The plan's schooling rule goes on to the town government.
    with acting_as(CASEWORKER):
        referrals = {r.agency_code: r for r in service.list_referrals(report_id="report1").referrals}
    town_referral = referrals["town_government"]
    assert town_referral.status is ReferralStatus.SENT
    assert "not of school age" in town_referral.reason
    assert events_of(database, PILOT_TENANT, referral_events.ReferralEscalated) == []

    town = caller(Role.AGENCY_OFFICER, agency="town_government")
    act(service, town, Action.REJECT, town_referral.referral_id, "no capacity")
    (escalation,) = events_of(database, PILOT_TENANT, referral_events.ReferralEscalated)
    assert (escalation.escalated_to, escalation.step) == ("leading_group_office", 2)
    assert escalation.reason == "rejected by town_government"  # the agency's words stay in the history
    with acting_as(OFFICE):
        history = service.referral_detail(town_referral.referral_id).entries
    assert [(e.action, e.text) for e in history if e.action == "reject"] == [("reject", "no capacity")]

    with acting_as(OFFICE):
        (seen,) = service.list_district(escalated_only=True).referrals
    assert seen.referral_id == town_referral.referral_id
    with acting_as(OFFICE), pytest.raises(errors.Conflict):  # the report has an education referral already
        service.act_as_referrer(Action.REASSIGN, town_referral.referral_id, agency_code="education")
    reassigned = act(
        service, OFFICE, Action.REASSIGN, town_referral.referral_id, "民政先介入", agency_code="civil_affairs"
    )
    assert (reassigned.status, reassigned.agency_code, reassigned.agency_name) == (
        ReferralStatus.SENT,
        "civil_affairs",
        "区民政局",
    )
    (moved,) = events_of(database, PILOT_TENANT, referral_events.ReferralReassigned)
    assert (moved.previous_agency_code, moved.referral.agency_code) == ("town_government", "civil_affairs")
    with acting_as(town), pytest.raises(errors.PermissionDenied):
        service.act_as_agency(Action.ACCEPT, town_referral.referral_id)
    civil = caller(Role.AGENCY_OFFICER, agency="civil_affairs")
    assert act(service, civil, Action.ACCEPT, town_referral.referral_id).status is ReferralStatus.ACCEPTED


def test_a_rejection_goes_on_to_the_rule_s_next_unit(database, kafka):
    rules = (
        RoutingRule(
            "SCHOOLING_EDUCATION",
            "education",
            "失学辍学",
            timedelta(days=5),
            PILOT_START,
            any_of_situations=frozenset({"out_of_school"}),
            reroute_to="civil_affairs",
        ),
    )
    service = ReferralService(database, rules=rules)
    (spec,) = consumers(service)
    with consumer_under_test(spec, database, kafka) as consumer:
        consumer.process(message(submitted("report-r", ["out_of_school"]), "event-r"))
    with acting_as(CASEWORKER):
        (first,) = service.list_referrals(report_id="report-r").referrals
    act(service, EDUCATION, Action.REJECT, first.referral_id, "not ours")

    with acting_as(CASEWORKER):
        referrals = {r.agency_code: r for r in service.list_referrals(report_id="report-r").referrals}
    assert referrals["education"].status is ReferralStatus.REJECTED
    assert referrals["civil_affairs"].status is ReferralStatus.SENT
    assert "not ours" in referrals["civil_affairs"].reason
    assert events_of(database, PILOT_TENANT, referral_events.ReferralEscalated) == []


def test_the_referrer_cancels_and_the_agency_can_no_longer_act(service, database, referral_id):
    cancelled = act(service, CASEWORKER, Action.CANCEL, referral_id, "家长已自行办理复学")
    assert cancelled.status is ReferralStatus.CANCELLED
    (event,) = events_of(database, PILOT_TENANT, referral_events.ReferralCancelled)
    assert (event.referral.status, event.reason) == ("cancelled", "")
    with acting_as(EDUCATION), pytest.raises(errors.Conflict):
        service.act_as_agency(Action.ACCEPT, referral_id)


def test_the_agency_cannot_cancel_and_the_office_only_reassigns(service, referral_id):
    with acting_as(EDUCATION), pytest.raises(errors.PermissionDenied):
        service.act_as_referrer(Action.CANCEL, referral_id, "x")
    with acting_as(OFFICE), pytest.raises(errors.PermissionDenied):
        service.act_as_referrer(Action.CANCEL, referral_id, "x")
    with acting_as(CASEWORKER), pytest.raises(errors.InvalidInput):
        service.act_as_referrer(Action.REASSIGN, referral_id, agency_code="no_such_unit")
    with acting_as(CASEWORKER), pytest.raises(errors.InvalidInput):
        service.act_as_referrer(Action.ACCEPT, referral_id)


def test_a_retried_change_with_the_same_key_changes_nothing(service, database, referral_id):
    first = act(service, EDUCATION_SYSTEM, Action.ACCEPT, referral_id, idempotency_key="k-1", expected_version=2)
    again = act(service, EDUCATION_SYSTEM, Action.ACCEPT, referral_id, idempotency_key="k-1", expected_version=2)
    assert again == first
    assert len(events_of(database, PILOT_TENANT, referral_events.ReferralAccepted)) == 1
    with pytest.raises(errors.InvalidInput, match="idempotency_key"):
        act(service, EDUCATION_SYSTEM, Action.COMPLETE, referral_id, "done", idempotency_key="k-1")
    # Another agency's key of the same name is its own.
    with acting_as(caller(Role.AGENCY_SYSTEM, agency="police")), pytest.raises(errors.PermissionDenied):
        service.act_as_agency(Action.ACCEPT, referral_id, idempotency_key="k-1")


def test_a_referral_is_accepted_once(service, database, referral_id):
    act(service, EDUCATION, Action.ACCEPT, referral_id)
    with acting_as(EDUCATION), pytest.raises(errors.Conflict):
        service.act_as_agency(Action.ACCEPT, referral_id)
    assert len(events_of(database, PILOT_TENANT, referral_events.ReferralAccepted)) == 1


def test_stating_the_outcome_reason_and_question_is_required(service, referral_id):
    with acting_as(EDUCATION):
        for action, field in ((Action.REJECT, "reason"), (Action.RETURN, "question")):
            with pytest.raises(errors.InvalidInput, match=field):
                service.act_as_agency(action, referral_id, "  ")
        service.act_as_agency(Action.ACCEPT, referral_id)
        with pytest.raises(errors.InvalidInput, match="outcome"):
            service.act_as_agency(Action.COMPLETE, referral_id, "  ")


def test_another_agency_may_not_touch_it(service, referral_id):
    with acting_as(caller(Role.AGENCY_OFFICER, agency="police")), pytest.raises(errors.PermissionDenied):
        service.act_as_agency(Action.ACCEPT, referral_id)
    with acting_as(caller(Role.AGENCY_OFFICER, agency="police")), pytest.raises(errors.PermissionDenied):
        service.referral_detail(referral_id)
    with acting_as(caller(Role.AGENCY_SYSTEM)), pytest.raises(errors.PermissionDenied):
        service.act_as_agency(Action.ACCEPT, referral_id)  # a token without an agency claim


@pytest.mark.parametrize("role", [Role.CASEWORKER, Role.TOWN_ADMIN, Role.PUBLIC, Role.LEADING_GROUP_OFFICE])
def test_others_do_not_act_for_an_agency(service, referral_id, role):
    with acting_as(caller(role, agency="education")), pytest.raises(errors.PermissionDenied):
        service.act_as_agency(Action.ACCEPT, referral_id)


def test_agencies_do_not_read_the_townships_lists(service, referral_id):
    with acting_as(EDUCATION), pytest.raises(errors.PermissionDenied):
        service.list_referrals()


def test_the_agency_acts_across_the_towns_of_its_district(service, referral_id):
    # The district's education commission may sign in under any of the district's towns.
    elsewhere = caller(Role.AGENCY_OFFICER, tenant=OTHER_TENANT, agency="education")
    assert act(service, elsewhere, Action.ACCEPT, referral_id).status is ReferralStatus.ACCEPTED


def test_another_district_does_not_find_it(service, referral_id):
    for who in (
        caller(Role.AGENCY_OFFICER, tenant=ANOTHER_DISTRICT, agency="education"),
        caller(Role.LEADING_GROUP_OFFICE, tenant=ANOTHER_DISTRICT),
    ):
        with acting_as(who), pytest.raises(errors.NotFound):
            service.referral_detail(referral_id)
    with acting_as(caller(Role.AGENCY_OFFICER, tenant=ANOTHER_DISTRICT, agency="education")):
        assert service.list_for_agency().referrals == []
        with pytest.raises(errors.NotFound):
            service.act_as_agency(Action.ACCEPT, referral_id)
    with acting_as(caller(Role.LEADING_GROUP_OFFICE, tenant=ANOTHER_DISTRICT)):
        assert service.list_district().referrals == []
    with acting_as(caller(Role.CASEWORKER, tenant=OTHER_TENANT)), pytest.raises(errors.NotFound):
        service.act_as_referrer(Action.CANCEL, referral_id, "not my town's")


def test_the_agency_lists_its_referrals_page_by_page(service, consumer):
    for number in range(5):
        consumer.process(message(submitted(f"report-p{number}", ["out_of_school"]), f"event-p{number}"))
    consumer.process(message(submitted("report-police", ["organised_begging"]), "event-police"))
    seen: list[str] = []
    token = ""
    with acting_as(EDUCATION):
        while True:
            page = service.list_for_agency(page_size=2, page_token=token)
            assert len(page.referrals) <= 2
            seen += [r.referral_id for r in page.referrals]
            assert {r.agency_code for r in page.referrals} <= {"education"}
            token = page.next_page_token
            if not token:
                break
        assert len(seen) == len(set(seen)) == 5
        assert service.list_for_agency(status="accepted").referrals == []
        with pytest.raises(errors.InvalidInput):
            service.list_for_agency(status="nonsense")
        with pytest.raises(errors.InvalidInput):
            service.list_for_agency(page_token="!!")


def every_page(list_page: Any) -> list[str]:
    """Follow the pages of a list two at a time; every referral id seen, in order."""
    seen: list[str] = []
    token = ""
    while True:
        page = list_page(page_size=2, page_token=token)
        assert len(page.referrals) <= 2
        seen += [r.referral_id for r in page.referrals]
        token = page.next_page_token
        if not token:
            return seen


def test_the_town_and_the_office_list_referrals_page_by_page(service, consumer):
    for number in range(5):  # several referrals each: more than fit on two pages
        situations = ["out_of_school", "organised_begging"] if number % 2 else ["out_of_school"]
        consumer.process(message(submitted(f"report-q{number}", situations), f"event-q{number}"))
    with acting_as(CASEWORKER):
        town = every_page(service.list_referrals)
        assert len(town) == len(set(town)) > 6
        assert town == [r.referral_id for r in service.list_referrals(page_size=200).referrals]
        with pytest.raises(errors.InvalidInput):
            service.list_referrals(page_size=201)
    with acting_as(OFFICE):
        office = every_page(service.list_district)
        assert sorted(office) == sorted(town)
        due = [r.due_at for r in service.list_district(page_size=200).referrals]
        assert due == sorted(due)  # the nearest time limit first
        with pytest.raises(errors.InvalidInput):
            service.list_district(page_token="!!")


def test_a_caseworker_refers_a_child_for_a_plan_action(service, database):
    with acting_as(CASEWORKER):
        opened = service.open_for_plan("child-9", "health", "康复评估 rehabilitation assessment", 10)
    assert (opened.status, opened.agency_code, opened.child_id, opened.rule_code) == (
        ReferralStatus.SENT,
        "health",
        "child-9",
        "ASSISTANCE_PLAN",
    )
    assert abs(opened.due_at - opened.opened_at - timedelta(days=10)) < timedelta(seconds=1)
    (event,) = events_of(database, PILOT_TENANT, referral_events.ReferralOpened)
    assert event.referral.child_id == "child-9"  # the registry moves the plan action with these events
    health = caller(Role.AGENCY_OFFICER, agency="health")
    assert act(service, health, Action.ACCEPT, opened.referral_id).status is ReferralStatus.ACCEPTED
    with acting_as(CASEWORKER), pytest.raises(errors.InvalidInput):
        service.open_for_plan("child-9", "ministry_of_magic", "x")
    with acting_as(EDUCATION), pytest.raises(errors.PermissionDenied):
        service.open_for_plan("child-9", "health", "x")


def test_the_agencies_feeds_follow_a_reassignment(service, referral_id):
    with acting_as(EDUCATION):
        (first,) = service.changes_for_agency(0)
    act(service, CASEWORKER, Action.REASSIGN, referral_id, "教委不是合适的单位", agency_code="youth_league")
    with acting_as(EDUCATION):
        (left,) = service.changes_for_agency(first.seq)
    assert left.gone
    with acting_as(caller(Role.AGENCY_OFFICER, agency="youth_league")):
        (arrived,) = service.changes_for_agency(0)
    assert not arrived.gone and arrived.seq > left.seq
    # Another district's education commission sees nothing of either.
    with acting_as(caller(Role.AGENCY_OFFICER, tenant=ANOTHER_DISTRICT, agency="education")):
        assert service.changes_for_agency(0) == []
