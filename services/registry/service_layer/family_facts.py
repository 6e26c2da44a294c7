"""A family member's facts as the record holds them, and the guardians' names reports may give."""

from __future__ import annotations

from collections.abc import Iterable

from services.registry.adapters.orm import FamilyMemberRecord
from services.registry.domain import family
from services.registry.domain.codes import DisabilityGrade, DisabilityType, GuardianStatus, Relationship
from services.registry.domain.family import FamilyMember, stored_facts


def member_facts(record: FamilyMemberRecord) -> FamilyMember:
    return FamilyMember(
        relationship=Relationship(record.relationship),
        name=record.name,
        guardian=record.guardian,
        status=GuardianStatus(record.status),
        status_since=record.status_since,
        status_until=record.status_until,
        evidence=record.evidence,
        evidence_document=record.evidence_document,
        disability_type=DisabilityType(record.disability_type) if record.disability_type else None,
        disability_grade=DisabilityGrade(record.disability_grade) if record.disability_grade else None,
        seriously_ill=record.seriously_ill,
    )


def write_member_facts(record: FamilyMemberRecord, facts: FamilyMember) -> None:
    for name, value in stored_facts(facts).items():
        setattr(record, name, value)


def guardian_names(members: Iterable[FamilyMemberRecord]) -> tuple[str, ...]:
    """Names a report may give as the child's guardians (domain/family.guardian_names), from the records."""
    return family.guardian_names((m.name, m.guardian, Relationship(m.relationship)) for m in members)
