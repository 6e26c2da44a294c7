"""The register's children: RegisterChild (and the survey's children, `record_children`), UpdateChild,
GetChild, ListChildren, and the checks on a child's fields.

Identity numbers are validated (GB 11643), encrypted at rest and found by blind index; every change to a
child is kept in the change history in the same transaction as the change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace

from minorprot.registry.v1 import events_pb2
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from platform_runtime import errors
from platform_runtime.db import new_id
from platform_runtime.pii import mask_identity_number
from platform_runtime.tenancy import require_role
from platform_runtime.topics import REGISTRY_CASE, REGISTRY_CHILD
from services.registry.adapters import messages
from services.registry.adapters.orm import (
    CaseFileRecord,
    ChildRecord,
)
from services.registry.domain.codes import CaseStatus, DisabilityGrade, DisabilityType, Ethnicity
from services.registry.domain.errors import InvalidInput as InvalidIdentity
from services.registry.domain.family import FamilyMember
from services.registry.domain.identity import cross_check_identity, parse_identity_number
from services.registry.service_layer import villages
from services.registry.service_layer.categories import categories_of, refresh_categories
from services.registry.service_layer.category_entries import CheckedCategory, record_category
from services.registry.service_layer.child_in_work import ChildInWork
from services.registry.service_layer.child_views import child_view, child_views
from services.registry.service_layer.family import record_family_member
from services.registry.service_layer.history import columns, field_changes
from services.registry.service_layer.match_keys import (
    store_match_keys,
)
from services.registry.service_layer.scope import (
    CASEWORK_ROLES,
    IDENTITY_FIELD,
    INTAKE_ROLES,
    READER_ROLES,
    RegistryUseCases,
    Scope,
    check_version,
    no_lost_updates,
)
from services.registry.service_layer.views import (
    ChildView,
    ContactPerson,
    RegisterChild,
    UpdateChild,
)

ALREADY_REGISTERED = "a child with this identity number is already registered"
UPDATABLE_FIELDS = frozenset(f.name for f in fields(RegisterChild))
# What a search, a re-match or a merge uses: a change to one of these rebuilds the match keys.
MATCHED_FIELDS = frozenset(
    {
        "legal_name",
        "other_names",
        "sex",
        "birth_date",
        IDENTITY_FIELD,
        "household_division_code",
        "residence_division_code",
        "school",
    }
)
# Column lengths, checked before the database would refuse them.
MAX_CHARS = {
    "legal_name": 100,
    "household_address": 200,
    "residence_address": 200,
    "school": 100,
    "grade": 20,
    "serious_illness": 2000,
    "description": 4000,
}
_PHONE = re.compile(r"[0-9+\-() ]{3,30}")
# The child's fields as the change history shows them (the identity number only masked).
CHILD_HISTORY_FIELDS = (
    "legal_name",
    "other_names",
    "sex",
    "birth_date",
    "identity_number_masked",
    "ethnicity_code",
    "household_division_code",
    "household_address",
    "residence_division_code",
    "residence_address",
    "school",
    "grade",
    "description",
    "provisional",
    "disability_type",
    "disability_grade",
    "serious_illness",
    "contact_name",
    "contact_relationship",
    "contact_phone",
)


DIVISION_FIELDS = frozenset({"household_division_code", "residence_division_code"})


def _check_villages(scope: Scope, command: RegisterChild, fields: frozenset[str]) -> None:
    violations = villages.village_violations(scope, {name: getattr(command, name) for name in sorted(fields)})
    if violations:
        raise errors.InvalidInput(violations)


@dataclass(frozen=True)
class NewChild:
    """A child for `record_children`: its command, validated (`identity_number` as `validate` gave it), and
    what is recorded with it (the survey's parents, guardian and categories)."""

    command: RegisterChild
    identity_number: str
    family: Sequence[FamilyMember] = ()
    categories: Sequence[CheckedCategory] = ()


class ChildRefused(Exception):
    """The use cases' rules refused the `index`-th child given to `record_children`."""

    def __init__(self, index: int, refusal: errors.DomainError) -> None:
        super().__init__(str(refusal))
        self.index = index
        self.refusal = refusal


class ChildUseCases(RegistryUseCases):
    def register_child(self, command: RegisterChild) -> ChildView:
        caller = require_role(*INTAKE_ROLES)
        if not command.provisional and caller.role not in READER_ROLES:
            raise errors.PermissionDenied("only township staff add verified children to the register")
        identity_number = self.validate(command)
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            self._require_tenant(uow, caller)
            _check_villages(scope, command, DIVISION_FIELDS)
            if self.registered_numbers(scope, [identity_number]):
                raise errors.Conflict(ALREADY_REGISTERED)
            try:
                ((_, view),) = self.record_children(scope, [NewChild(command, identity_number)])
            except ChildRefused as refused:
                raise refused.refusal from None
            try:
                uow.commit()
            except IntegrityError as exc:
                raise errors.Conflict(ALREADY_REGISTERED) from exc
            return view

    def record_children(self, scope: Scope, children: Sequence[NewChild]) -> list[tuple[ChildInWork, ChildView]]:
        """RegisterChild's work inside the caller's transaction, for the API and the survey alike, each child
        in turn: the record (its identity number encrypted, blind-indexed and masked), its case file, timeline
        entry and change history, the categories the rules derive, the events ChildRegistered and
        CaseFileOpened; then its family members as AddFamilyMember records them and its categories as
        AddCategory does; then its match keys, once its facts are all in. Last, the new records are written
        before anything that refers to them (`ChildInWork.write_records`).

        The caller has validated each command (`validate` gave its identity number) and found the number not
        yet registered (`registered_numbers`). Nothing here queries the database, so a batch of children is
        written in a few statements. A child the use cases' rules refuse raises ChildRefused (which one and
        why); the caller's transaction is then not to be committed."""
        recorded: list[tuple[ChildInWork, ChildView]] = []
        for index, new in enumerate(children):
            try:
                child, view = self._record_child(scope, new.command, new.identity_number)
                for member in new.family:
                    record_family_member(scope, child, member)
                for category in new.categories:
                    record_category(scope, child, category)
            except errors.DomainError as refusal:
                raise ChildRefused(index, refusal) from refusal
            child.store_match_keys(self._blind_index)
            recorded.append((child, view))
        ChildInWork.write_records(scope, [child for child, _ in recorded])
        return recorded

    def _record_child(
        self, scope: Scope, command: RegisterChild, identity_number: str
    ) -> tuple[ChildInWork, ChildView]:
        """One new child's record, case file, timeline entry, change history, derived categories and events."""
        # Version 1 now rather than at the flush: the views and events made here show it.
        record = ChildRecord(
            id=new_id(), tenant_id=scope.tenant, created_at=scope.now, created_by=scope.caller.user_id, version=1
        )
        _write_fields(record, command)
        self._write_identity_number(scope, record, identity_number)
        child = ChildInWork.new_child(scope, record)
        case = CaseFileRecord(
            id=new_id(),
            tenant_id=scope.tenant,
            child_id=record.id,
            status=CaseStatus.IDENTIFIED.value,
            opened_at=scope.now,
            version=1,
        )
        scope.session.add(case)
        scope.add_timeline(record.id, "registered", "登记入册 registered in the register", "registry", record.id)
        scope.record_change(
            record.id, "child", record.id, "created", field_changes({}, columns(record, CHILD_HISTORY_FIELDS))
        )
        categories = child.refresh_categories(before=())
        view = child_view(record, categories)
        scope.publish(REGISTRY_CHILD, record.id, events_pb2.ChildRegistered(child=messages.child(view)))
        scope.publish(
            REGISTRY_CASE,
            record.id,
            events_pb2.CaseFileOpened(case_id=case.id, child_id=record.id, status=case.status),
        )
        return child, view

    def registered_numbers(self, scope: Scope, numbers: Iterable[str]) -> dict[str, str]:
        """Identity number -> id of the child registered with it, for those of the (normalised) `numbers`
        already in the town, in one query however many they are."""
        digests = {self._blind_index.digest(number, field=IDENTITY_FIELD): number for number in numbers if number}
        if not digests:
            return {}
        found = scope.session.execute(
            select(ChildRecord.identity_number_index, ChildRecord.id).where(
                ChildRecord.tenant_id == scope.tenant, ChildRecord.identity_number_index.in_(list(digests))
            )
        )
        return {digests[index]: child_id for index, child_id in found if index}

    def update_child(self, command: UpdateChild) -> ChildView:
        """Change the named fields; everything is validated again as a whole (identity number included)."""
        caller = require_role(*CASEWORK_ROLES)
        unknown = sorted(command.fields - UPDATABLE_FIELDS)
        if unknown or not command.fields:
            raise errors.InvalidInput(f"name the fields to change, among {sorted(UPDATABLE_FIELDS)}", "update_mask")
        with no_lost_updates(), self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            record = scope.child(command.child_id)
            check_version(record, command.expected_version, "the child's record")
            before = categories_of(scope, record.id)
            current = _read_fields(record, self._identity_number(record))
            wanted = replace(current, **{name: getattr(command.values, name) for name in command.fields})
            identity_number = self.validate(wanted)
            _check_villages(scope, wanted, command.fields & DIVISION_FIELDS)  # a retired village may stay
            old = columns(record, CHILD_HISTORY_FIELDS)
            _write_fields(record, wanted)
            if IDENTITY_FIELD in command.fields:
                self._set_identity_number(scope, record, identity_number)
            scope.record_change(
                record.id, "child", record.id, "updated", field_changes(old, columns(record, CHILD_HISTORY_FIELDS))
            )
            if command.fields & MATCHED_FIELDS:
                store_match_keys(scope, self._blind_index, record)
            categories = refresh_categories(scope, record, before)
            try:
                uow.session.flush()  # the update bumps the version the view shows
            except IntegrityError as exc:
                raise errors.Conflict("a child with this identity number is already registered") from exc
            view = child_view(record, categories)
            uow.commit()
            return view

    def get_child(self, child_id: str) -> tuple[ChildView, str]:
        """The child, and the id of the record it was merged into ("" unless `child_id` was merged)."""
        caller = require_role(*READER_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            record = scope.child(child_id)
            (view,) = child_views(scope, [record])
            # The child's record holds health facts (disability, serious illness): reads are audited.
            scope.audit_reads("read_child", "child", [record.id])
            uow.commit()
            return view, (record.id if record.id != child_id else "")

    def list_children(self, page_size: int, page_token: str) -> tuple[list[ChildView], str]:
        caller = require_role(*READER_ROLES)
        size = min(max(page_size or 50, 1), 500)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = (
                select(ChildRecord)
                .where(ChildRecord.tenant_id == caller.tenant, ChildRecord.merged_into.is_(None))
                .order_by(ChildRecord.id)
            )
            if page_token:
                query = query.where(ChildRecord.id > page_token)
            rows = list(uow.session.scalars(query.limit(size + 1)))
            more = len(rows) > size
            rows = rows[:size]
            scope = self._scope(uow, caller)
            views = child_views(scope, rows)
            scope.audit_reads("list_children", "child", [row.id for row in rows])
            uow.commit()
            return views, (rows[-1].id if more else "")

    def validate(self, command: RegisterChild) -> str:
        """Every problem with the child's fields at once; returns the normalised identity number ("" if none)."""
        violations: list[errors.FieldViolation] = []
        if not command.legal_name.strip() and not command.description.strip():
            violations.append(errors.FieldViolation("legal_name", "a name or, for an unknown child, a description"))
        if command.birth_date and command.birth_date > self._today():
            violations.append(errors.FieldViolation("birth_date", "is in the future"))
        for field_name in ("household_division_code", "residence_division_code"):
            code = getattr(command, field_name)
            if code and not villages.division_ok(code):
                violations.append(errors.FieldViolation(field_name, "must be a 9- or 12-digit GB/T 2260 code"))
        for field_name, limit in MAX_CHARS.items():
            if len(getattr(command, field_name).strip()) > limit:
                violations.append(errors.FieldViolation(field_name, f"must be at most {limit} characters"))
        if any(len(name.strip()) > MAX_CHARS["legal_name"] for name in command.other_names):
            violations.append(errors.FieldViolation("other_names", "each at most 100 characters"))
        if command.ethnicity_code and command.ethnicity_code not in Ethnicity._value2member_map_:
            violations.append(errors.FieldViolation("ethnicity_code", "must be a GB 3304 code (01-56, 97, 98)"))
        violations += _disability_violations(command.disability_type, command.disability_grade)
        contact = command.contact_person
        if contact.phone.strip() and not _PHONE.fullmatch(contact.phone.strip()):
            violations.append(errors.FieldViolation("contact_person.phone", "is not a telephone number"))
        if len(contact.name.strip()) > 100 or len(contact.relationship.strip()) > 40:
            violations.append(errors.FieldViolation("contact_person", "name at most 100, relationship at most 40"))
        number = ""
        if command.identity_number.strip():
            try:
                identity = parse_identity_number(command.identity_number, as_of=self._today())
                number = identity.number
                violations.extend(
                    errors.FieldViolation(IDENTITY_FIELD, problem)
                    for problem in cross_check_identity(
                        identity, birth_date=command.birth_date, sex=command.sex if command.sex else None
                    )
                )
            except InvalidIdentity as exc:
                violations.append(errors.FieldViolation(IDENTITY_FIELD, exc.reason))
        if violations:
            raise errors.InvalidInput(violations)
        return number

    def _identity_number(self, record: ChildRecord) -> str:
        if not record.identity_number_cipher:
            return ""
        return self._cipher.decrypt(record.identity_number_cipher, tenant=record.tenant_id, field=IDENTITY_FIELD)

    def _set_identity_number(self, scope: Scope, record: ChildRecord, number: str) -> None:
        """Encrypt, index and mask the number ("" removes it); a number already in the town is refused."""
        if number and scope.session.scalar(
            select(ChildRecord.id).where(
                ChildRecord.tenant_id == scope.tenant,
                ChildRecord.identity_number_index == self._blind_index.digest(number, field=IDENTITY_FIELD),
                ChildRecord.id != record.id,
            )
        ):
            raise errors.Conflict(ALREADY_REGISTERED)
        self._write_identity_number(scope, record, number)

    def _write_identity_number(self, scope: Scope, record: ChildRecord, number: str) -> None:
        """The number encrypted, blind-indexed and masked ("" removes it)."""
        if not number:
            record.identity_number_cipher = record.identity_number_index = None
            record.identity_number_masked = ""
            return
        record.identity_number_cipher = self._cipher.encrypt(number, tenant=scope.tenant, field=IDENTITY_FIELD)
        record.identity_number_index = self._blind_index.digest(number, field=IDENTITY_FIELD)
        record.identity_number_masked = mask_identity_number(number)


def _disability_violations(kind: str, grade: str) -> list[errors.FieldViolation]:
    violations = []
    if kind and kind not in DisabilityType._value2member_map_:
        violations.append(errors.FieldViolation("disability_type", "must be a GB/T 26341 disability type"))
    if grade and grade not in DisabilityGrade._value2member_map_:
        violations.append(errors.FieldViolation("disability_grade", "must be 1, 2, 3 or 4"))
    if bool(kind) != bool(grade):
        violations.append(errors.FieldViolation("disability_grade", "a disability has both a type and a grade"))
    return violations


def _write_fields(record: ChildRecord, values: RegisterChild) -> None:
    """The plain columns from the command (the identity number is set apart: it is encrypted)."""
    record.legal_name = values.legal_name.strip()
    record.other_names = [name.strip() for name in values.other_names if name.strip()]
    record.sex = values.sex.value
    record.birth_date = values.birth_date
    record.ethnicity_code = values.ethnicity_code
    record.household_division_code = values.household_division_code
    record.household_address = values.household_address.strip()
    record.residence_division_code = values.residence_division_code
    record.residence_address = values.residence_address.strip()
    record.school = values.school.strip()
    record.grade = values.grade.strip()
    record.description = values.description.strip()
    record.provisional = values.provisional
    record.disability_type = values.disability_type
    record.disability_grade = values.disability_grade
    record.serious_illness = values.serious_illness.strip()
    record.contact_name = values.contact_person.name.strip()
    record.contact_relationship = values.contact_person.relationship.strip()
    record.contact_phone = values.contact_person.phone.strip()


def _read_fields(record: ChildRecord, identity_number: str) -> RegisterChild:
    view = child_view(record, ())
    return RegisterChild(
        legal_name=view.legal_name,
        other_names=view.other_names,
        sex=view.sex,
        birth_date=view.birth_date,
        identity_number=identity_number,
        ethnicity_code=view.ethnicity_code,
        household_division_code=view.household_division_code,
        household_address=view.household_address,
        residence_division_code=view.residence_division_code,
        residence_address=view.residence_address,
        school=view.school,
        grade=view.grade,
        provisional=view.provisional,
        description=record.description,
        disability_type=view.disability_type,
        disability_grade=view.disability_grade,
        serious_illness=view.serious_illness,
        contact_person=ContactPerson(record.contact_name, record.contact_relationship, record.contact_phone),
    )
