"""Escalating referrals past their time limit, one step each at most, each step once (the periodic worker,
entrypoints/escalation.py, calls these for every town with referrals)."""

from __future__ import annotations

from sqlalchemy import select

from services.referral.adapters.orm import ReferralRecord, ReferralTownRecord
from services.referral.domain.lifecycle import AWAITING_AGENCY, LAST_STEP, ReferralStatus, escalation_due
from services.referral.service_layer.moves import ReferralMoves
from services.referral.service_layer.use_cases import aware, limited_values

ESCALATIONS_PER_ROUND = 200


class OverdueUseCases(ReferralMoves):
    def towns_with_referrals(self) -> list[str]:
        with self._database.platform_session() as session:
            return list(session.scalars(select(ReferralTownRecord.tenant_id).order_by(ReferralTownRecord.tenant_id)))

    def escalate_overdue(self, tenant: str) -> int:
        """Escalate the town's referrals past their limit, one step each at most, each step once: the step is
        stored with the event in one transaction, so a restart or a second replica never raises it again
        (replicas skip the rows another one holds). Returns how many were escalated."""
        now = self._now()
        with self._database.unit_of_work(tenant) as uow:
            candidates = uow.session.scalars(
                select(ReferralRecord)
                .where(
                    ReferralRecord.tenant_id == tenant,
                    ReferralRecord.status.in_(limited_values()),
                    ReferralRecord.due_at <= now,
                    ReferralRecord.escalated_step < LAST_STEP,
                )
                .order_by(ReferralRecord.due_at)
                .limit(ESCALATIONS_PER_ROUND)
                .with_for_update(skip_locked=True)
            ).all()
            raised = 0
            for record in candidates:
                step = escalation_due(
                    ReferralStatus(record.status),
                    aware(record.deadline_from or record.opened_at),
                    aware(record.due_at),
                    record.escalated_step,
                    now,
                )
                if step:
                    what = "accepted" if ReferralStatus(record.status) in AWAITING_AGENCY else "completed"
                    self._escalate(uow, record, step, f"not {what} by {aware(record.due_at).isoformat()}")
                    raised += 1
            uow.commit()
        if raised:
            self._changed()
        return raised
