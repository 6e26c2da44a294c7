"""What the registry's use cases share: the roles, the scope one use case acts in, and the record keeping
that goes with every change: change history, audit, timeline, derived categories, visit schedule, match keys.

Everything here runs inside the caller's unit of work, so a change and its history, events and derived
facts commit together or not at all.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta

from google.protobuf.message import Message
from minorprot.registry.v1 import events_pb2
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import UnitOfWork, new_id
from platform_runtime.events import PendingEvent
from platform_runtime.pii import BlindIndex
from platform_runtime.topics import REGISTRY_CHILD
from services.registry.adapters.orm import (
    AssessmentRecord,
    AuditRecord,
    CaseFileRecord,
    CategoryRecord,
    ChangeRecord,
    ChildMatchKey,
    ChildRecord,
    FamilyMemberRecord,
    TimelineRecord,
    VisitRecord,
)
from services.registry.domain import matching, rules, visits
from services.registry.domain.codes import (
    CaseStatus,
    CategorySource,
    DifficultyCategory,
    DisabilityGrade,
    DisabilityType,
    GuardianStatus,
    Relationship,
    RiskLevel,
    Sex,
)
from services.registry.domain.family import FamilyMember, child_snapshot
from services.registry.service_layer.views import ChildView, ContactPerson

# Who may read the register and case files: the town's and district's child-protection staff.
READER_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.CHILD_DIRECTOR, Role.DISTRICT_OFFICER, Role.SYSTEM})
# Reports reach the registry on behalf of their reporters: those may match a child and register a
# provisional one (the answer goes to the reporting service, never back to the reporter).
INTAKE_ROLES = READER_ROLES | {Role.MANDATED_REPORTER, Role.AGENCY_OFFICER, Role.AGENCY_SYSTEM}
# Who records what they find: family facts, categories, visits, the child's details. Village child
# directors survey and visit; the district supervises and reads, it does not keep the towns' files.
CASEWORK_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.CHILD_DIRECTOR, Role.SYSTEM})
# Who manages the case: status, named staff, assessments and the assistance plan (the town's duty).
CASE_MANAGER_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.SYSTEM})
# A merge is a person's judgement, never a job's.
MERGE_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN})

MIN_PURPOSE_CHARS = 4
MAX_MERGE_CHAIN = 50  # merges of merges; far beyond any real chain, it only stops a corrupt loop
IDENTITY_FIELD = "identity_number"


def require_purpose(purpose: str, what: str = "this case file") -> str:
    purpose = purpose.strip()
    if len(purpose) < MIN_PURPOSE_CHARS:
        raise errors.InvalidInput(f"say why you open {what} (it is recorded)", "purpose")
    return purpose


def clean_text(value: str, field: str, *, max_chars: int, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise errors.InvalidInput("is required", field)
    if len(value) > max_chars:
        raise errors.InvalidInput(f"must be at most {max_chars} characters", field)
    return value


# --- change history values ---------------------------------------------------------------------------------


def jsonable(value: object) -> object:
    """A value as the change history stores it (JSON): codes by value, dates as ISO text."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def field_changes(before: Mapping[str, object], after: Mapping[str, object]) -> dict[str, list[object]]:
    """{field: [before, after]} for every field whose value differs; a missing field counts as None."""
    changed: dict[str, list[object]] = {}
    for name in dict.fromkeys([*before, *after]):
        old, new = jsonable(before.get(name)), jsonable(after.get(name))
        if old != new:
            changed[name] = [old, new]
    return changed


def columns(record: object, names: Iterable[str]) -> dict[str, object]:
    return {name: getattr(record, name) for name in names}


# --- the scope of one use case -----------------------------------------------------------------------------


