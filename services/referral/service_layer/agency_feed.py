"""The agencies' change feed: every change of a referral is kept in its agency's feed with the change, in order,
and read by the agency's stream (entrypoints/agency_edge.py) a batch at a time after its cursor."""

from __future__ import annotations

from sqlalchemy import select, text

from platform_runtime.db import UnitOfWork
from platform_runtime.tenancy import require_role
from services.referral.adapters import messages
from services.referral.adapters.orm import FeedEntryRecord
from services.referral.service_layer.use_cases import AGENCY_ROLES, ReferralUseCases, agency_of, district_code
from services.referral.service_layer.views import FeedChange, ReferralView

FEED_BATCH = 200


class AgencyFeed(ReferralUseCases):
    def changes_for_agency(self, after: int, limit: int = FEED_BATCH) -> list[FeedChange]:
        """The changes of referrals addressed to the caller's agency in its district after cursor `after`, in
        order (the stream's next batch)."""
        caller = require_role(*AGENCY_ROLES)
        agency = agency_of(caller)
        with self._database.unit_of_work("", district=caller.district) as uow:
            rows = uow.session.execute(
                select(FeedEntryRecord.seq, FeedEntryRecord.gone, FeedEntryRecord.snapshot)
                .where(
                    FeedEntryRecord.tenant_id.startswith(district_code(caller.district), autoescape=True),
                    FeedEntryRecord.agency_code == agency,
                    FeedEntryRecord.seq > after,
                )
                .order_by(FeedEntryRecord.seq)
                .limit(limit)
            ).all()
        return [FeedChange(row.seq, row.gone, row.snapshot) for row in rows]

    def wait_for_changes(self, timeout: float) -> None:
        """Sleep until this process commits a change or `timeout` passes (changes committed by another process
        or by the consumer are found by the next read)."""
        with self._change_signal:
            self._change_signal.wait(timeout)

    def _changed(self) -> None:
        with self._change_signal:
            self._change_signal.notify_all()

    def _feed(self, uow: UnitOfWork, view: ReferralView, *, agency_code: str = "", gone: bool = False) -> None:
        _lock_feed(uow)
        uow.session.add(
            FeedEntryRecord(
                tenant_id=uow.tenant,
                agency_code=agency_code or view.agency_code,
                referral_id=view.referral_id,
                gone=gone,
                snapshot=messages.referral(view).SerializeToString(),
                at=self._now(),
            )
        )


def _lock_feed(uow: UnitOfWork) -> None:
    """Hold the district's feed lock to the commit, so the district's feed rows commit in `seq` order and a
    stream past one never finds a lower one later (SQLite: one writer at a time does the same)."""
    if uow.session.get_bind().dialect.name == "postgresql":
        uow.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"referral_feed:{uow.tenant[:6]}"}
        )
