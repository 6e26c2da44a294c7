"""The registry's use cases. Each one runs in a unit of work scoped to the caller's tenant.

Identity numbers are validated (GB 11643), encrypted at rest and found by blind index; reading a case file
writes an audit row in the same transaction, so no read goes unrecorded.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime

from minorprot.registry.v1 import events_pb2
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.events import PendingEvent
from platform_runtime.pii import BlindIndex, FieldCipher, mask_identity_number
from platform_runtime.tenancy import current_principal, require_role
from platform_runtime.topics import PLATFORM_TENANT, REGISTRY_CASE, REGISTRY_CHILD
from services.registry.adapters import messages
from services.registry.adapters.orm import (
    AuditRecord,
    CaseFileRecord,
    ChildMatchKey,
    ChildRecord,
    TenantRecord,
    TimelineRecord,
)
from services.registry.domain import matching
from services.registry.domain.codes import Sex
from services.registry.domain.errors import InvalidInput as InvalidIdentity
from services.registry.domain.identity import cross_check_identity, normalize_identity_number, parse_identity_number
from services.registry.service_layer.views import (
    Candidate,
    CaseFileView,
    ChildView,
    MatchProbe,
    RegisterChild,
    TenantView,
    TimelineItem,
)

IDENTITY_FIELD = "identity_number"
CASE_STATUS_IDENTIFIED = "identified"
AUTO_MATCH_LIMIT = 10
CANDIDATE_MIN_SCORE = 0.3  # below this a record is not worth showing a person
MAX_CANDIDATES_SCORED = 500  # a blocking key shared by more records than this is not selective
SELECTIVE_KEY_PREFIXES = ("id:", "gd:")

# Who may read the register and case files: the town's and district's child-protection staff.
READER_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.CHILD_DIRECTOR, Role.DISTRICT_OFFICER, Role.SYSTEM})
# Reports reach the registry on behalf of their reporters: those may match a child and register a
# provisional one (the answer goes to the reporting service, never back to the reporter).
INTAKE_ROLES = READER_ROLES | {Role.MANDATED_REPORTER, Role.AGENCY_OFFICER, Role.AGENCY_SYSTEM}


def _division_ok(code: str, lengths: tuple[int, ...] = (9, 12)) -> bool:
    return code.isdigit() and len(code) in lengths


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
            uow.publish(
                PendingEvent(
                    PLATFORM_TENANT, code, "tenant", code, events_pb2.TenantOnboarded(tenant=messages.tenant(view))
                )
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

    # -- children -------------------------------------------------------------------------------------------

    def register_child(self, command: RegisterChild) -> ChildView:
        caller = require_role(*INTAKE_ROLES)
        if not command.provisional and caller.role not in READER_ROLES:
            raise errors.PermissionDenied("only township staff add verified children to the register")
        identity_number = self._validate(command)
        with self._database.unit_of_work(caller.tenant) as uow:
            self._require_tenant(uow, caller)
            record = ChildRecord(
                id=new_id(),
                tenant_id=caller.tenant,
                legal_name=command.legal_name.strip(),
                other_names=[name.strip() for name in command.other_names if name.strip()],
                sex=command.sex.value,
                birth_date=command.birth_date,
                ethnicity_code=command.ethnicity_code,
                household_division_code=command.household_division_code,
                household_address=command.household_address,
                residence_division_code=command.residence_division_code,
                residence_address=command.residence_address,
                school=command.school,
                grade=command.grade,
                description=command.description,
                provisional=command.provisional,
                created_at=self._now(),
                created_by=caller.user_id,
            )
            if identity_number:
                digest = self._blind_index.digest(identity_number, field=IDENTITY_FIELD)
                if uow.session.scalar(
                    select(ChildRecord.id).where(
                        ChildRecord.tenant_id == caller.tenant, ChildRecord.identity_number_index == digest
                    )
                ):
                    raise errors.Conflict("a child with this identity number is already registered")
                record.identity_number_cipher = self._cipher.encrypt(
                    identity_number, tenant=caller.tenant, field=IDENTITY_FIELD
                )
                record.identity_number_index = digest
                record.identity_number_masked = mask_identity_number(identity_number)
            uow.session.add(record)
            self._store_match_keys(uow, record)
            case = CaseFileRecord(
                id=new_id(),
                tenant_id=caller.tenant,
                child_id=record.id,
                status=CASE_STATUS_IDENTIFIED,
                opened_at=self._now(),
            )
            uow.session.add(case)
            self._add_timeline(
                uow, record.id, "registered", "登记入册 registered in the register", "registry", record.id
            )
            view = _child_view(record)
            uow.publish(
                PendingEvent(
                    REGISTRY_CHILD,
                    caller.tenant,
                    "child",
                    record.id,
                    events_pb2.ChildRegistered(child=messages.child(view)),
                )
            )
            uow.publish(
                PendingEvent(
                    REGISTRY_CASE,
                    caller.tenant,
                    "child",
                    record.id,
                    events_pb2.CaseFileOpened(case_id=case.id, child_id=record.id, status=case.status),
                )
            )
            try:
                uow.commit()
            except IntegrityError as exc:
                raise errors.Conflict("a child with this identity number is already registered") from exc
            return view

    def get_child(self, child_id: str) -> ChildView:
        caller = require_role(*READER_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            return _child_view(self._child(uow, caller, child_id))

    def list_children(self, page_size: int, page_token: str) -> tuple[list[ChildView], str]:
        caller = require_role(*READER_ROLES)
        size = min(max(page_size or 50, 1), 500)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(ChildRecord).where(ChildRecord.tenant_id == caller.tenant).order_by(ChildRecord.id)
            if page_token:
                query = query.where(ChildRecord.id > page_token)
            rows = list(uow.session.scalars(query.limit(size + 1)))
            more = len(rows) > size
            rows = rows[:size]
            return [_child_view(row) for row in rows], (rows[-1].id if more else "")

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
            ids: list[str] = []
            # The most selective keys first (identity number, guardians), so a common name's many
            # records can never push the true candidate out of the scored set.
            for selective in (True, False):
                chosen = sorted(k for k in keys if k.startswith(SELECTIVE_KEY_PREFIXES) == selective)
                if chosen and len(ids) < MAX_CANDIDATES_SCORED:
                    ids += uow.session.scalars(
                        select(ChildMatchKey.child_id)
                        .where(
                            ChildMatchKey.tenant_id == caller.tenant,
                            ChildMatchKey.match_key.in_([self._key_digest(k) for k in chosen]),
                            ChildMatchKey.child_id.not_in(ids),
                        )
                        .distinct()
                        .limit(MAX_CANDIDATES_SCORED - len(ids))
                    ).all()
            records = {
                row.id: row
                for row in uow.session.scalars(
                    select(ChildRecord).where(ChildRecord.tenant_id == caller.tenant, ChildRecord.id.in_(ids))
                )
            }

            @functools.cache
            def name_count(sound_key: str) -> int:
                # How common a name is in this town: agreement on a common name is weaker evidence.
                return int(
                    uow.session.scalar(
                        select(func.count()).where(
                            ChildMatchKey.tenant_id == caller.tenant,
                            ChildMatchKey.match_key == self._key_digest(sound_key),
                        )
                    )
                    or 0
                )

            ranked = matching.rank_candidates(
                facts,
                ((child_id, _record_facts(row)) for child_id, row in records.items()),
                min_score=CANDIDATE_MIN_SCORE,
                limit=limit,
                name_count=name_count,
            )
            return [Candidate(_child_view(records[r.record_id]), r.result.score, r.result.reasons) for r in ranked]

    def _key_digest(self, key: str) -> str:
        # Match keys hold pinyin, birth dates and guardians' names: personal data, stored only as HMACs.
        return self._blind_index.digest(key, field="match_key")

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

    # -- case files -----------------------------------------------------------------------------------------

    def get_case_file(self, child_id: str, purpose: str) -> CaseFileView:
        caller = require_role(*READER_ROLES)
        if len(purpose.strip()) < 4:
            raise errors.InvalidInput("say why you open this case file (it is recorded)", "purpose")
        with self._database.unit_of_work(caller.tenant) as uow:
            child = self._child(uow, caller, child_id)
            case = uow.session.scalars(select(CaseFileRecord).where(CaseFileRecord.child_id == child.id)).one()
            timeline = uow.session.scalars(
                select(TimelineRecord)
                .where(TimelineRecord.tenant_id == caller.tenant, TimelineRecord.child_id == child.id)
                .order_by(TimelineRecord.at, TimelineRecord.id)
            )
            view = CaseFileView(
                case_id=case.id,
                child=_child_view(child),
                status=case.status,
                responsible_person=case.responsible_person,
                social_worker=case.social_worker,
                child_director=case.child_director,
                timeline=tuple(
                    TimelineItem(t.at, t.kind, t.summary, t.source_service, t.reference_id) for t in timeline
                ),
            )
            self._audit(uow, caller, "read_case_file", "case_file", case.id, purpose.strip())
            uow.commit()
            return view

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
        """Attach a discovery report to the child's case file; False when the child is not in this tenant."""
        child = uow.session.get(ChildRecord, child_id)
        if child is None or child.tenant_id != uow.tenant:
            return False
        case = uow.session.scalars(select(CaseFileRecord).where(CaseFileRecord.child_id == child_id)).one()
        self._add_timeline(uow, child_id, "report", summary, "reporting", report_id, at=at)
        uow.publish(
            PendingEvent(
                REGISTRY_CASE,
                uow.tenant,
                "child",
                child_id,
                events_pb2.ReportLinkedToCase(case_id=case.id, child_id=child_id, report_id=report_id),
            )
        )
        return True

    def record_referral(
        self, uow: UnitOfWork, *, child_id: str, referral_id: str, summary: str, at: datetime, kind: str
    ) -> bool:
        child = uow.session.get(ChildRecord, child_id)
        if child is None or child.tenant_id != uow.tenant:
            return False
        self._add_timeline(uow, child_id, kind, summary, "referral", referral_id, at=at)
        return True

    # -- helpers ---------------------------------------------------------------------------------------------

    def _validate(self, command: RegisterChild) -> str:
        violations: list[errors.FieldViolation] = []
        if not command.legal_name.strip() and not command.description.strip():
            violations.append(errors.FieldViolation("legal_name", "a name or, for an unknown child, a description"))
        if command.birth_date and command.birth_date > self._today():
            violations.append(errors.FieldViolation("birth_date", "is in the future"))
        for field_name in ("household_division_code", "residence_division_code"):
            code = getattr(command, field_name)
            if code and not _division_ok(code):
                violations.append(errors.FieldViolation(field_name, "must be a 9- or 12-digit GB/T 2260 code"))
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

    def _require_tenant(self, uow: UnitOfWork, caller: Principal) -> None:
        if uow.session.get(TenantRecord, caller.tenant) is None:
            raise errors.Conflict(f"town {caller.tenant} is not onboarded")

    def _child(self, uow: UnitOfWork, caller: Principal, child_id: str) -> ChildRecord:
        record = uow.session.get(ChildRecord, child_id)
        # Another tenant's child is reported as absent, not forbidden: its existence is not disclosed.
        if record is None or record.tenant_id != caller.tenant:
            raise errors.NotFound("no such child in this town")
        return record

    def _store_match_keys(self, uow: UnitOfWork, record: ChildRecord) -> None:
        uow.session.execute(delete(ChildMatchKey).where(ChildMatchKey.child_id == record.id))
        for key in sorted({self._key_digest(k) for k in matching.index_keys(_record_facts(record))}):
            uow.session.add(ChildMatchKey(tenant_id=record.tenant_id, match_key=key, child_id=record.id))

    def _add_timeline(
        self,
        uow: UnitOfWork,
        child_id: str,
        kind: str,
        summary: str,
        source: str,
        reference_id: str,
        *,
        at: datetime | None = None,
    ) -> None:
        uow.session.add(
            TimelineRecord(
                tenant_id=uow.tenant,
                child_id=child_id,
                at=at or self._now(),
                kind=kind,
                summary=summary,
                source_service=source,
                reference_id=reference_id,
            )
        )

    def _audit(self, uow: UnitOfWork, caller: Principal, action: str, subject: str, subject_id: str, why: str) -> None:
        uow.session.add(
            AuditRecord(
                tenant_id=uow.tenant,
                at=self._now(),
                actor=caller.user_id,
                role=caller.role.value,
                action=action,
                subject_type=subject,
                subject_id=subject_id,
                purpose=why,
            )
        )


def _tenant_view(record: TenantRecord) -> TenantView:
    return TenantView(record.code, record.name, record.district_code, record.onboarded_at)


def _child_view(record: ChildRecord) -> ChildView:
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
        categories=(),
        provisional=record.provisional,
        created_at=record.created_at,
    )


def _record_facts(record: ChildRecord) -> matching.ChildFacts:
    sex = Sex(record.sex)
    return matching.ChildFacts(
        name=record.legal_name or None,
        other_names=tuple(record.other_names or ()),
        identity_key=record.identity_number_index,
        birth_date=record.birth_date,
        sex=sex if sex.is_known else None,
        division_code=record.residence_division_code or record.household_division_code or None,
        school=record.school or None,
    )