class Scope:
    """One use case at work: its unit of work, its caller and the day it acts on."""

    def __init__(self, uow: UnitOfWork, caller: Principal, *, today: date, now: datetime) -> None:
        self.uow = uow
        self.caller = caller
        self.today = today
        self.now = now

    def commit(self) -> None:
        self.uow.commit()

    @property
    def session(self) -> Session:
        return self.uow.session

    @property
    def tenant(self) -> str:
        return self.uow.tenant

    def child(self, child_id: str, *, follow_merges: bool = True) -> ChildRecord:
        """The child, or the record it was merged into (events and links keep old ids working)."""
        record = self.session.get(ChildRecord, child_id) if child_id else None
        # Another tenant's child is reported as absent, not forbidden: its existence is not disclosed.
        if record is None or record.tenant_id != self.tenant:
            raise errors.NotFound("no such child in this town")
        for _ in range(MAX_MERGE_CHAIN):
            if not follow_merges or record.merged_into is None:
                return record
            survivor = self.session.get(ChildRecord, record.merged_into)
            if survivor is None:
                raise errors.NotFound("no such child in this town")
            record = survivor
        raise errors.Conflict("the merge chain of this record is too long; ask an administrator")

    def merged_ids(self, child_id: str) -> list[str]:
        """Every record merged into this one, directly or through other merges."""
        found: list[str] = []
        frontier = [child_id]
        while frontier and len(found) < MAX_MERGE_CHAIN:
            frontier = list(
                self.session.scalars(
                    select(ChildRecord.id).where(
                        ChildRecord.tenant_id == self.tenant, ChildRecord.merged_into.in_(frontier)
                    )
                )
            )
            found += frontier
        return found

    def case_file(self, child_id: str) -> CaseFileRecord:
        return self.session.scalars(
            select(CaseFileRecord).where(CaseFileRecord.tenant_id == self.tenant, CaseFileRecord.child_id == child_id)
        ).one()

    def family(self, child_id: str) -> list[FamilyMemberRecord]:
        return list(
            self.session.scalars(
                select(FamilyMemberRecord)
                .where(FamilyMemberRecord.tenant_id == self.tenant, FamilyMemberRecord.child_id == child_id)
                .order_by(FamilyMemberRecord.created_at, FamilyMemberRecord.id)
            )
        )

    def publish(self, topic: str, aggregate_id: str, payload: Message, aggregate_type: str = "child") -> None:
        self.uow.publish(PendingEvent(topic, self.tenant, aggregate_type, aggregate_id, payload))

    def record_change(
        self, child_id: str, entity_type: str, entity_id: str, action: str, changes: Mapping[str, list[object]]
    ) -> None:
        """Keep who changed what and when, in the same transaction as the change itself."""
        if not changes and action == "updated":
            return  # nothing changed: nothing to keep
        self.session.add(
            ChangeRecord(
                tenant_id=self.tenant,
                child_id=child_id,
                at=self.now,
                actor=self.caller.user_id,
                role=self.caller.role.value,
                entity_type=entity_type,
                entity_id=entity_id,
                action=action,
                changes=dict(changes),
            )
        )

    def audit(self, action: str, subject_type: str, subject_id: str, purpose: str = "") -> None:
        self.session.add(
            AuditRecord(
                tenant_id=self.tenant,
                at=self.now,
                actor=self.caller.user_id,
                role=self.caller.role.value,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                purpose=purpose,
            )
        )

    def add_timeline(
        self,
        child_id: str,
        kind: str,
        summary: str,
        source: str,
        reference_id: str,
        *,
        at: datetime | None = None,
    ) -> None:
        self.session.add(
            TimelineRecord(
                tenant_id=self.tenant,
                child_id=child_id,
                at=at or self.now,
                kind=kind,
                summary=summary,
                source_service=source,
                reference_id=reference_id,
            )
        )


# --- children as the API shows them ------------------------------------------------------------------------


