"""The child's family and guardians, and the snapshot of them the derived-category rules read.

A member's situation (status) is recorded with the day it started, the day it ends when known (the end of
a sentence, the day a missing parent came back) and its evidence. Past situations stay in the change history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from platform_runtime import errors
from services.registry.domain.codes import DisabilityGrade, DisabilityType, GuardianStatus, Relationship
from services.registry.domain.rules import ChildSnapshot, ParentSnapshot

# Nobody can be a guardian in these situations (Civil Code Art. 36: revoked guardianship).
_CANNOT_GUARD = frozenset({GuardianStatus.DECEASED, GuardianStatus.GUARDIANSHIP_REVOKED})


@dataclass(frozen=True)
class FamilyMember:
    relationship: Relationship
    name: str = ""  # may be unknown (a father who left before the child was born)
    guardian: bool = False
    status: GuardianStatus = GuardianStatus.NORMAL
    status_since: date | None = None
    status_until: date | None = None  # last day, when known
    evidence: str = ""
    evidence_document: str = ""  # reference to a scanned document (court ruling, death certificate...)
    disability_type: DisabilityType | None = None
    disability_grade: DisabilityGrade | None = None
    seriously_ill: bool = False

    def status_on(self, day: date) -> GuardianStatus:
        """The situation on `day`: one that has not started yet, or has ended, no longer counts."""
        if self.status_since is not None and self.status_since > day:
            return GuardianStatus.NORMAL
        if self.status_until is not None and self.status_until < day:
            return GuardianStatus.NORMAL
        return self.status


# A member's facts as the record and the change history hold them.
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


def stored_facts(facts: FamilyMember) -> dict[str, object]:
    """The member's facts as stored (FAMILY_FIELDS): text trimmed, codes by value, "" for no disability."""
    return {
        "name": facts.name.strip(),
        "relationship": facts.relationship.value,
        "guardian": facts.guardian,
        "status": facts.status.value,
        "status_since": facts.status_since,
        "status_until": facts.status_until,
        "evidence": facts.evidence.strip(),
        "evidence_document": facts.evidence_document.strip(),
        "disability_type": facts.disability_type.value if facts.disability_type else "",
        "disability_grade": facts.disability_grade.value if facts.disability_grade else "",
        "seriously_ill": facts.seriously_ill,
    }


@dataclass
class FamilyMemberEntry:
    """A member of the child's family as the register keeps them."""

    member_id: str
    child_id: str
    facts: FamilyMember
    created_at: datetime

    @property
    def history_key(self) -> tuple[str, str, str]:
        return (self.child_id, "family_member", self.member_id)

    def history_values(self) -> dict[str, object]:
        return stored_facts(self.facts)


def guardian_names(members: Iterable[tuple[str, bool, Relationship]]) -> tuple[str, ...]:
    """Names a report may give as the child's guardians: parents and whoever is recorded as guardian, from
    each member's (name, guardian, relationship)."""
    return tuple(name for name, guardian, relationship in members if name and (guardian or relationship.is_parent))


def check_member(member: FamilyMember) -> None:
    """Raise InvalidInput with every problem of the member's facts at once."""
    problems: list[errors.FieldViolation] = []
    if member.status is not GuardianStatus.NORMAL:
        if member.status_since is None:
            problems.append(errors.FieldViolation("status_since", "a situation other than normal needs its start"))
        if not member.evidence.strip() and not member.evidence_document.strip():
            problems.append(errors.FieldViolation("evidence", "a situation other than normal needs its evidence"))
    if member.status_since and member.status_until and member.status_until < member.status_since:
        problems.append(errors.FieldViolation("status_until", "ends before it starts"))
    if (member.disability_type is None) != (member.disability_grade is None):
        problems.append(errors.FieldViolation("disability_grade", "a disability has both a type and a grade"))
    if member.guardian and member.status in _CANNOT_GUARD:
        problems.append(errors.FieldViolation("guardian", f"cannot be a guardian: {member.status.value}"))
    if len(member.name) > 100:
        problems.append(errors.FieldViolation("name", "must be at most 100 characters"))
    if problems:
        raise errors.InvalidInput(problems)


def child_snapshot(
    *,
    birth_date: date | None,
    household_registration_code: str,
    district_code: str,
    members: Iterable[FamilyMember],
    on: date,
) -> ChildSnapshot | None:
    """What the rules see of the child on `on`; None when the birth date is unknown (no rule can decide)."""
    if birth_date is None or birth_date > on:
        return None
    parents = tuple(_parent(member, on) for member in members if member.relationship.is_parent)
    return ChildSnapshot(
        birth_date=birth_date,
        household_registration_code=household_registration_code or None,
        district_code=district_code,
        parents=parents,
    )


def _parent(member: FamilyMember, on: date) -> ParentSnapshot:
    status = member.status_on(on)
    current = status is member.status
    return ParentSnapshot(
        relationship=member.relationship,
        status=status,
        status_since=member.status_since if current else None,
        status_until=member.status_until if current else None,
        disability_type=member.disability_type,
        disability_grade=member.disability_grade,
        seriously_ill=member.seriously_ill,
    )
