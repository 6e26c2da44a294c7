"""Events of one report that arrive out of order (several relay replicas) end as they would in order."""

from datetime import timedelta

import pytest
from minorprot.referral.v1 import events_pb2 as referral_events

from platform_runtime.auth import Role
from platform_runtime.consumer import IdempotentConsumer
from platform_runtime.db import Database
from platform_runtime.events import PendingEvent
from platform_runtime.tenancy import acting_as
from services.referral.service_layer.services import ReferralService
from services.referral.tests.integration.builders import (
    OTHER_TENANT,
    PILOT_TENANT,
    RECEIVED,
    caller,
    linked,
    submitted,
)
from tests.support.events import events_of, message

pytestmark = pytest.mark.integration


def feed(consumer: IdempotentConsumer, *events: PendingEvent) -> None:
    for number, event in enumerate(events):
        consumer.process(message(event, f"{event.tenant}-{event.aggregate_id}-{number}"))


def end_state(service: ReferralService, tenant: str, report_id: str) -> set[tuple[str, str, str]]:
    with acting_as(caller(Role.CASEWORKER, tenant=tenant)):
        return {
            (r.agency_code, r.child_id, r.status.value) for r in service.list_referrals(report_id=report_id).referrals
        }


def children_told(database: Database, tenant: str) -> dict[str, str]:
    """Per referral, the child the registry heard of: from ReferralOpened or, later, ReferralLinkedToChild."""
    told: dict[str, str] = {}
    opened = [e.referral for e in events_of(database, tenant, referral_events.ReferralOpened)]
    linked_later = [e.referral for e in events_of(database, tenant, referral_events.ReferralLinkedToChild)]
    for referral in opened + linked_later:
        if referral.child_id:
            assert referral.referral_id not in told, "the child hears of a referral once"
            told[referral.referral_id] = referral.child_id
    return told


def test_a_link_that_overtakes_its_report_still_gives_the_referrals_the_child(consumer, service, database):
    report = "report1"
    feed(consumer, submitted(report, ["improperly_guarded"]), linked(report, "child1"))  # in order, pilot town
    feed(
        consumer,
        linked(report, "child1", tenant=OTHER_TENANT),
        submitted(report, ["improperly_guarded"], tenant=OTHER_TENANT),
    )

    in_order = end_state(service, PILOT_TENANT, report)
    assert {child for _, child, _ in in_order} == {"child1"}
    assert end_state(service, OTHER_TENANT, report) == in_order
    assert set(children_told(database, OTHER_TENANT).values()) == {"child1"}
    assert len(children_told(database, OTHER_TENANT)) == len(in_order)


def test_an_older_link_arriving_late_does_not_undo_the_newer_one(consumer, service):
    report = "report2"
    first, second = RECEIVED + timedelta(minutes=1), RECEIVED + timedelta(minutes=2)
    feed(
        consumer,
        submitted(report, ["out_of_school"]),
        linked(report, "child_a", at=first),
        linked(report, "child_b", at=second),
    )
    feed(
        consumer,
        submitted(report, ["out_of_school"], tenant=OTHER_TENANT),
        linked(report, "child_b", at=second, tenant=OTHER_TENANT),
        linked(report, "child_a", at=first, tenant=OTHER_TENANT),
    )
    feed(  # both links before the report
        consumer,
        linked("report3", "child_b", at=second),
        linked("report3", "child_a", at=first),
        submitted("report3", ["out_of_school"]),
    )

    in_order = end_state(service, PILOT_TENANT, report)
    assert [child for _, child, _ in in_order] == ["child_b"]
    assert end_state(service, OTHER_TENANT, report) == in_order
    assert end_state(service, PILOT_TENANT, "report3") == in_order
