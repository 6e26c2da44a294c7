"""Translation between the registry's views and its protobuf contract (one place for both directions), and its
domain events as the outbox publishes them (`pending`)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import casework_pb2, events_pb2, registry_pb2

from platform_runtime.errors import InvalidInput
from platform_runtime.events import PendingEvent
from platform_runtime.topics import PLATFORM_TENANT, REGISTRY_CASE, REGISTRY_CHILD
from platform_runtime.vocabulary_messages import sex_from_proto, sex_to_proto
from services.registry.domain import events
from services.registry.domain.assessment import DomainFinding
from services.registry.domain.casefile import STAFF_FIELDS, CaseStaff
from services.registry.domain.child import ChildView, ContactPerson
from services.registry.domain.codes import (
    AssessmentDomain,
    DisabilityGrade,
    DisabilityType,
    GuardianStatus,
    Relationship,
    parse_code,
)
from services.registry.domain.family import FamilyMember
from services.registry.service_layer.commands import (
    MatchProbe,
    NewAssessment,
    NewCategory,
    NewPlanAction,
    NewVisit,
    PlanActionChange,
    RegisterChild,
    UpdateChild,
)
from services.registry.service_layer.views import (
    AssessmentView,
    Candidate,
    CaseFileView,
    CategoryView,
    ChangeView,
    FamilyMemberView,
    PlanActionView,
    PlanGoalView,
    TenantView,
    Village,
    VisitView,
)


def to_date(value: common_pb2.Date, field: str = "birth_date") -> date | None:
    if not value.year:
        return None
    try:
        return date(value.year, value.month, value.day)
    except ValueError:
        raise InvalidInput("is not a real date", field) from None


def from_date(value: date | None) -> common_pb2.Date:
    return common_pb2.Date(year=value.year, month=value.month, day=value.day) if value else common_pb2.Date()


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def child(view: ChildView) -> registry_pb2.Child:
    return registry_pb2.Child(
        child_id=view.child_id,
        tenant=view.tenant,
        legal_name=view.legal_name,
        other_names=list(view.other_names),
        sex=sex_to_proto(view.sex),
        birth_date=from_date(view.birth_date),
        identity_number_masked=view.identity_number_masked,
        ethnicity_code=view.ethnicity_code,
        household_division_code=view.household_division_code,
        household_address=view.household_address,
        residence_division_code=view.residence_division_code,
        residence_address=view.residence_address,
        school=view.school,
        grade=view.grade,
        categories=list(view.categories),
        provisional=view.provisional,
        created_at=timestamp(view.created_at),
        disability_type=view.disability_type,
        disability_grade=view.disability_grade,
        serious_illness=view.serious_illness,
        contact_person=registry_pb2.ContactPerson(
            name=view.contact_person.name,
            relationship=view.contact_person.relationship,
            phone=view.contact_person.phone,
        ),
        version=view.version,
    )


def tenant(view: TenantView) -> registry_pb2.Tenant:
    return tenant_message(view.code, view.name, view.district_code, view.onboarded_at)


def tenant_message(code: str, name: str, district_code: str, onboarded_at: datetime) -> registry_pb2.Tenant:
    return registry_pb2.Tenant(code=code, name=name, district_code=district_code, onboarded_at=timestamp(onboarded_at))


def village(view: Village) -> registry_pb2.Village:
    return registry_pb2.Village(code=view.code, name=view.name, retired=view.retired)


def village_of(message: registry_pb2.Village) -> Village:
    return Village(code=message.code, name=message.name, retired=message.retired)


def register_command(request: registry_pb2.RegisterChildRequest | registry_pb2.UpdateChildRequest) -> RegisterChild:
    return RegisterChild(
        legal_name=request.legal_name,
        other_names=tuple(request.other_names),
        sex=sex_from_proto(request.sex),
        birth_date=to_date(request.birth_date),
        identity_number=request.identity_number,
        ethnicity_code=request.ethnicity_code,
        household_division_code=request.household_division_code,
        household_address=request.household_address,
        residence_division_code=request.residence_division_code,
        residence_address=request.residence_address,
        school=request.school,
        grade=request.grade,
        provisional=request.provisional,
        description=request.description,
        disability_type=request.disability_type,
        disability_grade=request.disability_grade,
        serious_illness=request.serious_illness,
        contact_person=ContactPerson(
            request.contact_person.name, request.contact_person.relationship, request.contact_person.phone
        ),
    )


def update_command(request: registry_pb2.UpdateChildRequest) -> UpdateChild:
    # Mask paths are this message's field names; the nested contact person changes as a whole.
    paths = {path.split(".")[0] for path in request.update_mask.paths}
    return UpdateChild(request.child_id, register_command(request), frozenset(paths), expected_version(request))


def expected_version(request: Any) -> int | None:
    """The version an edit request says it read (proto3 `optional`: unset means no check asked for)."""
    return int(request.expected_version) if request.HasField("expected_version") else None


def match_probe(request: registry_pb2.MatchChildRequest) -> MatchProbe:
    return MatchProbe(
        name=request.name,
        identity_number=request.identity_number,
        birth_date=to_date(request.birth_date),
        approximate_age=request.approximate_age,
        sex=sex_from_proto(request.sex),
        guardian_names=tuple(request.guardian_names),
        division_code=request.division_code,
        school=request.school,
    )


def candidate(value: Candidate) -> registry_pb2.MatchCandidate:
    return registry_pb2.MatchCandidate(child=child(value.child), score=value.score, reasons=list(value.reasons))


def case_file(view: CaseFileView) -> registry_pb2.CaseFile:
    return registry_pb2.CaseFile(
        case_id=view.case_id,
        child=child(view.child),
        status=view.status,
        responsible_person=view.responsible_person,
        social_worker=view.social_worker,
        child_director=view.child_director,
        responsible_user_id=view.responsible_user_id,
        social_worker_user_id=view.social_worker_user_id,
        child_director_user_id=view.child_director_user_id,
        timeline=[
            registry_pb2.TimelineEntry(
                at=timestamp(item.at),
                kind=item.kind,
                summary=item.summary,
                source_service=item.source_service,
                reference_id=item.reference_id,
            )
            for item in view.timeline
        ],
        status_reason=view.status_reason,
        family=[family_member(m) for m in view.family],
        categories=[category_entry(c) for c in view.categories],
        assessments=[assessment(a) for a in view.assessments],
        risk_level=view.risk_level,
        plan=[plan_goal(g) for g in view.plan],
        visits=[visit(v) for v in view.visits],
        next_visit_due=from_date(view.next_visit_due),
        merged_child_ids=list(view.merged_child_ids),
        version=view.version,
    )


# --- casework -------------------------------------------------------------------------------------------------


def family_member(view: FamilyMemberView) -> registry_pb2.FamilyMember:
    facts = view.facts
    return registry_pb2.FamilyMember(
        member_id=view.member_id,
        child_id=view.child_id,
        name=facts.name,
        relationship=facts.relationship.value,
        guardian=facts.guardian,
        status=facts.status.value,
        status_since=from_date(facts.status_since),
        status_until=from_date(facts.status_until),
        evidence=facts.evidence,
        evidence_document=facts.evidence_document,
        disability_type=facts.disability_type.value if facts.disability_type else "",
        disability_grade=facts.disability_grade.value if facts.disability_grade else "",
        seriously_ill=facts.seriously_ill,
    )


def member_facts(message: registry_pb2.FamilyMember) -> FamilyMember:
    return FamilyMember(
        relationship=parse_code(Relationship, message.relationship, "relationship"),
        name=message.name,
        guardian=message.guardian,
        status=parse_code(GuardianStatus, message.status or GuardianStatus.NORMAL.value, "status"),
        status_since=to_date(message.status_since, "status_since"),
        status_until=to_date(message.status_until, "status_until"),
        evidence=message.evidence,
        evidence_document=message.evidence_document,
        disability_type=(
            parse_code(DisabilityType, message.disability_type, "disability_type") if message.disability_type else None
        ),
        disability_grade=(
            parse_code(DisabilityGrade, message.disability_grade, "disability_grade")
            if message.disability_grade
            else None
        ),
        seriously_ill=message.seriously_ill,
    )


def new_category(request: casework_pb2.AddCategoryRequest) -> NewCategory:
    return NewCategory(
        child_id=request.child_id,
        category=request.category,
        source=request.source,
        evidence=request.evidence,
        evidence_document=request.evidence_document,
        valid_from=to_date(request.valid_from, "valid_from"),
        valid_to=to_date(request.valid_to, "valid_to"),
    )


def category_entry(view: CategoryView) -> registry_pb2.CategoryEntry:
    return registry_pb2.CategoryEntry(
        entry_id=view.entry_id,
        child_id=view.child_id,
        category=view.category.value,
        source=view.source.value,
        evidence=view.evidence,
        evidence_document=view.evidence_document,
        valid_from=from_date(view.valid_from),
        valid_to=from_date(view.valid_to),
        rule_code=view.rule_code,
        reason=view.reason,
        recorded_by=view.recorded_by,
        recorded_at=timestamp(view.recorded_at),
        current=view.current,
    )


def case_staff(request: casework_pb2.AssignCaseRequest) -> CaseStaff:
    return CaseStaff(
        request.responsible_person,
        request.social_worker,
        request.child_director,
        request.responsible_user_id,
        request.social_worker_user_id,
        request.child_director_user_id,
    )


def new_assessment(request: casework_pb2.RecordAssessmentRequest) -> NewAssessment:
    return NewAssessment(
        child_id=request.child_id,
        kind=request.kind,
        domains=tuple(
            DomainFinding(parse_code(AssessmentDomain, d.domain, "domains.domain"), d.score, d.finding)
            for d in request.domains
        ),
        assessed_on=to_date(request.assessed_on, "assessed_on"),
        assessor=request.assessor,
        summary=request.summary,
    )


def assessment(view: AssessmentView) -> registry_pb2.Assessment:
    return registry_pb2.Assessment(
        assessment_id=view.assessment_id,
        child_id=view.child_id,
        kind=view.kind.value,
        assessed_on=from_date(view.assessed_on),
        assessor=view.assessor,
        domains=[
            registry_pb2.DomainFinding(domain=d.domain.value, score=d.score, finding=d.finding) for d in view.domains
        ],
        risk_level=view.risk_level.value,
        risk_reasons=list(view.risk_reasons),
        summary=view.summary,
        recorded_by=view.recorded_by,
        recorded_at=timestamp(view.recorded_at),
    )


def new_plan_action(request: casework_pb2.AddPlanActionRequest) -> NewPlanAction:
    return NewPlanAction(
        goal_id=request.goal_id,
        description=request.description,
        owner_kind=request.owner_kind,
        owner=request.owner,
        due_on=to_date(request.due_on, "due_on"),
        referral_id=request.referral_id,
    )


def plan_action_change(request: casework_pb2.UpdatePlanActionRequest) -> PlanActionChange:
    return PlanActionChange(
        action_id=request.action_id, status=request.status, due_on=to_date(request.due_on, "due_on"), note=request.note
    )


def plan_action(view: PlanActionView) -> registry_pb2.PlanAction:
    return registry_pb2.PlanAction(
        action_id=view.action_id,
        goal_id=view.goal_id,
        description=view.description,
        owner_kind=view.owner_kind.value,
        owner=view.owner,
        due_on=from_date(view.due_on),
        status=view.status.value,
        referral_id=view.referral_id,
        note=view.note,
        overdue=view.overdue,
        updated_at=timestamp(view.updated_at),
    )


def plan_goal(view: PlanGoalView) -> registry_pb2.PlanGoal:
    return registry_pb2.PlanGoal(
        goal_id=view.goal_id,
        child_id=view.child_id,
        description=view.description,
        status=view.status.value,
        actions=[plan_action(a) for a in view.actions],
    )


def new_visit(request: casework_pb2.RecordVisitRequest) -> NewVisit:
    return NewVisit(
        child_id=request.child_id,
        visitor=request.visitor,
        findings=request.findings,
        visited_on=to_date(request.visited_on, "visited_on"),
    )


def visit(view: VisitView) -> registry_pb2.Visit:
    return registry_pb2.Visit(
        visit_id=view.visit_id,
        child_id=view.child_id,
        visited_on=from_date(view.visited_on),
        visitor=view.visitor,
        findings=view.findings,
        recorded_by=view.recorded_by,
        recorded_at=timestamp(view.recorded_at),
    )


def change_entry(view: ChangeView) -> casework_pb2.ChangeEntry:
    return casework_pb2.ChangeEntry(
        at=timestamp(view.at),
        actor=view.actor,
        role=view.role,
        entity_type=view.entity_type,
        entity_id=view.entity_id,
        action=view.action,
        changes=[
            casework_pb2.FieldChange(
                field=name,
                before=json.dumps(values[0], ensure_ascii=False),
                after=json.dumps(values[1], ensure_ascii=False),
            )
            for name, values in view.changes.items()
        ],
    )


# -- domain events -------------------------------------------------------------------------------------------


def pending(tenant: str, event: events.RegistryEvent) -> PendingEvent:
    """A domain event as the outbox takes it: a new town on `platform.tenant` (keyed by its code), a merge
    keyed by the merged record, everything else keyed by its child, the case's events on `registry.case`."""
    message = event_message(event)
    match event:
        case events.TenantOnboarded():
            return PendingEvent(PLATFORM_TENANT, tenant, "tenant", event.code, message)
        case events.ChildrenMerged() | events.ChildrenUnmerged():
            return PendingEvent(REGISTRY_CHILD, tenant, "child", event.merged_child_id, message)
        case (
            events.ChildRegistered()
            | events.ChildCategoriesChanged()
            | events.ChildMoved()
            | events.ChildBirthDateCorrected()
            | events.ChildIdentityChanged()
        ):
            return PendingEvent(REGISTRY_CHILD, tenant, "child", event.child_id, message)
        case _:
            return PendingEvent(REGISTRY_CASE, tenant, "child", event.child_id, message)


