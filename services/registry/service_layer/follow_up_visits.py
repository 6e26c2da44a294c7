"""Follow-up visits: RecordVisit, and VisitOverdue raised once for each visit past due."""

from __future__ import annotations

from datetime import date

from platform_runtime.consumer import system_principal
from platform_runtime.db import new_id
from services.registry.domain.casefile import require_open
from services.registry.domain.events import VisitOverdue
from services.registry.domain.visits import Visit
from services.registry.service_layer.access import CASEWORK_ROLES
from services.registry.service_layer.commands import NewVisit
from services.registry.service_layer.inputs import LONG_TEXT, SHORT_TEXT, clean_text, past_or_today
from services.registry.service_layer.ports import RegistryUnitOfWork
from services.registry.service_layer.use_cases import CaseworkUseCases
from services.registry.service_layer.views import VisitView
from services.registry.service_layer.visit_schedule import schedule_visits

OVERDUE_BATCH = 200


class VisitUseCases(CaseworkUseCases):
    def record_visit(self, command: NewVisit) -> tuple[VisitView, date | None]:
        findings = clean_text(command.findings, "findings", max_chars=LONG_TEXT, required=True)
        with self._work(CASEWORK_ROLES) as uow:
            visited_on = past_or_today(command.visited_on, uow.today, "visited_on")
            case = uow.case_files.for_child(uow.children.current_id(command.child_id))
            require_open(case.status)
            visit = Visit(
                visit_id=new_id(),
                child_id=case.child_id,
                visited_on=visited_on,
                visitor=clean_text(command.visitor, "visitor", max_chars=SHORT_TEXT) or uow.caller.display_name,
                findings=findings,
                recorded_by=uow.caller.user_id,
                recorded_at=uow.now,
            )
            uow.visits.add(visit)
            schedule_visits(uow, case)
            uow.case_files.save(case)
            uow.add_timeline(
                case.child_id, "visit", f"随访 follow-up visit on {visited_on} by {visit.visitor}", visit.visit_id
            )
            uow.commit()
            return visit_view(visit), case.next_visit_due

    def raise_overdue_visits(self, tenant: str) -> int:
        """Raise VisitOverdue once for each case whose next visit is past due (one batch; returns how many).

        Safe with several replicas: rows being raised by another are skipped, then no longer match."""
        with self._store.unit_of_work(tenant) as uow:
            uow.act_as(system_principal(tenant, "registry-visits"), today=self._today(), now=self._now())
            cases = uow.case_files.visits_overdue(uow.today, OVERDUE_BATCH)
            for case in cases:
                raised = case.visit_overdue(uow.today)
                if raised is None:
                    continue
                due, late = raised
                uow.emit(VisitOverdue(case.case_id, case.child_id, due, late, case.risk_level, case.staff))
                uow.case_files.save(case)
                uow.add_timeline(
                    case.child_id,
                    "visit_overdue",
                    f"随访逾期 follow-up visit due {due} is {late} days overdue",
                    due.isoformat(),
                )
            uow.commit()
            return len(cases)


def visit_views(uow: RegistryUnitOfWork, child_id: str) -> list[VisitView]:
    return [visit_view(visit) for visit in uow.visits.of_child(child_id)]


def visit_view(visit: Visit) -> VisitView:
    return VisitView(
        visit.visit_id,
        visit.child_id,
        visit.visited_on,
        visit.visitor,
        visit.findings,
        visit.recorded_by,
        visit.recorded_at,
    )
