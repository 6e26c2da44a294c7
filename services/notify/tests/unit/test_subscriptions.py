"""The registry's case events as notify reads them, and the topics notify subscribes to (which the Helm
chart must grant it)."""

from datetime import date

import yaml
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import events_pb2 as registry_events

from platform_runtime.db import Database
from platform_runtime.topics import DOMAIN_TOPICS, REGISTRY_CASE
from services.notify.adapters import messages
from services.notify.adapters.orm import metadata
from services.notify.domain.templates import NamedStaff
from services.notify.entrypoints.consumers import consumers
from services.notify.service_layer.services import NotifyService
from tests.support.infra import ROOT


def test_an_overdue_visit_is_read_with_its_due_date_and_staff():
    visit = messages.overdue_visit(
        registry_events.VisitOverdue(
            case_id="case1",
            child_id="child1",
            due_on=common_pb2.Date(year=2024, month=5, day=6),
            days_overdue=13,
            risk_level="high",
            responsible_person="王专人",
            social_worker="李社工",
        )
    )
    assert (visit.case_id, visit.child_id, visit.due_on, visit.days_overdue, visit.risk_level) == (
        "case1",
        "child1",
        date(2024, 5, 6),
        13,
        "high",
    )
    assert visit.staff == NamedStaff(responsible_person="王专人", social_worker="李社工")


def test_a_status_change_and_an_assignment_are_read_with_their_staff():
    change = messages.changed_case_status(
        registry_events.CaseStatusChanged(
            case_id="case1", child_id="child1", from_status="monitoring", to_status="closed", social_worker="李社工"
        )
    )
    assert (change.from_status, change.to_status, change.staff) == (
        "monitoring",
        "closed",
        NamedStaff(social_worker="李社工"),
    )
    assigned = messages.assigned_case(
        registry_events.CaseAssigned(
            case_id="case1", child_id="child1", social_worker="李社工", previous_social_worker="王社工"
        )
    )
    assert (assigned.staff, assigned.previous) == (
        NamedStaff(social_worker="李社工"),
        NamedStaff(social_worker="王社工"),
    )


def test_notify_reads_the_case_events_of_the_registry():
    (spec,) = consumers(NotifyService(Database.connect("sqlite://", metadata)))
    assert REGISTRY_CASE in spec.topics
    for kind in (registry_events.VisitOverdue, registry_events.CaseStatusChanged, registry_events.CaseAssigned):
        assert kind.DESCRIPTOR.full_name in spec.handlers


def test_the_chart_grants_notify_every_topic_it_reads():
    values = yaml.safe_load((ROOT / "deploy/helm/minorprot/values.yaml").read_text(encoding="utf-8"))
    granted = set(values["components"]["notify"]["kafka"]["consumes"])
    (spec,) = consumers(NotifyService(Database.connect("sqlite://", metadata)))
    assert set(spec.topics) <= granted
    assert set(spec.topics) <= set(DOMAIN_TOPICS)
