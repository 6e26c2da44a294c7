"""Guardianship and needs assessments (RecordAssessment), which set the case's risk level."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from platform_runtime.db import new_id
from services.registry.adapters.orm import AssessmentRecord
from services.registry.domain.assessment import DomainFinding, check_assessment_allowed, check_findings, risk_level
from services.registry.domain.codes import AssessmentDomain, AssessmentKind, CaseStatus, RiskLevel, parse_code
from services.registry.service_layer.history import CASE_FIELDS, columns, field_changes
from services.registry.service_layer.scope import (
    CASE_MANAGER_ROLES,
    LONG_TEXT,
    SHORT_TEXT,
    CaseworkUseCases,
    Scope,
    clean_text,
    past_or_today,
)
from services.registry.service_layer.views import AssessmentView, NewAssessment
from services.registry.service_layer.visit_schedule import reschedule_visits

ASSESSMENT_FIELDS = ("kind", "assessed_on", "assessor", "domains", "risk_level", "risk_reasons", "summary")


class AssessmentUseCases(CaseworkUseCases):
    def record_assessment(self, command: NewAssessment) -> tuple[AssessmentView, date | None]:
        kind = parse_code(AssessmentKind, command.kind, "kind")
        findings = check_findings(
            DomainFinding(f.domain, f.score, clean_text(f.finding, f"domains.{f.domain.value}", max_chars=LONG_TEXT))
            for f in command.domains
        )
        summary = clean_text(command.summary, "summary", max_chars=LONG_TEXT)
        with self._scope(CASE_MANAGER_ROLES) as scope:
            assessed_on = past_or_today(command.assessed_on, scope.today, "assessed_on")
            child = scope.child(command.child_id)
            case = scope.case_file(child.id)
            previous = assessments_of(scope, child.id)
            check_assessment_allowed(kind, CaseStatus(case.status), len(previous))
            risk = risk_level(findings)
            record = AssessmentRecord(
                id=new_id(),
                tenant_id=scope.tenant,
                child_id=child.id,
                kind=kind.value,
                assessed_on=assessed_on,
                assessor=clean_text(command.assessor, "assessor", max_chars=SHORT_TEXT) or scope.caller.display_name,
                domains=[{"domain": f.domain.value, "score": f.score, "finding": f.finding} for f in findings],
                risk_level=risk.level.value,
                risk_reasons=list(risk.reasons),
                summary=summary,
                recorded_by=scope.caller.user_id,
                recorded_at=scope.now,
            )
            scope.session.add(record)
            scope.record_change(
                child.id, "assessment", record.id, "created", field_changes({}, columns(record, ASSESSMENT_FIELDS))
            )
            # The latest assessment sets the risk level; one entered late for an earlier day does not.
            if all(p.assessed_on <= assessed_on for p in previous):
                old = columns(case, CASE_FIELDS)
                case.risk_level = risk.level.value
                scope.record_change(
                    child.id, "case_file", case.id, "updated", field_changes(old, columns(case, CASE_FIELDS))
                )
            reschedule_visits(scope, child, case)
            scope.add_timeline(
                child.id,
                "assessment",
                f"{kind.label} assessment on {assessed_on}: {risk.level.label}",
                "registry",
                record.id,
            )
            scope.commit()
            return _assessment_view(record), case.next_visit_due


def assessment_views(scope: Scope, child_id: str) -> list[AssessmentView]:
    return [_assessment_view(row) for row in assessments_of(scope, child_id)]


def assessments_of(scope: Scope, child_id: str) -> list[AssessmentRecord]:
    return list(
        scope.session.scalars(
            select(AssessmentRecord)
            .where(AssessmentRecord.tenant_id == scope.tenant, AssessmentRecord.child_id == child_id)
            .order_by(AssessmentRecord.assessed_on, AssessmentRecord.recorded_at)
        )
    )


def _assessment_view(record: AssessmentRecord) -> AssessmentView:
    return AssessmentView(
        assessment_id=record.id,
        child_id=record.child_id,
        kind=AssessmentKind(record.kind),
        assessed_on=record.assessed_on,
        assessor=record.assessor,
        domains=tuple(
            DomainFinding(AssessmentDomain(str(d["domain"])), int(str(d["score"])), str(d["finding"]))
            for d in record.domains
        ),
        risk_level=RiskLevel(record.risk_level),
        risk_reasons=tuple(record.risk_reasons),
        summary=record.summary,
        recorded_by=record.recorded_by,
        recorded_at=record.recorded_at,
    )
