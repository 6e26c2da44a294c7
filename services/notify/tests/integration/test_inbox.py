"""Who reads and marks which notification: the caller's role's and the caller's own, in the caller's town."""

from datetime import UTC, datetime

import pytest

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.tenancy import acting_as
from services.notify.adapters.orm import NotificationRecord
from services.notify.tests.integration.builders import PILOT_TENANT, caller, crisis_declared, referral_opened
from tests.support.events import message

pytestmark = pytest.mark.integration

CASEWORKER = caller(Role.CASEWORKER)
ANOTHER_CASEWORKER = caller(Role.CASEWORKER, user="caseworker-2")


@pytest.fixture
def personal(database):
    """A notification to one caseworker (later features address people, not only roles)."""
    with database.unit_of_work(PILOT_TENANT) as uow:
        uow.session.add(
            NotificationRecord(
                id="personal1",
                tenant_id=PILOT_TENANT,
                recipient_role="",
                recipient_user=CASEWORKER.user_id,
                title="随访提醒 Follow-up visit due",
                body="",
                priority="normal",
                subject_type="case",
                subject_id="case1",
                created_at=datetime(2024, 5, 6, tzinfo=UTC),
            )
        )
        uow.commit()
    return "personal1"


def test_a_personal_notification_is_seen_and_marked_by_that_person_only(service, personal):
    with acting_as(CASEWORKER):
        assert [n.notification_id for n in service.list_inbox()] == [personal]
        assert service.mark_read(personal).read_at is not None
    with acting_as(ANOTHER_CASEWORKER):
        assert service.list_inbox() == []
        with pytest.raises(errors.PermissionDenied):
            service.mark_read(personal)


def test_a_role_notification_is_shared_by_everyone_holding_the_role(consumer, service):
    consumer.process(message(referral_opened("referral1"), "event1"))
    with acting_as(CASEWORKER):
        (notification,) = service.list_inbox()
    with acting_as(ANOTHER_CASEWORKER):
        assert service.mark_read(notification.notification_id).read_at is not None
    with acting_as(CASEWORKER):
        assert service.list_inbox(unread_only=True) == []


def test_another_roles_notification_may_not_be_marked(consumer, service):
    consumer.process(message(referral_opened("referral1"), "event1"))
    with acting_as(CASEWORKER):
        (notification,) = service.list_inbox()
    with acting_as(caller(Role.TOWN_ADMIN)), pytest.raises(errors.PermissionDenied):
        service.mark_read(notification.notification_id)


def test_the_public_has_no_inbox(consumer, service):
    consumer.process(message(crisis_declared("report9"), "event1"))
    with acting_as(caller(Role.PUBLIC)), pytest.raises(errors.PermissionDenied):
        service.list_inbox()
