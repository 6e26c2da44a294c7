"""Applications (申报): drafted by township staff (or from a referral, or when the register shows a
qualifying category), reviewed by the town, approved by the district civil affairs bureau.

Approval starts the entitlement from the requested day, which may lie in the past: the next run pays the
months before as arrears. The district decides inside a unit of work of the child's town (the application
and entitlement are the town's rows), with the district set so it may only reach its own towns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from platform_runtime import paging
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from platform_runtime.tenancy import require_role
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.benefits.adapters.orm import ApplicationRecord, EntitlementRecord
from services.benefits.adapters.policies import load_policies
from services.benefits.domain import applications as rules
from services.benefits.domain.applications import Status
from services.benefits.domain.policy import BenefitRule, Kind, PolicyVersion, policy_for
from services.benefits.service_layer import eligibility

TOWN_ROLES = (Role.CASEWORKER, Role.TOWN_ADMIN)
REVIEWER_ROLES = (Role.TOWN_ADMIN,)
DECIDER_ROLES = (Role.DISTRICT_OFFICER,)
READER_ROLES = (*TOWN_ROLES, Role.DISTRICT_OFFICER, Role.FINANCE_AUDITOR)


@dataclass(frozen=True)
class ApplicationView:
    application_id: str
    tenant: str
    child_id: str
    benefit_code: str
    status: str
    documents: tuple[str, ...]
    missing_documents: tuple[str, ...]
    reason: str
    source: str
    previous_id: str
    starts_on: date | None
    submitted_on: date | None
    town_due_on: date | None
    district_due_on: date | None
    rejection_reason: str
    created_by: str
    town_reviewed_by: str
    decided_by: str
    overdue: bool
    # Approved: the next review (复核) of the entitlement it granted, and whether it is marked due.
    review_due_on: date | None = None
    review_due: bool = False


class Applications:
    def __init__(
        self,
        database: Database,
        *,
        now: Callable[[], datetime] = utcnow,
        holidays: Collection[date] = frozenset(),
    ) -> None:
        self._database = database
        self._now = now
        self._holidays = holidays

    # -- township staff ------------------------------------------------------------------------------------

    def create(
        self,
        child_id: str,
        benefit_code: str,
        *,
        documents: Sequence[str] = (),
        reason: str = "",
        starts_on: date | None = None,
        account_ref: str = "",
    ) -> ApplicationView:
        caller = require_role(*TOWN_ROLES)
        policy = self.policy(caller.district)
        with self._town(caller, caller.tenant) as uow:
            application = self.draft(uow, policy, child_id, benefit_code, reason, f"portal:{new_id()}", caller.user_id)
            if application is None:
                raise Conflict("the child already has an open application for this benefit")
            application.documents = _documents_json(documents)
            application.starts_on = starts_on
            _set_account(uow, child_id, account_ref)
            view = self._view(policy, application, {})  # not approved yet: nothing granted
            uow.commit()
            return view

    def draft(
        self,
        uow: UnitOfWork,
        policy: PolicyVersion | None,
        child_id: str,
        benefit_code: str,
        reason: str,
        source: str,
        by: str,
        *,
        strict: bool = True,
    ) -> ApplicationRecord | None:
        """A draft, unless the same source made one before or an application for the benefit is open.

        `strict=False` (drafts from other services' events) keeps what is known: no child yet, or a benefit
        hint that is not a code (left empty); the town completes the draft before submitting it."""
        if strict or benefit_code:
            known = policy.rule_by_code.get(benefit_code) if policy else None
            if known is None and not strict:
                benefit_code = ""
            elif self._rule(policy, benefit_code).kind is Kind.INSURANCE:
                raise InvalidInput.single("benefit_code", "the 0–3 insurance needs no application")
        if (strict or child_id) and eligibility.beneficiary(uow, child_id) is None:
            if strict:
                raise NotFound("the child is not in the town's register")
            eligibility.record_child(uow, child_id, birth_date=None, household_division_code="", at=self._now())
        existing = uow.session.scalars(
            select(ApplicationRecord).where(
                ApplicationRecord.tenant_id == uow.tenant,
                (ApplicationRecord.child_id == child_id) | (ApplicationRecord.source == source),
            )
        ).all()
        clash = [a for a in existing if a.source == source]
        if child_id:
            clash += [a for a in existing if a.benefit_code == benefit_code and a.status in rules.OPEN]
        if clash:
            return None
        now = self._now()
        record = ApplicationRecord(
            id=new_id(),
            tenant_id=uow.tenant,
            child_id=child_id,
            benefit_code=benefit_code,
            status=Status.DRAFT.value,
            documents="[]",
            reason=reason.strip()[:500],
            source=source[:100],
            previous_id=None,
            starts_on=None,
            submitted_on=None,
            town_due_on=None,
            district_due_on=None,
            town_reviewed_by="",
            decided_by="",
            decided_on=None,
            rejection_reason="",
            created_by=by,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(record)
        return record

    def update(
        self,
        application_id: str,
        *,
        documents: Sequence[str],
        starts_on: date | None = None,
        child_id: str = "",
        benefit_code: str = "",
        account_ref: str = "",
    ) -> ApplicationView:
        """The documents provided so far (and the requested start), while the town still holds it; a draft
        may also get its child and benefit (drafts from a referral may arrive without them)."""
        caller = require_role(*TOWN_ROLES)
        policy = self.policy(caller.district)
        with self._town(caller, caller.tenant) as uow:
            application = self._get(uow, application_id)
            if application.status not in (Status.DRAFT, Status.SUBMITTED):
                raise Conflict(f"an application that is {application.status} is no longer edited")
            application.documents = _documents_json(documents)
            if starts_on is not None:
                application.starts_on = starts_on
            if child_id or benefit_code:
                if application.status != Status.DRAFT:
                    raise Conflict("only a draft changes its child or benefit")
                if benefit_code:
                    self._rule(policy, benefit_code)
                    application.benefit_code = benefit_code
                if child_id:
                    if eligibility.beneficiary(uow, child_id) is None:
                        raise NotFound("the child is not in the town's register")
                    application.child_id = child_id
            if application.child_id:
                _set_account(uow, application.child_id, account_ref)
            application.updated_at = self._now()
            view = self._view(policy, application, {})  # not approved yet: nothing granted
            uow.commit()
            return view

    def submit(self, application_id: str) -> ApplicationView:
        caller = require_role(*TOWN_ROLES)
        policy = self.policy(caller.district)
        with self._town(caller, caller.tenant) as uow:
            application = self._get(uow, application_id)
            rules.require("submit", application.status)
            if not application.child_id:
                raise InvalidInput.single("child_id", "name the child before submitting")
            rules.check_documents(self._rule(policy, application.benefit_code).documents, _documents(application))
            today = self._today()
            application.status = Status.SUBMITTED.value
            application.submitted_on = today
            application.town_due_on = rules.add_working_days(today, rules.TOWN_REVIEW_DAYS, self._holidays)
            return self._save(uow, policy, application)

    def town_review(self, application_id: str, *, approve: bool, reason: str = "") -> ApplicationView:
        caller = require_role(*REVIEWER_ROLES)
        policy = self.policy(caller.district)
        with self._town(caller, caller.tenant) as uow:
            application = self._get(uow, application_id)
            rules.require("town_approve" if approve else "town_reject", application.status)
            application.town_reviewed_by = caller.user_id
            if approve:
                application.status = Status.TOWN_APPROVED.value
                application.district_due_on = rules.add_working_days(
                    self._today(), rules.DISTRICT_REVIEW_DAYS, self._holidays
                )
            else:
                self._reject(application, reason, caller)
            return self._save(uow, policy, application)

    def withdraw(self, application_id: str) -> ApplicationView:
        caller = require_role(*TOWN_ROLES)
        policy = self.policy(caller.district)
        with self._town(caller, caller.tenant) as uow:
            application = self._get(uow, application_id)
            rules.require("withdraw", application.status)
            application.status = Status.WITHDRAWN.value
            return self._save(uow, policy, application)

    def record_review(self, application_id: str) -> ApplicationView:
        """The town reviewed (复核) the entitlement the application granted: the next review is a cycle on."""
        caller = require_role(*TOWN_ROLES)
        policy = self.policy(caller.district)
        with self._town(caller, caller.tenant) as uow:
            application = self._get(uow, application_id)
            granted = _granted(uow, [application]).get(
                (application.tenant_id, application.child_id, application.benefit_code)
            )
            if granted is None:
                raise Conflict("only an approved application's current entitlement is reviewed")
            eligibility.reviewed(uow, granted, self._today())
            return self._save(uow, policy, application)

    def reapply(self, application_id: str) -> ApplicationView:
        """A new draft for a rejected (or withdrawn) application, pointing back at it; documents carried over."""
        caller = require_role(*TOWN_ROLES)
        policy = self.policy(caller.district)
        with self._town(caller, caller.tenant) as uow:
            old = self._get(uow, application_id)
            rules.require("reapply", old.status)
            fresh = self.draft(
                uow, policy, old.child_id, old.benefit_code, old.reason, f"reapply:{old.id}", caller.user_id
            )
            if fresh is None:
                raise Conflict("already re-applied, or another application for the benefit is open")
            fresh.previous_id, fresh.documents, fresh.starts_on = old.id, old.documents, old.starts_on
            return self._save(uow, policy, fresh)

    # -- the district civil affairs bureau -----------------------------------------------------------------

    def district_decide(
        self, application_id: str, *, approve: bool, reason: str = "", starts_on: date | None = None
    ) -> ApplicationView:
        """Approve (the entitlement starts from `starts_on`, else the requested day, else submission) or reject."""
        caller = require_role(*DECIDER_ROLES)
        town = self._town_of(caller, application_id)
        policy = self.policy(caller.district)
        with self._town(caller, town) as uow:
            application = self._get(uow, application_id)
            rules.require("district_approve" if approve else "district_reject", application.status)
            application.decided_by = caller.user_id
            application.decided_on = self._today()
            if not approve:
                self._reject(application, reason, caller)
                return self._save(uow, policy, application)
            first = starts_on or application.starts_on or application.submitted_on or self._today()
            rule = self._rule(policy, application.benefit_code)
            application.status = Status.APPROVED.value
            application.starts_on = first
            eligibility.start(
                uow,
                application.child_id,
                application.benefit_code,
                first,
                f"application {application.id} approved",
                at=self._now(),
                monthly_amount_fen=rule.amount_fen,
            )
            return self._save(uow, policy, application)

    # -- reading -------------------------------------------------------------------------------------------

    def list(
        self, *, status: str = "", child_id: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[ApplicationView], str]:
        """The town's applications (town staff) or the district's (district staff), the latest updated first, a
        page at a time (the applications and the next page's token)."""
        caller = require_role(*READER_ROLES)
        district_wide = caller.role in (Role.DISTRICT_OFFICER, Role.FINANCE_AUDITOR)
        policy = self.policy(caller.district)
        with self._database.unit_of_work(caller.tenant, district=caller.district if district_wide else "") as uow:
            query = select(ApplicationRecord)
            if district_wide:
                query = query.where(ApplicationRecord.tenant_id.startswith(caller.district, autoescape=True))
            else:
                query = query.where(ApplicationRecord.tenant_id == caller.tenant)
            if status:
                query = query.where(ApplicationRecord.status == status)
            if child_id:
                query = query.where(ApplicationRecord.child_id == child_id)
            rows, next_token = paging.one_page(
                uow.session,
                query,
                ApplicationRecord.updated_at,
                ApplicationRecord.id,
                newest_first=True,
                size=page_size,
                token=page_token,
            )
            granted = _granted(uow, rows)
            return [self._view(policy, row, granted) for row in rows], next_token

    def get(self, application_id: str) -> ApplicationView:
        caller = require_role(*READER_ROLES)
        district_wide = caller.role in (Role.DISTRICT_OFFICER, Role.FINANCE_AUDITOR)
        policy = self.policy(caller.district)
        with self._database.unit_of_work(caller.tenant, district=caller.district if district_wide else "") as uow:
            application = self._get(uow, application_id)
            return self._view(policy, application, _granted(uow, [application]))

    # -- helpers -------------------------------------------------------------------------------------------

    def _town(self, caller: Principal, town: str) -> UnitOfWork:
        if not town.startswith(caller.district) or len(town) != 9:
            raise PermissionDenied("not a town of the caller's district")
        # Town staff work in their town alone; the district officer reaches the town's rows to decide.
        district = caller.district if caller.role in DECIDER_ROLES else ""
        return self._database.unit_of_work(town, district=district)

    def _town_of(self, caller: Principal, application_id: str) -> str:
        with self._database.unit_of_work(caller.district, district=caller.district) as uow:
            town = uow.session.scalar(select(ApplicationRecord.tenant_id).where(ApplicationRecord.id == application_id))
        if town is None:
            raise NotFound("no such application")
        return town

    def _get(self, uow: UnitOfWork, application_id: str) -> ApplicationRecord:
        found = uow.session.get(ApplicationRecord, application_id)
        visible = found is not None and (
            found.tenant_id == uow.tenant or (bool(uow.district) and found.tenant_id[:6] == uow.district)
        )
        if found is None or not visible:
            raise NotFound("no such application")
        return found

    def policy(self, district: str) -> PolicyVersion | None:
        """The district's policy in effect today (read in the district's own unit of work)."""
        with self._database.unit_of_work(district, district=district) as uow:
            return policy_for(self._today(), load_policies(uow.session, district))

    def _rule(self, policy: PolicyVersion | None, benefit_code: str) -> BenefitRule:
        rule = policy.rule_by_code.get(benefit_code) if policy else None
        if rule is None:
            raise InvalidInput.single("benefit_code", f"{benefit_code} is not a benefit of the district's policy")
        return rule

    def _reject(self, application: ApplicationRecord, reason: str, caller: Principal) -> None:
        application.status = Status.REJECTED.value
        application.rejection_reason = f"{caller.user_id}: {rules.check_reason(reason)}"[:500]

    def _save(self, uow: UnitOfWork, policy: PolicyVersion | None, application: ApplicationRecord) -> ApplicationView:
        application.updated_at = self._now()
        uow.session.flush()
        view = self._view(policy, application, _granted(uow, [application]))
        uow.commit()
        return view

    def _today(self) -> date:
        return self._now().astimezone(CHINA_STANDARD_TIME).date()

    def _view(
        self, policy: PolicyVersion | None, record: ApplicationRecord, granted: dict[Granted, EntitlementRecord]
    ) -> ApplicationView:
        provided = _documents(record)
        rule = policy.rule_by_code.get(record.benefit_code) if policy else None
        entitlement = granted.get((record.tenant_id, record.child_id, record.benefit_code))
        review_due_on, review_due = None, False
        if record.status == Status.APPROVED and entitlement is not None and rule is not None:
            review_due_on = eligibility.review_due_on(entitlement, rule)
            review_due = entitlement.review_due_on is not None
        required = rule.documents if rule else ()
        due = record.town_due_on if record.status == Status.SUBMITTED else None
        if record.status == Status.TOWN_APPROVED:
            due = record.district_due_on
        return ApplicationView(
            application_id=record.id,
            tenant=record.tenant_id,
            child_id=record.child_id,
            benefit_code=record.benefit_code,
            status=record.status,
            documents=provided,
            missing_documents=tuple(rules.missing_documents(required, provided)),
            reason=record.reason,
            source=record.source,
            previous_id=record.previous_id or "",
            starts_on=record.starts_on,
            submitted_on=record.submitted_on,
            town_due_on=record.town_due_on,
            district_due_on=record.district_due_on,
            rejection_reason=record.rejection_reason,
            created_by=record.created_by,
            town_reviewed_by=record.town_reviewed_by,
            decided_by=record.decided_by,
            overdue=due is not None and self._today() > due,
            review_due_on=review_due_on,
            review_due=review_due,
        )


Granted = tuple[str, str, str]  # town, child, benefit


def _granted(uow: UnitOfWork, applications: Sequence[ApplicationRecord]) -> dict[Granted, EntitlementRecord]:
    """The open entitlements of the applications' children, by town, child and benefit (one query)."""
    children = {record.child_id for record in applications if record.status == Status.APPROVED}
    if not children:
        return {}
    rows = uow.session.scalars(
        select(EntitlementRecord).where(EntitlementRecord.child_id.in_(children), EntitlementRecord.ends_on.is_(None))
    )
    return {(row.tenant_id, row.child_id, row.benefit_code): row for row in rows}


def _set_account(uow: UnitOfWork, child_id: str, account_ref: str) -> None:
    """The payee account for the child's payments (the guardian's, 代发账户), when given."""
    account_ref = account_ref.strip()
    if not account_ref:
        return
    if not 4 <= len(account_ref) <= 64 or not account_ref.isprintable() or "," in account_ref:
        raise InvalidInput.single("account_ref", "4 to 64 printable characters, no commas")
    child = eligibility.beneficiary(uow, child_id)
    if child is not None:
        child.account_ref = account_ref


def _documents(record: ApplicationRecord) -> tuple[str, ...]:
    return tuple(json.loads(record.documents))


def _documents_json(documents: Sequence[str]) -> str:
    cleaned = sorted({name.strip()[:100] for name in documents if name.strip()})
    if len(cleaned) > 30:
        raise InvalidInput.single("documents", "at most 30 documents")
    return json.dumps(cleaned, ensure_ascii=False)
