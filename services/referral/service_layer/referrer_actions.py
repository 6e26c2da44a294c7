"""What the referrer does with a referral: town staff answer a returned one, cancel or reassign one of their
town's; the leading group office reassigns any of the district's (the ones escalated to it)."""

from __future__ import annotations

from datetime import timedelta

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.db import UnitOfWork
from platform_runtime.tenancy import require_role
from services.referral.adapters.orm import ReferralRecord
from services.referral.domain import events
from services.referral.domain.lifecycle import REFERRER_ACTIONS, Action, ReferralStatus, action_text, advance
from services.referral.service_layer.moves import ReferralMoves
from services.referral.service_layer.use_cases import STAFF_ROLES, check_version, view_of
from services.referral.service_layer.views import ReferralView


class ReferrerActionUseCases(ReferralMoves):
    def act_as_referrer(
        self,
        action: Action,
        referral_id: str,
        text: str = "",
        *,
        expected_version: int | None = None,
        agency_code: str = "",
    ) -> ReferralView:
        """Town staff answer a returned referral, cancel or reassign one of their town's referrals; the leading
        group office reassigns any referral of the district (the ones escalated to it)."""
        caller = require_role(*STAFF_ROLES, Role.LEADING_GROUP_OFFICE)
        if action not in REFERRER_ACTIONS:
            raise errors.InvalidInput.single("action", f"the referrer cannot {action.value} a referral")
        if caller.role is Role.LEADING_GROUP_OFFICE and action is not Action.REASSIGN:
            raise errors.PermissionDenied("the leading group office reassigns; the town answers and cancels")
        text = action_text(action, text)
        if action is Action.REASSIGN and agency_code not in self.config.directory(caller.district):
            raise errors.InvalidInput.single("agency_code", "is not a unit of the district's directory")
        tenant = self._tenant_for(caller, referral_id)
        with self._database.unit_of_work(tenant) as uow:
            record = self._referral(uow, referral_id, for_update=True)
            check_version(record, expected_version)
            if action is Action.REASSIGN:
                view = self._reassign(uow, record, caller.user_id, agency_code, text)
            else:
                view = self._move(uow, record, action, caller.user_id, text)
            uow.commit()
        self._changed()
        return view

    def _reassign(self, uow: UnitOfWork, record: ReferralRecord, by: str, agency_code: str, text: str) -> ReferralView:
        """Address the referral to another unit, which has its full time to accept it; it leaves the previous
        unit's feed and enters the new one's."""
        previous = record.agency_code
        if agency_code == previous:
            raise errors.InvalidInput.single("agency_code", "the referral is already addressed to this unit")
        if agency_code in self._agencies_of(uow, record.report_id):
            raise errors.Conflict("this report already has a referral to that unit")
        advance(ReferralStatus(record.status), Action.REASSIGN)
        record.agency_code = agency_code
        record.agency_name = self.config.directory(record.tenant_id[:6])[agency_code].name_zh
        record.accepted_at = record.accepted_by = None
        record.reroute_to = ""
        now = self._now()
        record.status = ReferralStatus.SENT.value
        record.sent_at = record.deadline_from = record.updated_at = now
        record.due_at = now + timedelta(seconds=record.accept_within_seconds)
        record.escalated_step = 0
        record.last_note = text
        uow.session.flush()
        view = view_of(record)
        self._entry(uow, record, Action.REASSIGN.value, by, text or f"from {previous}")
        self._emit(uow, events.ReferralReassigned(view, previous_agency_code=previous))
        self._emit(uow, events.ReferralSent(view))
        self._feed(uow, view, agency_code=previous, gone=True)
        self._feed(uow, view)
        return view
