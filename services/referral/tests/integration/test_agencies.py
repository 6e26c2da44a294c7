"""An agency accepts and completes the referrals addressed to it, and only those, only forward."""

import pytest
from minorprot.referral.v1 import events_pb2 as referral_events

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.tenancy import acting_as
from services.referral.domain.lifecycle import ReferralStatus
from services.referral.tests.integration.builders import OTHER_TENANT, PILOT_TENANT, caller, submitted
from tests.support.events import events_of, message

pytestmark = pytest.mark.integration

EDUCATION = caller(Role.AGENCY_OFFICER, agency="education")
EDUCATION_SYSTEM = caller(Role.AGENCY_SYSTEM, agency="education")


@pytest.fixture
def referral_id(consumer, service):
    consumer.process(message(submitted("report1", ["out_of_school"]), "event1"))
    with acting_as(caller(Role.CASEWORKER)):
        (referral,) = service.list_referrals(report_id="report1")
    return referral.referral_id


def test_the_addressed_agency_accepts_then_completes(service, database, referral_id):
    with acting_as(EDUCATION):
        accepted = service.accept(referral_id, "劝返小组已联系家长")
    assert accepted.status is ReferralStatus.ACCEPTED
    with acting_as(EDUCATION_SYSTEM):
        completed = service.complete(referral_id, "已复学 back at school")
    assert completed.status is ReferralStatus.COMPLETED

    (accepted_event,) = events_of(database, PILOT_TENANT, referral_events.ReferralAccepted)
    assert accepted_event.referral.status == "accepted"
    (completed_event,) = events_of(database, PILOT_TENANT, referral_events.ReferralCompleted)
    assert completed_event.referral.status == "completed"
    assert completed_event.outcome == "已复学 back at school"
    with acting_as(caller(Role.TOWN_ADMIN)):
        assert service.get_referral(referral_id).status is ReferralStatus.COMPLETED


def test_a_referral_is_not_completed_before_it_is_accepted(service, referral_id):
    with acting_as(EDUCATION), pytest.raises(errors.Conflict):
        service.complete(referral_id, "done")


def test_a_referral_is_accepted_once(service, database, referral_id):
    with acting_as(EDUCATION):
        service.accept(referral_id)
        with pytest.raises(errors.Conflict):
            service.accept(referral_id)
    assert len(events_of(database, PILOT_TENANT, referral_events.ReferralAccepted)) == 1


def test_a_completion_states_its_outcome(service, referral_id):
    with acting_as(EDUCATION):
        service.accept(referral_id)
        with pytest.raises(errors.InvalidInput):
            service.complete(referral_id, "  ")


def test_another_agency_may_not_touch_it(service, referral_id):
    with acting_as(caller(Role.AGENCY_OFFICER, agency="police")), pytest.raises(errors.PermissionDenied):
        service.accept(referral_id)
    with acting_as(caller(Role.AGENCY_SYSTEM)), pytest.raises(errors.PermissionDenied):
        service.accept(referral_id)  # a token without an agency claim


@pytest.mark.parametrize("role", [Role.CASEWORKER, Role.TOWN_ADMIN, Role.PUBLIC])
def test_township_staff_do_not_accept_for_an_agency(service, referral_id, role):
    with acting_as(caller(role, agency="education")), pytest.raises(errors.PermissionDenied):
        service.accept(referral_id)


def test_agencies_do_not_read_the_townships_lists(service, referral_id):
    with acting_as(EDUCATION), pytest.raises(errors.PermissionDenied):
        service.list_referrals()


def test_the_same_agency_in_another_town_does_not_find_it(service, referral_id):
    elsewhere = caller(Role.AGENCY_OFFICER, tenant=OTHER_TENANT, agency="education")
    with acting_as(elsewhere), pytest.raises(errors.NotFound):
        service.accept(referral_id)
