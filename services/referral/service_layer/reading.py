"""Reading referrals, each caller what is theirs: town staff their town's, the leading group office its
district's, an agency those addressed to it in its district; a page at a time, and one referral with its
history."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute

from platform_runtime import errors, paging
from platform_runtime.auth import Role
from platform_runtime.db import UnitOfWork
from platform_runtime.tenancy import require_role
from services.referral.adapters.orm import ReferralEntryRecord, ReferralRecord
from services.referral.domain.lifecycle import ReferralStatus
from services.referral.service_layer.use_cases import (
    AGENCY_ROLES,
    STAFF_ROLES,
    ReferralUseCases,
    agency_of,
    aware,
    check_addressed,
    in_district,
    limited_values,
    view_of,
)
from services.referral.service_layer.views import EntryView, ReferralDetail, ReferralPage, ReferralView

# "Due soon" in the agency's inbox: within a day of the limit.
DUE_SOON = timedelta(days=1)


class ReadingUseCases(ReferralUseCases):
    # -- township staff and the leading group office -------------------------------------------------------

    def list_referrals(
        self, child_id: str = "", report_id: str = "", *, page_size: int = 0, page_token: str = ""
    ) -> ReferralPage:
        """The town's referrals (of a child, or of a report), newest first, a page at a time."""
        caller = require_role(*STAFF_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(ReferralRecord).where(ReferralRecord.tenant_id == caller.tenant)
            if child_id:
                query = query.where(ReferralRecord.child_id == child_id)
            if report_id:
                query = query.where(ReferralRecord.report_id == report_id)
            return _one_page(uow, query, ReferralRecord.opened_at, newest_first=True, size=page_size, token=page_token)

    def get_referral(self, referral_id: str) -> ReferralView:
        return self.referral_detail(referral_id).referral

    def referral_detail(self, referral_id: str) -> ReferralDetail:
        """The referral and its history, for town staff, the leading group office or the agency it is addressed
        to (each sees only what is theirs)."""
        caller = require_role(*STAFF_ROLES, Role.LEADING_GROUP_OFFICE, *AGENCY_ROLES)
        tenant = self._tenant_for(caller, referral_id)
        with self._database.unit_of_work(tenant) as uow:
            record = self._referral(uow, referral_id)
            if caller.role in AGENCY_ROLES:
                check_addressed(caller, record)
            return ReferralDetail(view_of(record), _entries(uow, record.id))

    def list_district(
        self,
        *,
        status: str = "",
        agency_code: str = "",
        overdue_only: bool = False,
        escalated_only: bool = False,
        page_size: int = 0,
        page_token: str = "",
    ) -> ReferralPage:
        """The leading group office's view: every referral of the district, the nearest time limit first, a page
        at a time."""
        caller = require_role(Role.LEADING_GROUP_OFFICE)
        with self._database.unit_of_work("", district=caller.district) as uow:
            query = in_district(select(ReferralRecord), caller.district)
            if status:
                query = query.where(ReferralRecord.status == ReferralStatus(_status(status)).value)
            if agency_code:
                query = query.where(ReferralRecord.agency_code == agency_code)
            if overdue_only:
                query = query.where(ReferralRecord.status.in_(limited_values()), ReferralRecord.due_at <= self._now())
            if escalated_only:
                query = query.where(ReferralRecord.escalated_step > 0)
            return _one_page(uow, query, ReferralRecord.due_at, newest_first=False, size=page_size, token=page_token)

    # -- agencies ------------------------------------------------------------------------------------------

    def list_for_agency(
        self, *, status: str = "", due: str = "", page_size: int = 0, page_token: str = ""
    ) -> ReferralPage:
        """The referrals addressed to the caller's agency in its district, newest first, a page at a time.
        `due`: "" (any), "overdue" (past the limit) or "soon" (within a day of it)."""
        caller = require_role(*AGENCY_ROLES)
        agency = agency_of(caller)
        now = self._now()
        with self._database.unit_of_work("", district=caller.district) as uow:
            query = in_district(select(ReferralRecord), caller.district).where(ReferralRecord.agency_code == agency)
            if status:
                query = query.where(ReferralRecord.status == _status(status))
            if due == "overdue":
                query = query.where(ReferralRecord.status.in_(limited_values()), ReferralRecord.due_at <= now)
            elif due == "soon":
                query = query.where(
                    ReferralRecord.status.in_(limited_values()),
                    ReferralRecord.due_at > now,
                    ReferralRecord.due_at <= now + DUE_SOON,
                )
            elif due:
                raise errors.InvalidInput.single("due", "must be empty, 'overdue' or 'soon'")
            return _one_page(uow, query, ReferralRecord.opened_at, newest_first=True, size=page_size, token=page_token)


def _entries(uow: UnitOfWork, referral_id: str) -> list[EntryView]:
    rows = uow.session.scalars(
        select(ReferralEntryRecord)
        .where(ReferralEntryRecord.tenant_id == uow.tenant, ReferralEntryRecord.referral_id == referral_id)
        .order_by(ReferralEntryRecord.at, ReferralEntryRecord.version)
    )
    return [
        EntryView(row.action, aware(row.at), row.by, row.agency_code, row.text, row.status, row.version) for row in rows
    ]


def _status(value: str) -> str:
    try:
        return ReferralStatus(value).value
    except ValueError:
        raise errors.InvalidInput.single("status", f"must be one of {', '.join(ReferralStatus)}") from None


def _one_page(
    uow: UnitOfWork,
    query: Select[tuple[ReferralRecord]],
    key: InstrumentedAttribute[datetime],
    *,
    newest_first: bool,
    size: int,
    token: str,
) -> ReferralPage:
    """One page of `query` ordered by `key` then id, after the row `token` names (keyset paging)."""
    rows, next_token = paging.one_page(
        uow.session, query, key, ReferralRecord.id, newest_first=newest_first, size=size, token=token
    )
    return ReferralPage([view_of(row) for row in rows], next_token)
