"""A family member's facts as the record holds them, and the guardians' names reports may give."""

from __future__ import annotations

from collections.abc import Iterable

from services.registry.adapters.orm import FamilyMemberRecord
from services.registry.domain.codes import DisabilityGrade, DisabilityType, GuardianStatus, Relationship
from services.registry.domain.family import FamilyMember

FAMILY_FIELDS = (
    "name",
    "relationship",
    "guardian",
    "status",
    "status_since",
    "status_until",
    "evidence",
    "evidence_document",
    "disability_type",
    "disability_grade",
    "seriously_ill",
)


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
    record.name = facts.name.strip()
    record.relationship = facts.relationship.value
    record.guardian = facts.guardian
    record.status = facts.status.value
    record.status_since = facts.status_since
    record.status_until = facts.status_until
    record.evidence = facts.evidence.strip()
    record.evidence_document = facts.evidence_document.strip()
    record.disability_type = facts.disability_type.value if facts.disability_type else ""
    record.disability_grade = facts.disability_grade.value if facts.disability_grade else ""
    record.seriously_ill = facts.seriously_ill


def guardian_names(members: Iterable[FamilyMemberRecord]) -> tuple[str, ...]:
    """Names a report may give as the child's guardians: parents and whoever is recorded as guardian."""
    return tuple(m.name for m in members if m.name and (m.guardian or Relationship(m.relationship).is_parent))
