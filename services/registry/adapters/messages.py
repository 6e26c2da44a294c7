"""Translation between the registry's views and its protobuf contract (one place for both directions)."""

from __future__ import annotations

from datetime import date, datetime

from google.protobuf import timestamp_pb2
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2

from services.registry.domain.codes import Sex
from services.registry.service_layer.views import (
    Candidate,
    CaseFileView,
    ChildView,
    MatchProbe,
    RegisterChild,
    TenantView,
)

_SEX_TO_PROTO = {
    Sex.MALE: common_pb2.SEX_MALE,
    Sex.FEMALE: common_pb2.SEX_FEMALE,
    Sex.UNKNOWN: common_pb2.SEX_UNKNOWN,
    Sex.UNSPECIFIED: common_pb2.SEX_UNSPECIFIED,
}
_SEX_FROM_PROTO = {
    common_pb2.SEX_MALE: Sex.MALE,
    common_pb2.SEX_FEMALE: Sex.FEMALE,
    common_pb2.SEX_UNKNOWN: Sex.UNKNOWN,
    common_pb2.SEX_UNSPECIFIED: Sex.UNKNOWN,
}


def to_date(value: common_pb2.Date) -> date | None:
    if not value.year:
        return None
    try:
        return date(value.year, value.month, value.day)
    except ValueError:
        from platform_runtime.errors import InvalidInput

        raise InvalidInput("is not a real date", "birth_date") from None


def from_date(value: date | None) -> common_pb2.Date:
    return common_pb2.Date(year=value.year, month=value.month, day=value.day) if value else common_pb2.Date()


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def sex_from_proto(value: int) -> Sex:
    return _SEX_FROM_PROTO.get(common_pb2.Sex.ValueType(value), Sex.UNKNOWN)


def child(view: ChildView) -> registry_pb2.Child:
    return registry_pb2.Child(
        child_id=view.child_id,
        tenant=view.tenant,
        legal_name=view.legal_name,
        other_names=list(view.other_names),
        sex=_SEX_TO_PROTO[view.sex],
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
    )


def tenant(view: TenantView) -> registry_pb2.Tenant:
    return registry_pb2.Tenant(
        code=view.code, name=view.name, district_code=view.district_code, onboarded_at=timestamp(view.onboarded_at)
    )


def register_command(request: registry_pb2.RegisterChildRequest) -> RegisterChild:
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
    )


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
    )
