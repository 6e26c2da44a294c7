"""Guardianship and needs assessments (RecordAssessment), which set the case's risk level."""

from __future__ import annotations

from datetime import date

from platform_runtime.db import new_id
from services.registry.domain.assessment import (
    Assessment,
    DomainFinding,
    check_assessment_allowed,
    check_findings,
    risk_level,
)
from services.registry.domain.codes import AssessmentKind, parse_code
from services.registry.service_layer.access import CASE_MANAGER_ROLES
from services.registry.service_layer.commands import NewAssessment
from services.registry.service_layer.inputs import LONG_TEXT, SHORT_TEXT, clean_text, past_or_today
from services.registry.service_layer.ports import RegistryUnitOfWork
from services.registry.service_layer.use_cases import CaseworkUseCases
from services.registry.service_layer.views import AssessmentView
from services.registry.service_layer.visit_schedule import schedule_visits


class AssessmentUseCases(CaseworkUseCases):
    def record_assessment(self, command: NewAssessment) -> tuple[AssessmentView, date | None]:
        kind = parse_code(AssessmentKind, command.kind, "kind")
        findings = check_findings(
            DomainFinding(f.domain, f.score, clean_text(f.finding, f"domains.{f.domain.value}", max_chars=LONG_TEXT))
            for f in command.domains
        )
        summary = clean_text(command.summary, "summary", max_chars=LONG_TEXT)
        with self._work(CASE_MANAGER_ROLES) as uow:
            assessed_on = past_or_today(command.assessed_on, uow.today, "assessed_on")
            case = uow.case_files.for_child(uow.children.current_id(command.child_id))
            previous = uow.assessments.of_child(case.child_id)
            check_assessment_allowed(kind, case.status, len(previous))
            assessment = Assessment(
                assessment_id=new_id(),
                child_id=case.child_id,
                kind=kind,
                assessed_on=assessed_on,
                assessor=clean_text(command.assessor, "assessor", max_chars=SHORT_TEXT) or uow.caller.display_name,
                findings=findings,
                risk=risk_level(findings),
                summary=summary,
                recorded_by=uow.caller.user_id,
                recorded_at=uow.now,
            )
            uow.assessments.add(assessment)
            # The latest assessment sets the risk level; one entered late for an earlier day does not.
            if all(p.assessed_on <= assessed_on for p in previous):
                case.risk_level = assessment.risk.level
            schedule_visits(uow, case)
            uow.case_files.save(case)
            uow.add_timeline(
                case.child_id,
                "assessment",
                f"{kind.label} assessment on {assessed_on}: {assessment.risk.level.label}",
                assessment.assessment_id,
            )
            uow.commit()
            return assessment_view(assessment), case.next_visit_due


def assessment_views(uow: RegistryUnitOfWork, child_id: str) -> list[AssessmentView]:
    return [assessment_view(a) for a in uow.assessments.of_child(child_id)]


def assessment_view(assessment: Assessment) -> AssessmentView:
    return AssessmentView(
        assessment_id=assessment.assessment_id,
        child_id=assessment.child_id,
        kind=assessment.kind,
        assessed_on=assessment.assessed_on,
        assessor=assessment.assessor,
        domains=assessment.findings,
        risk_level=assessment.risk.level,
        risk_reasons=assessment.risk.reasons,
        summary=assessment.summary,
        recorded_by=assessment.recorded_by,
        recorded_at=assessment.recorded_at,
    )
