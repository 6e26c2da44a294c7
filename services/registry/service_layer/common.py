"""What the registry's use cases share: the roles, the scope one use case acts in, and the record keeping
that goes with every change: change history, audit, timeline, derived categories, visit schedule, match keys.

Everything here runs inside the caller's unit of work, so a change and its history, events and derived
facts commit together or not at all.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Protocol

from google.protobuf.message import Message
from minorprot.registry.v1 import events_pb2
from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy import inspect as inspect_state
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

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


def check_version(record: ChildRecord | CaseFileRecord, expected: int | None, what: str) -> None:
    """Refuse an edit the caller based on an older version of the record than the current one."""
    if expected is not None and record.version != expected:
        raise errors.ConcurrentUpdate(
            f"{what} was changed by someone else since you read it (version {expected}, now {record.version}): "
            "reload it and try again"
        )


@contextmanager
def no_lost_updates() -> Iterator[None]:
    """Around a unit of work: a row another transaction changed after we read it (version_id_col) is a lost
    race for the caller, not an internal error."""
    try:
        yield
    except StaleDataError as exc:
        raise errors.ConcurrentUpdate(
            "the child's record or case file was changed by someone else at the same time: reload it and try again"
        ) from exc


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

    def audit_reads(self, action: str, subject_type: str, subject_ids: Sequence[str], purpose: str = "") -> None:
        """One audit row per record shown, in one statement: every read of a child's data is recorded."""
        if not subject_ids:
            return
        self.session.execute(
            insert(AuditRecord),
            [
                {
                    "tenant_id": self.tenant,
                    "at": self.now,
                    "actor": self.caller.user_id,
                    "role": self.caller.role.value,
                    "action": action,
                    "subject_type": subject_type,
                    "subject_id": subject_id,
                    "purpose": purpose,
                }
                for subject_id in subject_ids
            ],
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
        version=record.version,
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
    return {child_id: in_code_order(codes) for child_id, codes in found.items()}


_CATEGORY_ORDER = {category.value: index for index, category in enumerate(DifficultyCategory)}


def in_code_order(codes: Iterable[str]) -> tuple[str, ...]:
    """Category codes, each once, in the code list's order."""
    return tuple(sorted(set(codes), key=_CATEGORY_ORDER.__getitem__))


def is_current(row: CategoryRecord, today: date) -> bool:
    """The category applies on `today` (as current_categories selects them: valid_to is the last day)."""
    return row.valid_from <= today and (row.valid_to is None or row.valid_to >= today)


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
    members = [member_facts(m) for m in scope.family(child.id)]
    open_rows = scope.session.scalars(
        select(CategoryRecord).where(
            CategoryRecord.tenant_id == scope.tenant,
            CategoryRecord.child_id == child.id,
            CategoryRecord.source == CategorySource.RULE.value,
            or_(CategoryRecord.valid_to.is_(None), CategoryRecord.valid_to >= scope.today),
        )
    )
    derive_categories(scope, child, members, open_rows)
    after = categories_of(scope, child.id)
    announce_categories(scope, child.id, before, after)
    return after


def derive_categories(
    scope: Scope, child: ChildRecord, members: Sequence[FamilyMember], open_rule_rows: Iterable[CategoryRecord]
) -> tuple[list[CategoryRecord], list[CategoryRecord]]:
    """The rule-based categories derived again from the child and its family (`members`) as they are today,
    set against the child's rule-based rows still open: a row whose rule no longer applies ends, one whose
    rule or reason changed is updated, a newly derived category gets a row; each change goes into the change
    history. Returns the rows removed (begun today, so they never were) and the rows added."""
    snapshot = child_snapshot(
        birth_date=child.birth_date,
        household_registration_code=child.household_division_code,
        district_code=scope.tenant[:6],
        members=members,
        on=scope.today,
    )
    derived = {d.category: d for d in rules.evaluate(rules.DEFAULT_RULES, snapshot, scope.today)} if snapshot else {}
    removed: list[CategoryRecord] = []
    added: list[CategoryRecord] = []
    for row in open_rule_rows:
        still = derived.pop(DifficultyCategory(row.category), None)
        if still is None:
            if _end_derived(scope, row):
                removed.append(row)
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
        added.append(row)
    return removed, added


def announce_categories(scope: Scope, child_id: str, before: tuple[str, ...], after: tuple[str, ...]) -> None:
    """ChildCategoriesChanged, when the child's current categories (typed or derived) are not `before`."""
    if after != before:
        scope.publish(
            REGISTRY_CHILD,
            child_id,
            events_pb2.ChildCategoriesChanged(
                child_id=child_id,
                categories=list(after),
                added=[c for c in after if c not in before],
                removed=[c for c in before if c not in after],
            ),
        )


def _end_derived(scope: Scope, row: CategoryRecord) -> bool:
    """A rule no longer applies: the category ended yesterday, or never was if it began today (True: the
    row is gone)."""
    yesterday = scope.today - timedelta(days=1)
    if yesterday < row.valid_from:
        if inspect_state(row).pending:  # added in this same transaction and not written yet
            scope.session.expunge(row)
        else:
            scope.session.delete(row)
        scope.record_change(
            row.child_id, "category", row.id, "removed", field_changes(columns(row, CATEGORY_FIELDS), {})
        )
        return True
    old = columns(row, CATEGORY_FIELDS)
    row.valid_to = yesterday
    scope.record_change(row.child_id, "category", row.id, "ended", field_changes(old, columns(row, CATEGORY_FIELDS)))
    return False


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


class FactColumns(Protocol):
    """What matching reads of a child: a ChildRecord, or a row of RECORD_FACT_COLUMNS."""

    @property
    def legal_name(self) -> str: ...
    @property
    def other_names(self) -> list[str] | None: ...
    @property
    def identity_number_index(self) -> str | None: ...
    @property
    def birth_date(self) -> date | None: ...
    @property
    def sex(self) -> str: ...
    @property
    def residence_division_code(self) -> str: ...
    @property
    def household_division_code(self) -> str: ...
    @property
    def school(self) -> str: ...


# The columns record_facts reads (and the id): matching selects these, not whole records.
RECORD_FACT_COLUMNS = (
    ChildRecord.id,
    ChildRecord.legal_name,
    ChildRecord.other_names,
    ChildRecord.identity_number_index,
    ChildRecord.birth_date,
    ChildRecord.sex,
    ChildRecord.residence_division_code,
    ChildRecord.household_division_code,
    ChildRecord.school,
)
# Whose names a report may give as the child's guardians (besides members recorded as guardian).
PARENT_RELATIONSHIPS = tuple(r.value for r in Relationship if r.is_parent)


def record_facts(record: FactColumns, guardians: tuple[str, ...] = ()) -> matching.ChildFacts:
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
    _add_match_keys(scope, blind_index, record, guardian_names(scope.family(record.id)))


def _add_match_keys(scope: Scope, blind_index: BlindIndex, record: ChildRecord, guardians: tuple[str, ...]) -> None:
    for key in _match_key_digests(blind_index, record, guardians):
        scope.session.add(ChildMatchKey(tenant_id=record.tenant_id, match_key=key, child_id=record.id))


def _match_key_digests(blind_index: BlindIndex, record: ChildRecord, guardians: tuple[str, ...]) -> list[str]:
    facts = record_facts(record, guardians)
    return sorted({match_key_digest(blind_index, k) for k in matching.index_keys(facts)})


class BulkScope(Scope):
    """A Scope for recording many children in one transaction (the survey): their change history and
    timeline entries wait as plain rows, and `write_rows` inserts them all at once (ChildInWork.write_records
    calls it, after the new children's records they refer to), which saves an ORM object and a flush each."""

    def __init__(self, uow: UnitOfWork, caller: Principal, *, today: date, now: datetime) -> None:
        super().__init__(uow, caller, today=today, now=now)
        self._changes: list[dict[str, object]] = []
        self._timeline: list[dict[str, object]] = []

    def record_change(
        self, child_id: str, entity_type: str, entity_id: str, action: str, changes: Mapping[str, list[object]]
    ) -> None:
        if not changes and action == "updated":
            return  # nothing changed: nothing to keep (as Scope.record_change)
        self._changes.append(
            {
                "tenant_id": self.tenant,
                "child_id": child_id,
                "at": self.now,
                "actor": self.caller.user_id,
                "role": self.caller.role.value,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "action": action,
                "changes": dict(changes),
            }
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
        self._timeline.append(
            {
                "tenant_id": self.tenant,
                "child_id": child_id,
                "at": at or self.now,
                "kind": kind,
                "summary": summary,
                "source_service": source,
                "reference_id": reference_id,
            }
        )

    def write_rows(self) -> None:
        """Insert the change history and timeline entries kept so far, in the order they were made."""
        for table, rows in ((ChangeRecord, self._changes), (TimelineRecord, self._timeline)):
            if rows:
                self.session.connection().execute(insert(table), rows)
                rows.clear()


# --- one child at work -------------------------------------------------------------------------------------


class ChildInWork:
    """A child being changed in this transaction, with what the category rules and the match keys read of
    it: its family and its category rows. `load` reads them for a child in the register (under the row lock
    that keeps derivations one at a time); `new` starts them empty for a child recorded in this transaction,
    which keeps them up to date as its family and categories are recorded, so that many new children (a
    survey) are recorded without one query each. The rules are the ones above: derive_categories,
    announce_categories, the match keys of store_match_keys."""

    def __init__(
        self,
        scope: Scope,
        record: ChildRecord,
        members: list[FamilyMemberRecord],
        category_rows: list[CategoryRecord],
        *,
        new: bool,
    ) -> None:
        self.scope = scope
        self.record = record
        self.members = members
        self.category_rows = category_rows
        self.new = new
        self._match_keys: list[str] = []  # a new child's, until write_records

    @classmethod
    def load(cls, scope: Scope, record: ChildRecord) -> ChildInWork:
        # One derivation per child at a time (PostgreSQL row lock): two at once would both add the same row.
        scope.session.execute(select(ChildRecord.id).where(ChildRecord.id == record.id).with_for_update())
        rows = scope.session.scalars(
            select(CategoryRecord)
            .where(CategoryRecord.tenant_id == scope.tenant, CategoryRecord.child_id == record.id)
            .order_by(CategoryRecord.valid_from, CategoryRecord.recorded_at, CategoryRecord.id)
        )
        return cls(scope, record, scope.family(record.id), list(rows), new=False)

    @classmethod
    def new_child(cls, scope: Scope, record: ChildRecord) -> ChildInWork:
        """A child recorded in this transaction: no family, no categories yet. Its record is written by
        `write_records` before anything that refers to it."""
        scope.session.add(record)
        return cls(scope, record, [], [], new=True)

    @staticmethod
    def write_records(scope: Scope, children: Sequence[ChildInWork]) -> None:
        """Write the records of new children (all in one statement) before what refers to them: the tables
        have no relationship() between them, so a flush would take them in the order of their classes'
        names, and case_files, child_categories, change_history and child_match_keys come before children.
        Then their match keys, and a BulkScope's change history and timeline, as plain rows."""
        records = [child.record for child in children if child.new]
        if records:  # flush([]) would write everything
            scope.session.flush(records)
        keys = [
            {"tenant_id": child.record.tenant_id, "match_key": key, "child_id": child.child_id}
            for child in children
            for key in child._match_keys
        ]
        if keys:
            scope.session.connection().execute(insert(ChildMatchKey), keys)
        for child in children:
            child._match_keys = []
        if isinstance(scope, BulkScope):
            scope.write_rows()

    @property
    def child_id(self) -> str:
        return self.record.id

    def categories(self) -> tuple[str, ...]:
        """The child's categories valid today, typed in or derived, in the code list's order."""
        return in_code_order(row.category for row in self.category_rows if is_current(row, self.scope.today))

    def add_member(self, record: FamilyMemberRecord) -> None:
        self.scope.session.add(record)
        self.members.append(record)

    def add_category(self, record: CategoryRecord) -> None:
        self.scope.session.add(record)
        self.category_rows.append(record)

    def overlapping(self, category: str, valid_from: date, valid_to: date | None) -> bool:
        """A row of this category whose period overlaps valid_from..valid_to (None: open-ended)."""
        return any(
            row.category == category
            and (row.valid_to is None or row.valid_to >= valid_from)
            and (valid_to is None or row.valid_from <= valid_to)
            for row in self.category_rows
        )

    def refresh_categories(self, before: tuple[str, ...]) -> tuple[str, ...]:
        """refresh_categories from what is known of the child here: derive again, announce, return them."""
        today = self.scope.today
        open_rule_rows = [
            row
            for row in self.category_rows
            if row.source == CategorySource.RULE.value and (row.valid_to is None or row.valid_to >= today)
        ]
        members = [member_facts(member) for member in self.members]
        removed, added = derive_categories(self.scope, self.record, members, open_rule_rows)
        gone = {id(row) for row in removed}
        self.category_rows = [row for row in self.category_rows if id(row) not in gone] + added
        after = self.categories()
        announce_categories(self.scope, self.record.id, before, after)
        return after

    def store_match_keys(self, blind_index: BlindIndex) -> None:
        """store_match_keys from what is known of the child here. A new child has no keys to replace, and
        its keys are written with its record (write_records)."""
        if self.new:
            self._match_keys = _match_key_digests(blind_index, self.record, guardian_names(self.members))
            return
        self.scope.session.execute(delete(ChildMatchKey).where(ChildMatchKey.child_id == self.record.id))
        if self.record.merged_into is None:
            _add_match_keys(self.scope, blind_index, self.record, guardian_names(self.members))