def child_view(record: ChildRecord, categories: tuple[str, ...]) -> ChildView:
    return ChildView(
        child_id=record.id,
        tenant=record.tenant_id,
        legal_name=record.legal_name,
        other_names=tuple(record.other_names or ()),
        sex=Sex(record.sex),
        birth_date=record.birth_date,
        identity_number_masked=record.identity_number_masked,
        ethnicity_code=record.ethnicity_code,
        household_division_code=record.household_division_code,
        household_address=record.household_address,
        residence_division_code=record.residence_division_code,
        residence_address=record.residence_address,
        school=record.school,
        grade=record.grade,
        categories=categories,
        provisional=record.provisional,
        created_at=record.created_at,
        disability_type=record.disability_type,
        disability_grade=record.disability_grade,
        serious_illness=record.serious_illness,
        contact_person=ContactPerson(record.contact_name, record.contact_relationship, record.contact_phone),
    )


def child_views(scope: Scope, records: Sequence[ChildRecord]) -> list[ChildView]:
    """Views with each child's current categories, read in one query for all of them."""
    categories = current_categories(scope, [record.id for record in records])
    return [child_view(record, categories.get(record.id, ())) for record in records]


# --- family facts ------------------------------------------------------------------------------------------

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


# --- difficulty categories ---------------------------------------------------------------------------------


def current_categories(scope: Scope, child_ids: Collection[str]) -> dict[str, tuple[str, ...]]:
    """Each child's categories valid today, in the code list's order."""
    if not child_ids:
        return {}
    rows = scope.session.execute(
        select(CategoryRecord.child_id, CategoryRecord.category).where(
            CategoryRecord.tenant_id == scope.tenant,
            CategoryRecord.child_id.in_(list(child_ids)),
            CategoryRecord.valid_from <= scope.today,
            or_(CategoryRecord.valid_to.is_(None), CategoryRecord.valid_to >= scope.today),
        )
    )
    found: dict[str, set[str]] = {}
    for child_id, category in rows:
        found.setdefault(child_id, set()).add(category)
    order = {category.value: index for index, category in enumerate(DifficultyCategory)}
    return {child_id: tuple(sorted(codes, key=order.__getitem__)) for child_id, codes in found.items()}


def categories_of(scope: Scope, child_id: str) -> tuple[str, ...]:
    return current_categories(scope, [child_id]).get(child_id, ())


CATEGORY_FIELDS = (
    "category",
    "source",
    "evidence",
    "evidence_document",
    "valid_from",
    "valid_to",
    "rule_code",
    "reason",
)


def refresh_categories(scope: Scope, child: ChildRecord, before: tuple[str, ...]) -> tuple[str, ...]:
    """Derive the rule-based categories again from the child and family as they are today, and announce
    the change of the child's current categories (typed or derived) since `before`. Returns them."""
    # One derivation per child at a time (PostgreSQL row lock): two at once would both add the same row.
    scope.session.execute(select(ChildRecord.id).where(ChildRecord.id == child.id).with_for_update())
    snapshot = child_snapshot(
        birth_date=child.birth_date,
        household_registration_code=child.household_division_code,
        district_code=scope.tenant[:6],
        members=[member_facts(m) for m in scope.family(child.id)],
        on=scope.today,
    )
    derived = {d.category: d for d in rules.evaluate(rules.DEFAULT_RULES, snapshot, scope.today)} if snapshot else {}
    open_rows = scope.session.scalars(
        select(CategoryRecord).where(
            CategoryRecord.tenant_id == scope.tenant,
            CategoryRecord.child_id == child.id,
            CategoryRecord.source == CategorySource.RULE.value,
            or_(CategoryRecord.valid_to.is_(None), CategoryRecord.valid_to >= scope.today),
        )
    )
    for row in open_rows:
        still = derived.pop(DifficultyCategory(row.category), None)
        if still is None:
            _end_derived(scope, row)
        elif (still.rule_code, still.reason) != (row.rule_code, row.reason):
            old = columns(row, CATEGORY_FIELDS)
            row.rule_code, row.reason = still.rule_code, still.reason
            scope.record_change(
                child.id, "category", row.id, "updated", field_changes(old, columns(row, CATEGORY_FIELDS))
            )
    for new in derived.values():
        row = CategoryRecord(
            id=new_id(),
            tenant_id=scope.tenant,
            child_id=child.id,
            category=new.category.value,
            source=CategorySource.RULE.value,
            evidence="",
            evidence_document="",
            # The day the rule found it: the facts may have held earlier, unknown to the register.
            valid_from=scope.today,
            valid_to=None,
            rule_code=new.rule_code,
            reason=new.reason,
            recorded_by=scope.caller.user_id,
            recorded_at=scope.now,
        )
        scope.session.add(row)
        scope.record_change(child.id, "category", row.id, "derived", field_changes({}, columns(row, CATEGORY_FIELDS)))
    after = categories_of(scope, child.id)
    if after != before:
        scope.publish(
            REGISTRY_CHILD,
            child.id,
            events_pb2.ChildCategoriesChanged(
                child_id=child.id,
                categories=list(after),
                added=[c for c in after if c not in before],
                removed=[c for c in before if c not in after],
            ),
        )
    return after


