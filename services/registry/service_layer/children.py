"""The register's children: RegisterChild (and the survey's children, `record_children`), UpdateChild,
GetChild, ListChildren, and the checks on a child's fields.

Identity numbers are validated (GB 11643), encrypted at rest and found by blind index; every change to a
child is kept in the change history in the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.exc import IntegrityError

from platform_runtime import errors
from platform_runtime.db import new_id
from platform_runtime.pii import person_key
from platform_runtime.tenancy import require_role
from services.registry.adapters import village_scope
from services.registry.adapters.orm import CaseFileRecord, CategoryRecord, ChildRecord
from services.registry.adapters.repository import SqlVillageDirectory
from services.registry.domain.changes import columns, field_changes
from services.registry.domain.child import ALREADY_REGISTERED, CHILD_HISTORY_FIELDS, ChildDetails, ChildView
from services.registry.domain.codes import CaseStatus, DifficultyCategory, parse_code
from services.registry.domain.events import (
    CaseFileOpened,
    ChildBirthDateCorrected,
    ChildIdentityChanged,
    ChildMoved,
    ChildRegistered,
    RegistryEvent,
)
from services.registry.domain.family import FamilyMember
from services.registry.service_layer.access import CASEWORK_ROLES, INTAKE_ROLES, READER_ROLES
from services.registry.service_layer.category_entries import CheckedCategory, categories_rederived
from services.registry.service_layer.child_fields import (
    DIVISION_FIELDS,
    ChildFields,
    check_villages,
    command_details,
    read_fields,
    write_fields,
)
from services.registry.service_layer.child_in_work import ChildInWork
from services.registry.service_layer.child_views import aggregate_view, child_view, child_views
from services.registry.service_layer.commands import RegisterChild, UpdateChild
from services.registry.service_layer.inputs import IDENTITY_FIELD, check_version
from services.registry.service_layer.match_keys import child_match_keys
from services.registry.service_layer.scope import Scope

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


class ChildUseCases(ChildFields):
    def register_child(self, command: RegisterChild) -> ChildView:
        caller = require_role(*INTAKE_ROLES)
        if not command.provisional and caller.role not in READER_ROLES:
            raise errors.PermissionDenied("only township staff add verified children to the register")
        identity_number = self.validate(command)
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            self._require_tenant(uow, caller)
            check_villages(
                caller, caller.tenant, SqlVillageDirectory(uow.session, caller.tenant), command, DIVISION_FIELDS
            )
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
                    child.add_member(member)
                for category in new.categories:
                    child.add_category(category)
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
        write_fields(record, command)
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
        scope.emit(ChildRegistered.of(view, person_key(identity_number, self._blind_index) if identity_number else ""))
        scope.emit(CaseFileOpened(case.id, record.id, CaseStatus(case.status)))
        return child, view

    def registered_numbers(self, scope: Scope, numbers: Iterable[str]) -> dict[str, str]:
        """Identity number -> id of the child registered with it, for those of the (normalised) `numbers`
        already in the town, in one query however many they are."""
        digests = {self._blind_index.digest(number, field=IDENTITY_FIELD): number for number in numbers if number}
        if not digests:
            return {}
        found = scope.session.execute(
            select(ChildRecord.identity_number_index, ChildRecord.id)
            .where(ChildRecord.tenant_id == scope.tenant, ChildRecord.identity_number_index.in_(list(digests)))
            .execution_options(**{village_scope.WHOLE_TOWN: True})  # a child is registered once in the town
        )
        return {digests[index]: child_id for index, child_id in found if index}

    def update_child(self, command: UpdateChild) -> ChildView:
        """Change the named fields; everything is validated again as a whole (identity number included)."""
        require_role(*CASEWORK_ROLES)
        unknown = sorted(command.fields - UPDATABLE_FIELDS)
        if unknown or not command.fields:
            raise errors.InvalidInput(f"name the fields to change, among {sorted(UPDATABLE_FIELDS)}", "update_mask")
        with self._work(CASEWORK_ROLES) as uow:
            child = uow.children.get(command.child_id)
            check_version(child, command.expected_version, "the child's record")
            before = child.current_categories(uow.today)
            current = read_fields(child.details, self._identity_number(uow.tenant, child.details))
            wanted = replace(current, **{name: getattr(command.values, name) for name in command.fields})
            identity_number = self.validate(wanted)
            # A retired village may stay: only the division codes named are checked.
            check_villages(uow.caller, uow.tenant, uow.villages, wanted, command.fields & DIVISION_FIELDS)
            for event in _moves(current, wanted, child.child_id, uow.today):
                uow.emit(event)
            if IDENTITY_FIELD in command.fields:
                child.details = self._with_identity(uow.tenant, command_details(wanted), identity_number)
                index = child.details.identity_number_index
                if index and uow.children.number_taken(index, by_other_than=child.child_id):
                    raise errors.Conflict(ALREADY_REGISTERED)
                if identity_number != current.identity_number:
                    key = person_key(identity_number, self._blind_index) if identity_number else ""
                    uow.emit(ChildIdentityChanged(child.child_id, key))
            else:
                child.details = _same_identity(command_details(wanted), child.details)
            if command.fields & MATCHED_FIELDS:
                uow.children.replace_match_keys(child.child_id, child_match_keys(self._blind_index, child))
            categories = categories_rederived(uow, child, before)  # saves the child: its version moves
            view = aggregate_view(child, uow.tenant, categories)
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

    def list_children(
        self, page_size: int, page_token: str, filters: ChildFilters | None = None
    ) -> tuple[list[ChildView], str]:
        caller = require_role(*READER_ROLES)
        size = min(max(page_size or 50, 1), 500)
        filters = filters or ChildFilters()
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            query = (
                select(ChildRecord)
                .where(ChildRecord.tenant_id == caller.tenant, ChildRecord.merged_into.is_(None))
                .order_by(ChildRecord.id)
            )
            if page_token:
                query = query.where(ChildRecord.id > page_token)
            query = _filtered(query, scope, filters)
            rows = list(uow.session.scalars(query.limit(size + 1)))
            more = len(rows) > size
            rows = rows[:size]
            views = child_views(scope, rows)
            scope.audit_reads("list_children", "child", [row.id for row in rows])
            uow.commit()
            return views, (rows[-1].id if more else "")


def _moves(before: RegisterChild, after: RegisterChild, child_id: str, today: date) -> list[RegistryEvent]:
    """What the benefits service follows, in the change's transaction: a move of residence or household
    registration, a corrected birth date (codes and dates only)."""
    told: list[RegistryEvent] = []
    if (before.residence_division_code, before.household_division_code) != (
        after.residence_division_code,
        after.household_division_code,
    ):
        told.append(
            ChildMoved(
                child_id,
                before.residence_division_code,
                after.residence_division_code,
                before.household_division_code,
                after.household_division_code,
                today,
            )
        )
    if before.birth_date != after.birth_date:
        told.append(ChildBirthDateCorrected(child_id, after.birth_date))
    return told


def _same_identity(details: ChildDetails, kept: ChildDetails) -> ChildDetails:
    return replace(
        details,
        identity_number_cipher=kept.identity_number_cipher,
        identity_number_index=kept.identity_number_index,
        identity_number_masked=kept.identity_number_masked,
    )


@dataclass(frozen=True)
class ChildFilters:
    """The register's search filters; empty ones do not filter."""

    division_code: str = ""
    category: str = ""
    case_status: str = ""
    visit_overdue: bool = False


