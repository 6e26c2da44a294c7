"""The case itself: its named staff (AssignCase) and its status (ChangeCaseStatus)."""

from __future__ import annotations

from dataclasses import fields

from platform_runtime.db import new_id
from services.registry.domain.casefile import CaseStaff
from services.registry.domain.codes import CaseStatus, parse_code
from services.registry.domain.events import CaseAssigned, CaseStatusChanged
from services.registry.service_layer.access import CASE_MANAGER_ROLES
from services.registry.service_layer.inputs import LONG_TEXT, SHORT_TEXT, check_version, clean_text
from services.registry.service_layer.use_cases import CaseworkUseCases
from services.registry.service_layer.views import CaseStatusView
from services.registry.service_layer.visit_schedule import schedule_visits

USER_ID = 64  # a gateway account id


class CaseStatusUseCases(CaseworkUseCases):
    def assign_case(
        self, child_id: str, staff: CaseStaff, expected_version: int | None = None
    ) -> tuple[str, CaseStaff, int]:
        named = CaseStaff(
            **{
                f.name: clean_text(
                    getattr(staff, f.name), f.name, max_chars=USER_ID if f.name.endswith("_user_id") else SHORT_TEXT
                )
                for f in fields(CaseStaff)
            }
        )
        with self._work(CASE_MANAGER_ROLES) as uow:
            case = uow.case_files.for_child(uow.children.current_id(child_id))
            check_version(case, expected_version, "the case file")
            previous = case.assign(named)
            uow.case_files.save(case)
            if previous is not None:  # notify tells the newly named
                uow.emit(CaseAssigned(case.case_id, case.child_id, staff=case.staff, previous=previous))
            uow.commit()
            return case.case_id, case.staff, case.version

    def change_case_status(
        self, child_id: str, status: str, reason: str, expected_version: int | None = None
    ) -> CaseStatusView:
        target = parse_code(CaseStatus, status, "status")
        reason = clean_text(reason, "reason", max_chars=LONG_TEXT)
        with self._work(CASE_MANAGER_ROLES) as uow:
            case = uow.case_files.for_child(uow.children.current_id(child_id))
            check_version(case, expected_version, "the case file")
            current = case.change_status(target, uow.case_files.progress(case.child_id), reason, uow.now)
            schedule_visits(uow, case)
            uow.case_files.save(case)
            summary = f"档案状态 case status: {current.label} → {target.label}" + (f" ({reason})" if reason else "")
            uow.add_timeline(case.child_id, "case_status", summary, new_id())
            uow.emit(CaseStatusChanged(case.case_id, case.child_id, current, target, case.staff))
            uow.commit()
            return CaseStatusView(case.case_id, target, case.next_visit_due, case.version)