def event_message(event: events.RegistryEvent) -> Message:
    match event:
        case events.TenantOnboarded():
            return events_pb2.TenantOnboarded(
                tenant=tenant_message(event.code, event.name, event.district_code, event.onboarded_at)
            )
        case events.ChildRegistered():
            return events_pb2.ChildRegistered(
                child_id=event.child_id,
                birth_date=from_date(event.birth_date),
                household_division_code=event.household_division_code,
                registered_at=timestamp(event.registered_at),
                person_key=event.person_key,
            )
        case events.ChildMoved():
            return events_pb2.ChildMoved(
                child_id=event.child_id,
                from_residence_division_code=event.from_residence_division_code,
                to_residence_division_code=event.to_residence_division_code,
                from_household_division_code=event.from_household_division_code,
                to_household_division_code=event.to_household_division_code,
                effective_on=from_date(event.effective_on),
            )
        case events.ChildBirthDateCorrected():
            return events_pb2.ChildBirthDateCorrected(child_id=event.child_id, birth_date=from_date(event.birth_date))
        case events.ChildIdentityChanged():
            return events_pb2.ChildIdentityChanged(child_id=event.child_id, person_key=event.person_key)
        case events.ChildCategoriesChanged():
            return events_pb2.ChildCategoriesChanged(
                child_id=event.child_id,
                categories=list(event.categories),
                added=list(event.added),
                removed=list(event.removed),
            )
        case events.ChildrenMerged():
            return events_pb2.ChildrenMerged(
                surviving_child_id=event.surviving_child_id,
                merged_child_id=event.merged_child_id,
                merged_by=event.merged_by,
            )
        case events.ChildrenUnmerged():
            return events_pb2.ChildrenUnmerged(
                surviving_child_id=event.surviving_child_id,
                merged_child_id=event.merged_child_id,
                unmerged_by=event.unmerged_by,
            )
        case events.CaseFileOpened():
            return events_pb2.CaseFileOpened(case_id=event.case_id, child_id=event.child_id, status=event.status.value)
        case events.ReportLinkedToCase():
            return events_pb2.ReportLinkedToCase(
                case_id=event.case_id, child_id=event.child_id, report_id=event.report_id
            )
        case events.CaseAssigned():
            return events_pb2.CaseAssigned(
                case_id=event.case_id,
                child_id=event.child_id,
                previous_responsible_person=event.previous.responsible_person,
                previous_social_worker=event.previous.social_worker,
                previous_child_director=event.previous.child_director,
                **staff_fields(event.staff),
            )
        case events.CaseStatusChanged():
            return events_pb2.CaseStatusChanged(
                case_id=event.case_id,
                child_id=event.child_id,
                from_status=event.from_status.value,
                to_status=event.to_status.value,
                **staff_fields(event.staff),
            )
        case events.VisitOverdue():
            return events_pb2.VisitOverdue(
                case_id=event.case_id,
                child_id=event.child_id,
                due_on=from_date(event.due_on),
                days_overdue=event.days_overdue,
                risk_level=event.risk_level.value if event.risk_level else "",
                **staff_fields(event.staff),
            )


def staff_fields(staff: CaseStaff) -> dict[str, str]:
    """The named staff as the case's events and AssignCaseResponse carry them (same field names)."""
    return {name: getattr(staff, name) for name in STAFF_FIELDS}
