"""What an agency (its officer or its own system) does with a referral addressed to it in its district: accept,
reject, return with a question, add progress, complete. A retry with the same idempotency key changes nothing."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from platform_runtime import errors
from platform_runtime.auth import Principal
from platform_runtime.tenancy import require_role
from services.referral.adapters.orm import AgencyCommandRecord
from services.referral.domain.lifecycle import AGENCY_ACTIONS, Action, action_text
from services.referral.service_layer.moves import ReferralMoves
from services.referral.service_layer.use_cases import AGENCY_ROLES, check_addressed, check_version, view_of
from services.referral.service_layer.views import ReferralView

IDEMPOTENCY_KEY_MAX = 100


class AgencyActionUseCases(ReferralMoves):
    def act_as_agency(
        self,
        action: Action,
        referral_id: str,
        text: str = "",
        *,
        expected_version: int | None = None,
        idempotency_key: str = "",
    ) -> ReferralView:
        """Accept, reject, return, add progress to or complete a referral addressed to the caller's agency.
        The same `idempotency_key` again (a retry) changes nothing and answers with the referral as it is."""
        caller = require_role(*AGENCY_ROLES)
        if action not in AGENCY_ACTIONS:
            raise errors.InvalidInput.single("action", f"an agency cannot {action.value} a referral")
        text = action_text(action, text)
        key = idempotency_key.strip()
        if len(key) > IDEMPOTENCY_KEY_MAX:
            raise errors.InvalidInput.single("idempotency_key", f"must be at most {IDEMPOTENCY_KEY_MAX} characters")
        tenant = self._tenant_for(caller, referral_id)
        try:
            return self._agency_change(caller, tenant, action, referral_id, text, expected_version, key)
        except IntegrityError:
            if not key:
                raise
            # The same key raced in on another connection and won: answer as for a retry.
            return self._agency_change(caller, tenant, action, referral_id, text, expected_version, key)

    def _agency_change(
        self,
        caller: Principal,
        tenant: str,
        action: Action,
        referral_id: str,
        text: str,
        expected_version: int | None,
        key: str,
    ) -> ReferralView:
        with self._database.unit_of_work(tenant) as uow:
            # Locked, so two concurrent changes cannot both move the same referral (the second sees the first).
            record = self._referral(uow, referral_id, for_update=True)
            check_addressed(caller, record)
            if key:
                done = uow.session.get(AgencyCommandRecord, (tenant, caller.agency, key))
                if done is not None:
                    if (done.referral_id, done.action) != (referral_id, action.value):
                        raise errors.InvalidInput.single("idempotency_key", "was already used for another change")
                    return view_of(record)
            check_version(record, expected_version)
            view = self._move(uow, record, action, caller.user_id, text)
            if key:
                uow.session.add(
                    AgencyCommandRecord(
                        tenant_id=tenant,
                        agency_code=caller.agency,
                        idempotency_key=key,
                        referral_id=referral_id,
                        action=action.value,
                        at=self._now(),
                    )
                )
            uow.commit()
        self._changed()
        return view
