"""The case itself: its named staff (AssignCase) and its status (ChangeCaseStatus)."""

from __future__ import annotations

from minorprot.registry.v1 import events_pb2
from sqlalchemy import func, select

from platform_runtime.db import new_id
from platform_runtime.topics import REGISTRY_CASE
from services.registry.adapters.orm import AssessmentRecord, CaseFileRecord, PlanActionRecord
from services.registry.domain.casefile import CaseProgress, check_transition
from services.registry.domain.codes import ActionStatus, CaseStatus, parse_code
from services.registry.service_layer.history import CASE_FIELDS, columns, field_changes
from services.registry.service_layer.scope import (
    CASE_MANAGER_ROLES,
    LONG_TEXT,
    SHORT_TEXT,
    CaseworkUseCases,
    Scope,
    check_version,
    clean_text,
)
from services.registry.service_layer.views import STAFF_FIELDS, CaseStaff, CaseStatusView
from services.registry.service_layer.visit_schedule import reschedule_visits

USER_ID = 64  # a gateway account id


class CaseStatusUseCases(CaseworkUseCases):
    def assign_case(
        self, child_id: str, staff: CaseStaff, expected_version: int | None = None
    ) -> tuple[str, CaseStaff, int]:
        values = {
            name: clean_text(getattr(staff, name), name, max_chars=USER_ID if name.endswith("_user_id") else SHORT_TEXT)
            for name in STAFF_FIELDS
        }
        with self._scope(CASE_MANAGER_ROLES) as scope:
            child = scope.child(child_id)
            case = scope.case_file(child.id)
            check_version(case, expected_version, "the case file")
            old = columns(case, CASE_FIELDS)
            before = staff_of(case)
            for name, value in values.items():
                setattr(case, name, value)
            scope.record_change(
                child.id, "case_file", case.id, "updated", field_changes(old, columns(case, CASE_FIELDS))
            )
            after = staff_of(case)
            if after != before:  # notify tells the newly named
                scope.publish(
                    REGISTRY_CASE,
                    child.id,
                    events_pb2.CaseAssigned(
                        case_id=case.id,
                        child_id=child.id,
                        previous_responsible_person=before.responsible_person,
                        previous_social_worker=before.social_worker,
                        previous_child_director=before.child_director,
                        **after.event_fields(),
                    ),
                )
            scope.commit()
            return case.id, after, case.version

    def change_case_status(
        self, child_id: str, status: str, reason: str, expected_version: int | None = None
    ) -> CaseStatusView:
        target = parse_code(CaseStatus, status, "status")
        reason = clean_text(reason, "reason", max_chars=LONG_TEXT)
        with self._scope(CASE_MANAGER_ROLES) as scope:
            child = scope.child(child_id)
            case = scope.case_file(child.id)
            check_version(case, expected_version, "the case file")
            current = CaseStatus(case.status)
            check_transition(current, target, _progress(scope, child.id), reason)
            old = columns(case, CASE_FIELDS)
            case.status, case.status_changed_at = target.value, scope.now
            if reason:
                case.status_reason = reason
            reschedule_visits(scope, child, case)
            scope.record_change(
                child.id, "case_file", case.id, "updated", field_changes(old, columns(case, CASE_FIELDS))
            )
            summary = f"档案状态 case status: {current.label} → {target.label}" + (f" ({reason})" if reason else "")
            scope.add_timeline(child.id, "case_status", summary, "registry", new_id())
            scope.publish(
                REGISTRY_CASE,
                child.id,
                events_pb2.CaseStatusChanged(
                    case_id=case.id,
                    child_id=child.id,
                    from_status=current.value,
                    to_status=target.value,
                    reason=reason,
                    **staff_of(case).event_fields(),
                ),
            )
            scope.commit()
            return CaseStatusView(case.id, target, case.next_visit_due, case.version)


def staff_of(case: CaseFileRecord) -> CaseStaff:
    return CaseStaff(**{name: getattr(case, name) for name in STAFF_FIELDS})


def _progress(scope: Scope, child_id: str) -> CaseProgress:
    assessed = scope.session.scalar(
        select(func.count()).where(AssessmentRecord.tenant_id == scope.tenant, AssessmentRecord.child_id == child_id)
    )
    open_actions = scope.session.scalar(
        select(func.count()).where(
            PlanActionRecord.tenant_id == scope.tenant,
            PlanActionRecord.child_id == child_id,
            PlanActionRecord.status.not_in([s.value for s in ActionStatus if s.is_finished]),
        )
    )
    return CaseProgress(assessed=bool(assessed), open_plan_actions=int(open_actions or 0))