def _end_derived(scope: Scope, row: CategoryRecord) -> None:
    """A rule no longer applies: the category ended yesterday, or never was if it began today."""
    yesterday = scope.today - timedelta(days=1)
    if yesterday < row.valid_from:
        scope.session.delete(row)
        scope.record_change(
            row.child_id, "category", row.id, "removed", field_changes(columns(row, CATEGORY_FIELDS), {})
        )
        return
    old = columns(row, CATEGORY_FIELDS)
    row.valid_to = yesterday
    scope.record_change(row.child_id, "category", row.id, "ended", field_changes(old, columns(row, CATEGORY_FIELDS)))


# --- follow-up visit schedule ------------------------------------------------------------------------------


def reschedule_visits(scope: Scope, child: ChildRecord, case: CaseFileRecord) -> None:
    """Set when the next visit is due from the status, the risk level and the last contact."""
    if child.merged_into is not None:
        case.next_visit_due = None  # a merged duplicate is followed through the surviving record
        return
    last_visit = scope.session.scalar(
        select(func.max(VisitRecord.visited_on)).where(
            VisitRecord.tenant_id == scope.tenant, VisitRecord.child_id == child.id
        )
    )
    last_assessment = scope.session.scalar(
        select(func.max(AssessmentRecord.assessed_on)).where(
            AssessmentRecord.tenant_id == scope.tenant, AssessmentRecord.child_id == child.id
        )
    )
    contacts = [day for day in (last_visit, last_assessment) if day is not None]
    case.next_visit_due = visits.next_visit_due(
        status=CaseStatus(case.status),
        risk_level=RiskLevel(case.risk_level) if case.risk_level else None,
        last_contact=max(contacts) if contacts else None,
    )


# --- matching ----------------------------------------------------------------------------------------------


def record_facts(record: ChildRecord, guardians: tuple[str, ...] = ()) -> matching.ChildFacts:
    sex = Sex(record.sex)
    return matching.ChildFacts(
        name=record.legal_name or None,
        other_names=tuple(record.other_names or ()),
        identity_key=record.identity_number_index,
        birth_date=record.birth_date,
        sex=sex if sex.is_known else None,
        guardian_names=guardians,
        division_code=record.residence_division_code or record.household_division_code or None,
        school=record.school or None,
    )


def match_key_digest(blind_index: BlindIndex, key: str) -> str:
    # Match keys hold pinyin, birth dates and guardians' names: personal data, stored only as HMACs.
    return blind_index.digest(key, field="match_key")


def store_match_keys(scope: Scope, blind_index: BlindIndex, record: ChildRecord) -> None:
    """The blocking keys of the child as recorded now (a merged duplicate gets none: it is never proposed)."""
    scope.session.execute(delete(ChildMatchKey).where(ChildMatchKey.child_id == record.id))
    if record.merged_into is not None:
        return
    facts = record_facts(record, guardian_names(scope.family(record.id)))
    for key in sorted({match_key_digest(blind_index, k) for k in matching.index_keys(facts)}):
        scope.session.add(ChildMatchKey(tenant_id=record.tenant_id, match_key=key, child_id=record.id))
