"""The register's use cases: towns, children, matching, merges and the case file. Each one runs in a unit of
work scoped to the caller's tenant.

Identity numbers are validated (GB 11643), encrypted at rest and found by blind index; reading a case file
writes an audit row in the same transaction, so no read goes unrecorded; every change to a child is kept
in the change history in the same transaction as the change.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields, replace
from datetime import date, datetime
from typing import Any

from minorprot.registry.v1 import events_pb2
from sqlalchemy import Select, String, and_, bindparam, func, null, or_, select
from sqlalchemy import case as case_when
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.pii import BlindIndex, FieldCipher, mask_identity_number
from platform_runtime.tenancy import current_principal, require_role
from platform_runtime.topics import PLATFORM_TENANT, REGISTRY_CASE, REGISTRY_CHILD
from services.registry.adapters import messages
from services.registry.adapters.orm import (
    AuditRecord,
    CaseFileRecord,
    ChildMatchKey,
    ChildRecord,
    FamilyMemberRecord,
    TenantRecord,
    TimelineRecord,
)
from services.registry.domain import matching
from services.registry.domain.codes import CaseStatus, DisabilityGrade, DisabilityType, Ethnicity
from services.registry.domain.errors import InvalidInput as InvalidIdentity
from services.registry.domain.identity import cross_check_identity, normalize_identity_number, parse_identity_number
from services.registry.service_layer import casework, villages
from services.registry.service_layer.categories import categories_of, refresh_categories
from services.registry.service_layer.child_in_work import ChildInWork
from services.registry.service_layer.child_views import child_view, child_views
from services.registry.service_layer.history import columns, field_changes
from services.registry.service_layer.match_keys import (
    PARENT_RELATIONSHIPS,
    RECORD_FACT_COLUMNS,
    match_key_digest,
    record_facts,
    store_match_keys,
)
from services.registry.service_layer.scope import (
    CASEWORK_ROLES,
    IDENTITY_FIELD,
    INTAKE_ROLES,
    MERGE_ROLES,
    READER_ROLES,
    Scope,
    check_version,
    no_lost_updates,
    require_purpose,
)
from services.registry.service_layer.views import (
    Candidate,
    CaseFileView,
    ChildView,
    ContactPerson,
    MatchProbe,
    RegisterChild,
    TenantView,
    TimelineItem,
    UpdateChild,
    Village,
    VillagesSet,
)
from services.registry.service_layer.visit_schedule import reschedule_visits

__all__ = ["IDENTITY_FIELD", "INTAKE_ROLES", "READER_ROLES", "RegistryService"]

AUTO_MATCH_LIMIT = 10
ALREADY_REGISTERED = "a child with this identity number is already registered"
CANDIDATE_MIN_SCORE = 0.3  # below this a record is not worth showing a person
MAX_CANDIDATES_SCORED = 200  # the records sharing the most blocking keys with the probe are scored
SELECTIVE_KEY_PREFIXES = ("id:", "gd:")
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


def _division_ok(code: str, lengths: tuple[int, ...] = (9, 12)) -> bool:
    return code.isdigit() and len(code) in lengths


@functools.cache
def _candidates_statement(with_guardians: bool) -> Select[Any]:
    """MatchChild's one statement, built once (parameters: tenant, keys, selective_keys, sound_key).

    Records sharing a selective key (identity number, a guardian's name) come first, then those sharing the
    most keys, so a common name's many records never push the true candidate out of the
    MAX_CANDIDATES_SCORED scored. Guardians' names are joined only when the report names some: otherwise
    they cannot count."""
    tenant = bindparam("tenant", type_=String)
    shared = func.count()
    by_selective_key = func.max(
        case_when((ChildMatchKey.match_key.in_(bindparam("selective_keys", expanding=True)), 1), else_=0)
    )
    ranked = (
        select(ChildMatchKey.child_id)
        .where(ChildMatchKey.tenant_id == tenant, ChildMatchKey.match_key.in_(bindparam("keys", expanding=True)))
        .group_by(ChildMatchKey.child_id)
        .order_by(by_selective_key.desc(), shared.desc(), ChildMatchKey.child_id)
        .limit(MAX_CANDIDATES_SCORED)
        .cte("ranked")
    )
    sharing_the_name = (
        select(func.count())
        .where(ChildMatchKey.tenant_id == tenant, ChildMatchKey.match_key == bindparam("sound_key"))
        .scalar_subquery()
    )
    guardian_name = FamilyMemberRecord.name if with_guardians else null()
    statement = (
        select(*RECORD_FACT_COLUMNS, guardian_name.label("guardian_name"), sharing_the_name.label("sharing_the_name"))
        .join(ranked, ranked.c.child_id == ChildRecord.id)
        .where(ChildRecord.tenant_id == tenant, ChildRecord.merged_into.is_(None))
    )
    if with_guardians:
        statement = statement.outerjoin(
            FamilyMemberRecord,
            and_(
                FamilyMemberRecord.tenant_id == tenant,
                FamilyMemberRecord.child_id == ChildRecord.id,
                or_(FamilyMemberRecord.guardian, FamilyMemberRecord.relationship.in_(PARENT_RELATIONSHIPS)),
            ),
        )
    return statement


class RegistryService:
    def __init__(
        self,
        database: Database,
        cipher: FieldCipher,
        blind_index: BlindIndex,
        *,
        today: Callable[[], date] = date.today,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._cipher = cipher
        self._blind_index = blind_index
        self._today = today
        self._now = now

    def _scope(self, uow: UnitOfWork, caller: Principal) -> Scope:
        return Scope(uow, caller, today=self._today(), now=self._now())

    # -- tenants --------------------------------------------------------------------------------------------

    def onboard_tenant(self, code: str, name: str, district_code: str) -> tuple[TenantView, bool]:
        caller = current_principal()
        violations = []
        if not _division_ok(code, (9,)):
            violations.append(errors.FieldViolation("code", "must be a 9-digit GB/T 2260 town/street code"))
        if not name.strip():
            violations.append(errors.FieldViolation("name", "is required"))
        if not (_division_ok(district_code, (6,)) and code.startswith(district_code)):
            violations.append(errors.FieldViolation("district_code", "must be the 6-digit district of the town"))
        if violations:
            raise errors.InvalidInput(violations)
        if caller.role is not Role.SYSTEM and not (
            caller.role is Role.DISTRICT_OFFICER and caller.district == district_code
        ):
            raise errors.PermissionDenied("only the platform or the district may onboard a town")
        with self._database.unit_of_work(code) as uow:
            existing = uow.session.get(TenantRecord, code)
            if existing is not None:
                return _tenant_view(existing), False
            record = TenantRecord(code=code, name=name.strip(), district_code=district_code, onboarded_at=self._now())
            uow.session.add(record)
            view = _tenant_view(record)
            self._scope(uow, caller).publish(
                PLATFORM_TENANT, code, events_pb2.TenantOnboarded(tenant=messages.tenant(view)), "tenant"
            )
            uow.commit()
            return view, True

    def list_tenants(self, district_code: str = "") -> list[TenantView]:
        caller = current_principal()
        district = district_code or caller.district
        if district != caller.district and caller.role is not Role.SYSTEM:
            raise errors.PermissionDenied("another district's towns are not visible")
        with self._database.unit_of_work(caller.tenant) as uow:
            rows = uow.session.scalars(
                select(TenantRecord).where(TenantRecord.district_code == district).order_by(TenantRecord.code)
            )
            return [_tenant_view(row) for row in rows]

    def set_villages(self, listed: Sequence[Village]) -> VillagesSet:
        caller = require_role(Role.TOWN_ADMIN, Role.SYSTEM)
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            self._require_tenant(uow, caller)
            result = villages.set_villages(scope, listed)
            scope.audit("set_villages", "tenant", caller.tenant)
            uow.commit()
            return result

    def list_villages(self, *, include_retired: bool = False) -> list[Village]:
        caller = require_role(*CASEWORK_ROLES, *READER_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            return villages.list_villages(self._scope(uow, caller), include_retired=include_retired)

    def tenant_codes(self) -> list[str]:
        """Every onboarded town (platform data, no tenant needed): what periodic jobs go through."""
        with self._database.platform_session() as session:
            return list(session.scalars(select(TenantRecord.code).order_by(TenantRecord.code)))

    # -- children -------------------------------------------------------------------------------------------

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
            child, view = self.record_child(scope, command, identity_number)
            child.store_match_keys(self._blind_index)
            ChildInWork.write_records(scope, [child])
            try:
                uow.commit()
            except IntegrityError as exc:
                raise errors.Conflict(ALREADY_REGISTERED) from exc
            return view

    def record_child(self, scope: Scope, command: RegisterChild, identity_number: str) -> tuple[ChildInWork, ChildView]:
        """RegisterChild's work inside the caller's transaction, for the API and the survey alike: the record
        (its identity number encrypted, blind-indexed and masked), its case file, timeline entry and change
        history, the categories the rules derive, and the events ChildRegistered and CaseFileOpened.

        The caller has validated the command (`validate` gave `identity_number`), found the number not yet
        registered (`registered_numbers`), and stores the match keys once the child's facts are all in
        (`ChildInWork.store_match_keys`; the survey adds the family first), then writes the new records
        before anything else (`ChildInWork.write_records`). Nothing here queries the database, so a batch
        of children is written in a few statements."""
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

    def match_child(self, probe: MatchProbe, limit: int = AUTO_MATCH_LIMIT) -> list[Candidate]:
        """Ranked candidates: blocking keys (the identity number's blind index among them) find a few
        records through an index, then each is scored on names, pinyin, dates, place and guardians."""
        caller = require_role(*INTAKE_ROLES)
        limit = min(max(limit or AUTO_MATCH_LIMIT, 1), 50)
        facts = self._probe_facts(probe)
        keys = matching.lookup_keys(facts)
        if not keys:
            return []
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            candidates, name_counts = self._candidates(scope, facts, keys)
            ranked = matching.rank_candidates(
                facts,
                candidates,
                min_score=CANDIDATE_MIN_SCORE,
                limit=limit,
                name_count=lambda sound_key: name_counts.get(sound_key, 0),
            )
            if not ranked:
                return []
            records = {
                row.id: row
                for row in uow.session.scalars(
                    select(ChildRecord).where(
                        ChildRecord.tenant_id == caller.tenant, ChildRecord.id.in_([r.record_id for r in ranked])
                    )
                )
            }
            views = {v.child_id: v for v in child_views(scope, [records[r.record_id] for r in ranked])}
            scope.audit_reads("match_child", "child", [r.record_id for r in ranked])
            uow.commit()
            return [Candidate(views[r.record_id], r.result.score, r.result.reasons) for r in ranked]

    def _candidates(
        self, scope: Scope, facts: matching.ChildFacts, keys: frozenset[str]
    ) -> tuple[list[tuple[str, matching.ChildFacts]], dict[str, int]]:
        """The records sharing a blocking key with the probe, as the facts scoring needs, and how many records
        share the probe's name sound key (how common the name is: `matching.NameCount`), in one statement."""
        digests = {self._key_digest(k): k for k in keys}
        (name, *_) = facts.names or ("",)  # a report gives one name
        parameters = {
            "tenant": scope.tenant,
            "keys": list(digests),
            "selective_keys": [d for d, k in digests.items() if k.startswith(SELECTIVE_KEY_PREFIXES)],
            "sound_key": self._key_digest(matching.name_sound_key(name)) if name else "",
        }
        rows: dict[str, tuple[Row[Any], list[str]]] = {}
        sharing_the_name = 0
        for row in scope.session.execute(_candidates_statement(bool(facts.guardian_names)), parameters):
            entry = rows.get(row.id)
            if entry is None:
                entry = rows[row.id] = (row, [])
                sharing_the_name = row.sharing_the_name
            if row.guardian_name:
                entry[1].append(row.guardian_name)
        candidates = [(child_id, record_facts(columns, tuple(names))) for child_id, (columns, names) in rows.items()]
        # A name agreeing in sound has the same sound key (sorted syllables): the probe's is the one counted.
        return candidates, ({matching.name_sound_key(name): sharing_the_name} if name else {})

    def _key_digest(self, key: str) -> str:
        return match_key_digest(self._blind_index, key)

    def _probe_facts(self, probe: MatchProbe) -> matching.ChildFacts:
        number = normalize_identity_number(probe.identity_number) if probe.identity_number.strip() else ""
        return matching.ChildFacts(
            name=probe.name.strip() or None,
            identity_key=self._blind_index.digest(number, field=IDENTITY_FIELD) if number else None,
            birth_date=probe.birth_date,
            approximate_age=probe.approximate_age or None,
            age_observed_on=self._today() if probe.approximate_age else None,
            sex=probe.sex if probe.sex.is_known else None,
            guardian_names=probe.guardian_names,
            division_code=probe.division_code or None,
            school=probe.school or None,
        )

    # -- merges ---------------------------------------------------------------------------------------------

    def merge_children(self, surviving_id: str, merged_id: str, reason: str) -> ChildView:
        """The duplicate is kept but hidden (no match keys, not listed, no visits due); its id resolves to
        the survivor, whose case file shows both timelines. Nothing else moves, so unmerging restores all."""
        caller = require_role(*MERGE_ROLES)
        reason = _reason(reason)
        if surviving_id == merged_id:
            raise errors.InvalidInput("a record cannot be merged into itself", "merged_child_id")
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            survivor = scope.child(surviving_id, follow_merges=False)
            duplicate = scope.child(merged_id, follow_merges=False)
            if survivor.merged_into is not None:
                raise errors.Conflict("the surviving record was itself merged: merge into the record it resolves to")
            if duplicate.merged_into is not None:
                raise errors.Conflict("this record is already merged; unmerge it first")
            duplicate.merged_into, duplicate.merged_at = survivor.id, scope.now
            self._after_merge_change(scope, duplicate, survivor, "merged", reason)
            scope.publish(
                REGISTRY_CHILD,
                duplicate.id,
                events_pb2.ChildrenMerged(
                    surviving_child_id=survivor.id,
                    merged_child_id=duplicate.id,
                    reason=reason,
                    merged_by=caller.user_id,
                ),
            )
            (view,) = child_views(scope, [survivor])
            uow.commit()
            return view

    def unmerge_children(self, merged_id: str, reason: str) -> ChildView:
        caller = require_role(*MERGE_ROLES)
        reason = _reason(reason)
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            duplicate = scope.child(merged_id, follow_merges=False)
            if duplicate.merged_into is None:
                raise errors.Conflict("this record is not merged")
            survivor = scope.child(duplicate.merged_into, follow_merges=False)
            duplicate.merged_into, duplicate.merged_at = None, None
            self._after_merge_change(scope, duplicate, survivor, "unmerged", reason)
            scope.publish(
                REGISTRY_CHILD,
                duplicate.id,
                events_pb2.ChildrenUnmerged(
                    surviving_child_id=survivor.id,
                    merged_child_id=duplicate.id,
                    reason=reason,
                    unmerged_by=caller.user_id,
                ),
            )
            (view,) = child_views(scope, [duplicate])
            uow.commit()
            return view

    def _after_merge_change(
        self, scope: Scope, duplicate: ChildRecord, survivor: ChildRecord, action: str, why: str
    ) -> None:
        """What a merge and an unmerge both keep up to date and on record."""
        store_match_keys(scope, self._blind_index, duplicate)
        reschedule_visits(scope, duplicate, scope.case_file(duplicate.id))
        pointer: list[object] = [survivor.id, None] if action == "unmerged" else [None, survivor.id]
        scope.record_change(
            duplicate.id, "child", duplicate.id, action, {"merged_into": pointer, "reason": [None, why]}
        )
        scope.record_change(
            survivor.id, "child", survivor.id, action, {"merged_child_id": [None, duplicate.id], "reason": [None, why]}
        )
        scope.audit("merge_children" if action == "merged" else "unmerge_children", "child", duplicate.id, why)
        summary = f"{'合并' if action == 'merged' else '撤销合并'} {action} duplicate record {duplicate.id}: {why}"
        for child_id in (survivor.id, duplicate.id):
            scope.add_timeline(child_id, action, summary, "registry", new_id())

    # -- case files -----------------------------------------------------------------------------------------

    def get_case_file(self, child_id: str, purpose: str) -> tuple[CaseFileView, str]:
        """The whole case file (audited), and the surviving id when `child_id` was merged."""
        caller = require_role(*READER_ROLES)
        purpose = require_purpose(purpose)
        with self._database.unit_of_work(caller.tenant) as uow:
            scope = self._scope(uow, caller)
            child = scope.child(child_id)
            case = scope.case_file(child.id)
            merged_ids = scope.merged_ids(child.id)
            timeline = uow.session.scalars(
                select(TimelineRecord)
                .where(TimelineRecord.tenant_id == caller.tenant, TimelineRecord.child_id.in_([child.id, *merged_ids]))
                .order_by(TimelineRecord.at, TimelineRecord.id)
            )
            (child_data,) = child_views(scope, [child])
            view = CaseFileView(
                case_id=case.id,
                child=child_data,
                status=case.status,
                responsible_person=case.responsible_person,
                social_worker=case.social_worker,
                child_director=case.child_director,
                timeline=tuple(
                    TimelineItem(t.at, t.kind, t.summary, t.source_service, t.reference_id) for t in timeline
                ),
                status_reason=case.status_reason,
                family=tuple(casework.family_views(scope, child.id)),
                categories=tuple(casework.category_views(scope, child.id)),
                assessments=tuple(casework.assessment_views(scope, child.id)),
                risk_level=case.risk_level,
                plan=tuple(casework.plan_views(scope, child.id)),
                visits=tuple(casework.visit_views(scope, child.id)),
                next_visit_due=case.next_visit_due,
                merged_child_ids=tuple(merged_ids),
                version=case.version,
            )
            scope.audit("read_case_file", "case_file", case.id, purpose)
            uow.commit()
            return view, (child.id if child.id != child_id else "")

    def audit_trail(self, subject_id: str) -> list[AuditRecord]:
        caller = current_principal()
        if caller.role not in (Role.TOWN_ADMIN, Role.DISTRICT_OFFICER, Role.SYSTEM):
            raise errors.PermissionDenied("only administrators read the audit trail")
        with self._database.unit_of_work(caller.tenant) as uow:
            return list(
                uow.session.scalars(
                    select(AuditRecord)
                    .where(AuditRecord.tenant_id == caller.tenant, AuditRecord.subject_id == subject_id)
                    .order_by(AuditRecord.id)
                )
            )

    # -- events from other services (called by consumers inside their unit of work) --------------------------

    def link_report(self, uow: UnitOfWork, *, child_id: str, report_id: str, summary: str, at: datetime) -> bool:
        """Attach a discovery report to the child's case file; False when the child is not in this tenant.

        The entry stays under the id the report names, even a merged one: the survivor's case file shows
        it, and an unmerge gives it back to the record it was about."""
        scope = self._scope(uow, current_principal())
        child = uow.session.get(ChildRecord, child_id)
        if child is None or child.tenant_id != uow.tenant:
            return False
        case = scope.case_file(child_id)
        scope.add_timeline(child_id, "report", summary, "reporting", report_id, at=at)
        scope.publish(
            REGISTRY_CASE,
            child_id,
            events_pb2.ReportLinkedToCase(case_id=case.id, child_id=child_id, report_id=report_id),
        )
        return True

    def record_on_timeline(
        self, uow: UnitOfWork, *, child_id: str, kind: str, summary: str, source: str, reference_id: str, at: datetime
    ) -> bool:
        """What another service did for the child (a referral, a benefit) joins the case file's timeline; False
        for a child this town does not have."""
        child = uow.session.get(ChildRecord, child_id)
        if child is None or child.tenant_id != uow.tenant:
            return False
        self._scope(uow, current_principal()).add_timeline(child_id, kind, summary, source, reference_id, at=at)
        return True

    # -- helpers ---------------------------------------------------------------------------------------------

    def validate(self, command: RegisterChild) -> str:
        """Every problem with the child's fields at once; returns the normalised identity number ("" if none)."""
        violations: list[errors.FieldViolation] = []
        if not command.legal_name.strip() and not command.description.strip():
            violations.append(errors.FieldViolation("legal_name", "a name or, for an unknown child, a description"))
        if command.birth_date and command.birth_date > self._today():
            violations.append(errors.FieldViolation("birth_date", "is in the future"))
        for field_name in ("household_division_code", "residence_division_code"):
            code = getattr(command, field_name)
            if code and not _division_ok(code):
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

    def _require_tenant(self, uow: UnitOfWork, caller: Principal) -> None:
        if uow.session.get(TenantRecord, caller.tenant) is None:
            raise errors.Conflict(f"town {caller.tenant} is not onboarded")


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise errors.InvalidInput("say why (it is recorded)", "reason")
    return reason


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


def _tenant_view(record: TenantRecord) -> TenantView:
    return TenantView(record.code, record.name, record.district_code, record.onboarded_at)