def _filtered(query: Select[tuple[ChildRecord]], scope: Scope, filters: ChildFilters) -> Select[tuple[ChildRecord]]:
    if filters.division_code:
        code = filters.division_code.strip()
        if not code.isdigit() or len(code) > 12:
            raise errors.InvalidInput("division_code", "a division code is up to 12 digits")
        query = query.where(
            or_(
                ChildRecord.residence_division_code.startswith(code),
                ChildRecord.household_division_code.startswith(code),
            )
        )
    if filters.category:
        category = parse_code(DifficultyCategory, filters.category, "category").value
        query = query.where(
            exists().where(
                CategoryRecord.tenant_id == scope.tenant,
                CategoryRecord.child_id == ChildRecord.id,
                CategoryRecord.category == category,
                CategoryRecord.valid_from <= scope.today,
                or_(CategoryRecord.valid_to.is_(None), CategoryRecord.valid_to >= scope.today),
            )
        )
    if filters.case_status:
        status = parse_code(CaseStatus, filters.case_status, "case_status").value
        query = query.where(
            exists().where(
                CaseFileRecord.tenant_id == scope.tenant,
                CaseFileRecord.child_id == ChildRecord.id,
                CaseFileRecord.status == status,
            )
        )
    if filters.visit_overdue:
        query = query.where(
            exists().where(
                CaseFileRecord.tenant_id == scope.tenant,
                CaseFileRecord.child_id == ChildRecord.id,
                CaseFileRecord.status.in_([s.value for s in CaseStatus if s.is_open]),
                CaseFileRecord.next_visit_due < scope.today,
            )
        )
    return query
