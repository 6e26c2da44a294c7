"""Follow-up visits: RecordVisit, and VisitOverdue raised once for each visit past due."""

from __future__ import annotations

from datetime import date

from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import events_pb2
from sqlalchemy import or_, select

from platform_runtime.consumer import system_principal
from platform_runtime.db import new_id
from platform_runtime.topics import REGISTRY_CASE
from services.registry.adapters.orm import CaseFileRecord, VisitRecord
from services.registry.domain import visits
from services.registry.domain.casefile import require_open
from services.registry.domain.codes import CaseStatus
from services.registry.service_layer.case_status import staff_of
from services.registry.service_layer.history import columns, field_changes
from services.registry.service_layer.scope import (
    CASEWORK_ROLES,
    LONG_TEXT,
    SHORT_TEXT,
    CaseworkUseCases,
    Scope,
    clean_text,
    past_or_today,
)
from services.registry.service_layer.views import NewVisit, VisitView
from services.registry.service_layer.visit_schedule import reschedule_visits

OVERDUE_BATCH = 200


VISIT_FIELDS = ("visited_on", "visitor", "findings")


class VisitUseCases(CaseworkUseCases):
    def record_visit(self, command: NewVisit) -> tuple[VisitView, date | None]:
        findings = clean_text(command.findings, "findings", max_chars=LONG_TEXT, required=True)
        with self._scope(CASEWORK_ROLES) as scope:
            visited_on = past_or_today(command.visited_on, scope.today, "visited_on")
            child = scope.child(command.child_id)
            case = scope.case_file(child.id)
            require_open(CaseStatus(case.status))
            record = VisitRecord(
                id=new_id(),
                tenant_id=scope.tenant,
                child_id=child.id,
                visited_on=visited_on,
                visitor=clean_text(command.visitor, "visitor", max_chars=SHORT_TEXT) or scope.caller.display_name,
                findings=findings,
                recorded_by=scope.caller.user_id,
                recorded_at=scope.now,
            )
            scope.session.add(record)
            reschedule_visits(scope, child, case)
            scope.record_change(
                child.id, "visit", record.id, "created", field_changes({}, columns(record, VISIT_FIELDS))
            )
            scope.add_timeline(
                child.id, "visit", f"随访 follow-up visit on {visited_on} by {record.visitor}", "registry", record.id
            )
            scope.commit()
            return _visit_view(record), case.next_visit_due

    def raise_overdue_visits(self, tenant: str) -> int:
        """Raise VisitOverdue once for each case whose next visit is past due (one batch; returns how many).

        Safe with several replicas: rows being raised by another are skipped, then no longer match."""
        with self._database.unit_of_work(tenant) as uow:
            scope = Scope(uow, system_principal(tenant, "registry-visits"), today=self._today(), now=self._now())
            cases = list(
                uow.session.scalars(
                    select(CaseFileRecord)
                    .where(
                        CaseFileRecord.tenant_id == tenant,
                        CaseFileRecord.next_visit_due < scope.today,
                        or_(
                            CaseFileRecord.overdue_raised_for.is_(None),
                            CaseFileRecord.overdue_raised_for != CaseFileRecord.next_visit_due,
                        ),
                    )
                    .order_by(CaseFileRecord.next_visit_due, CaseFileRecord.id)
                    .limit(OVERDUE_BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            for case in cases:
                due = case.next_visit_due
                assert due is not None
                late = visits.days_overdue(due, scope.today)
                scope.publish(
                    REGISTRY_CASE,
                    case.child_id,
                    events_pb2.VisitOverdue(
                        case_id=case.id,
                        child_id=case.child_id,
                        due_on=common_pb2.Date(year=due.year, month=due.month, day=due.day),
                        days_overdue=late,
                        risk_level=case.risk_level,
                        **staff_of(case).event_fields(),
                    ),
                )
                case.overdue_raised_for = due
                scope.add_timeline(
                    case.child_id,
                    "visit_overdue",
                    f"随访逾期 follow-up visit due {due} is {late} days overdue",
                    "registry",
                    due.isoformat(),
                )
            uow.commit()
            return len(cases)


def visit_views(scope: Scope, child_id: str) -> list[VisitView]:
    rows = scope.session.scalars(
        select(VisitRecord)
        .where(VisitRecord.tenant_id == scope.tenant, VisitRecord.child_id == child_id)
        .order_by(VisitRecord.visited_on.desc(), VisitRecord.id)
    )
    return [_visit_view(row) for row in rows]


def _visit_view(record: VisitRecord) -> VisitView:
    return VisitView(
        record.id,
        record.child_id,
        record.visited_on,
        record.visitor,
        record.findings,
        record.recorded_by,
        record.recorded_at,
    )
