"""The case file as a whole: reading it (audited), the audit trail, and what other services' events add to
it (reports, referrals, benefits on the timeline).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.db import UnitOfWork
from platform_runtime.tenancy import current_principal, require_role
from services.registry.adapters.orm import AuditRecord, ChildRecord, TimelineRecord
from services.registry.domain.events import ReportLinkedToCase
from services.registry.service_layer.access import READER_ROLES, require_purpose
from services.registry.service_layer.assessments import assessment_views
from services.registry.service_layer.assistance_plans import plan_views
from services.registry.service_layer.child_views import category_views, child_views, family_views
from services.registry.service_layer.follow_up_visits import visit_views
from services.registry.service_layer.use_cases import RegistryUseCases
from services.registry.service_layer.views import CaseFileView, TimelineItem


class CaseFileUseCases(RegistryUseCases):
    def get_case_file(self, child_id: str, purpose: str) -> tuple[CaseFileView, str]:
        """The whole case file (audited), and the surviving id when `child_id` was merged."""
        caller = require_role(*READER_ROLES)
        purpose = require_purpose(purpose)
        with self._unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            child = scope.child(child_id)
            case = scope.case_file(child.id)
            merged_ids = scope.merged_ids(child.id)
            timeline = uow.session.scalars(
                select(TimelineRecord)
                .where(TimelineRecord.tenant_id == caller.tenant, TimelineRecord.child_id.in_([child.id, *merged_ids]))
                .order_by(TimelineRecord.at, TimelineRecord.id)
            )
            (child_data,) = child_views(scope, [child])
            view = CaseFileView(
                case_id=case.id,
                child=child_data,
                status=case.status,
                responsible_person=case.responsible_person,
                social_worker=case.social_worker,
                child_director=case.child_director,
                responsible_user_id=case.responsible_user_id,
                social_worker_user_id=case.social_worker_user_id,
                child_director_user_id=case.child_director_user_id,
                timeline=tuple(
                    TimelineItem(t.at, t.kind, t.summary, t.source_service, t.reference_id) for t in timeline
                ),
                status_reason=case.status_reason,
                family=tuple(family_views(scope, child.id)),
                categories=tuple(category_views(scope, child.id)),
                assessments=tuple(assessment_views(uow, child.id)),
                risk_level=case.risk_level,
                plan=tuple(plan_views(uow, child.id)),
                visits=tuple(visit_views(uow, child.id)),
                next_visit_due=case.next_visit_due,
                merged_child_ids=tuple(merged_ids),
                version=case.version,
            )
            scope.audit("read_case_file", "case_file", case.id, purpose)
            uow.commit()
            return view, (child.id if child.id != child_id else "")

    def audit_trail(self, subject_id: str) -> list[AuditRecord]:
        caller = current_principal()
        if caller.role not in (Role.TOWN_ADMIN, Role.DISTRICT_OFFICER, Role.SYSTEM):
            raise errors.PermissionDenied("only administrators read the audit trail")
        with self._database.unit_of_work(caller.tenant) as uow:
            return list(
                uow.session.scalars(
                    select(AuditRecord)
                    .where(AuditRecord.tenant_id == caller.tenant, AuditRecord.subject_id == subject_id)
                    .order_by(AuditRecord.id)
                )
            )

    # -- events from other services (called by consumers inside their unit of work) --------------------------

    def link_report(self, uow: UnitOfWork, *, child_id: str, report_id: str, summary: str, at: datetime) -> bool:
        """Attach a discovery report to the child's case file; False when the child is not in this tenant.

        The entry stays under the id the report names, even a merged one: the survivor's case file shows
        it, and an unmerge gives it back to the record it was about."""
        scope = self._scope(uow, current_principal())
        child = uow.session.get(ChildRecord, child_id)
        if child is None or child.tenant_id != uow.tenant:
            return False
        case = scope.case_file(child_id)
        scope.add_timeline(child_id, "report", summary, "reporting", report_id, at=at)
        scope.emit(ReportLinkedToCase(case.id, child_id, report_id))
        return True

    def record_on_timeline(
        self, uow: UnitOfWork, *, child_id: str, kind: str, summary: str, source: str, reference_id: str, at: datetime
    ) -> bool:
        """What another service did for the child (a referral, a benefit) joins the case file's timeline; False
        for a child this town does not have."""
        child = uow.session.get(ChildRecord, child_id)
        if child is None or child.tenant_id != uow.tenant:
            return False
        self._scope(uow, current_principal()).add_timeline(child_id, kind, summary, source, reference_id, at=at)
        return True
