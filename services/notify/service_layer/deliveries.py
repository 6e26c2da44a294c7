"""Sending what waits in the queue, channel by channel, and the operators' view of deliveries.

A channel's worker claims due deliveries of its channel only (a lease, so a replica or a restart picks up a
claim that was never finished), sends each outside any transaction, then records the outcome with its
NotificationDelivered event in one transaction. A message whose send succeeded but whose outcome was not
recorded (a crash in between) is sent again after the lease: at least once, never lost. While the database is
away the outcome of a message that has left is kept and recorded once it is back, so an outage of the database
alone sends nothing twice (every message carries its delivery id for the receiver to drop a repeat).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.db import Database, UnitOfWork, utcnow
from platform_runtime.tenancy import require_role
from services.notify.adapters.messages import emit
from services.notify.adapters.orm import DeliveryQueueRecord, DeliveryRecord, detached
from services.notify.domain.channels import Channel, DeliveryError, DeliveryStatus, Outgoing, Sender, retry_delay
from services.notify.domain.events import NotificationDelivered
from services.notify.domain.outbound import RECEIPT
from services.notify.domain.templates import Priority

log = logging.getLogger(__name__)

# A claim a crashed worker never finished is sent after this long (DELIVERY_LEASE_SECONDS); it must outlast a
# claimed batch's sends and the tries to record their outcomes (RECORD_RETRY_SECONDS).
LEASE = timedelta(minutes=2)
CLAIM_BATCH = 20
OPERATORS = (Role.TOWN_ADMIN,)
MAX_LISTED = 200
# Waits between tries to record a sent message's outcome while the database is away: about 90 s, inside the lease.
RECORD_RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0)

# Told that the database is away (the error), and asked to wait so many seconds; True when the process stops.
DatabaseAway = Callable[[Exception, float], bool]


def _sleep(_error: Exception, seconds: float) -> bool:
    time.sleep(seconds)
    return False


class DeliveryService:
    def __init__(self, database: Database, *, now: Callable[[], datetime] = utcnow, lease: timedelta = LEASE) -> None:
        self._database = database
        self._now = now
        self._lease = lease

    # -- the channel workers -------------------------------------------------------------------------------

    def deliver_due(
        self, channel: Channel, sender: Sender, limit: int = CLAIM_BATCH, database_away: DatabaseAway = _sleep
    ) -> int:
        """Send the channel's due deliveries (at most `limit`); returns how many were tried. `database_away` is
        told when the outcome of a message sent cannot be recorded yet, and waits before the next try."""
        claimed = self._claim(channel, limit)
        for tenant, delivery_id in claimed:
            outgoing = self._outgoing(tenant, delivery_id)
            if outgoing is None:
                continue
            try:
                provider_id = sender.send(outgoing)
            except DeliveryError as error:
                log.warning("%s delivery %s in %s failed: %s", channel, delivery_id, tenant, error)
                self._record(tenant, delivery_id, error=error)
            else:
                self._record_sent(tenant, delivery_id, provider_id, database_away)
        return len(claimed)

    def _record_sent(self, tenant: str, delivery_id: str, provider_id: str, database_away: DatabaseAway) -> None:
        """The message has left: record it, or the lease running out would send it again."""
        for delay in RECORD_RETRY_SECONDS:
            try:
                self._record(tenant, delivery_id, provider_id=provider_id)
                return
            except (OperationalError, InterfaceError) as error:
                log.warning(
                    "delivery %s in %s was sent but cannot be recorded yet (database away); trying again in %.1fs",
                    delivery_id,
                    tenant,
                    delay,
                )
                if database_away(error, delay):
                    raise  # stopping: the lease sends it again after the restart (at least once)
        self._record(tenant, delivery_id, provider_id=provider_id)

    def _claim(self, channel: Channel, limit: int) -> list[tuple[str, str]]:
        now = self._now()
        with self._database.platform_session() as session:
            rows = session.scalars(
                select(DeliveryQueueRecord)
                .where(DeliveryQueueRecord.channel == channel.value, DeliveryQueueRecord.due_at <= now)
                .order_by(DeliveryQueueRecord.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            claimed = [(row.tenant_id, row.delivery_id) for row in rows]
            for row in rows:
                row.due_at = now + self._lease
            session.commit()
        return claimed

    def _outgoing(self, tenant: str, delivery_id: str) -> Outgoing | None:
        with self._database.unit_of_work(tenant) as uow:
            record = uow.session.get(DeliveryRecord, delivery_id)
            if record is None or record.status != DeliveryStatus.PENDING.value:
                _dequeue(uow, delivery_id)  # sent or given up by someone else meanwhile
                uow.commit()
                return None
            return Outgoing(
                delivery_id=record.id,
                tenant=tenant,
                channel=Channel(record.channel),
                address=record.address,
                title=record.title,
                text=record.text,
                event_type=record.event_type,
                subject_type=record.subject_type,
                subject_id=record.subject_id,
                priority=record.priority,
                recipient=record.recipient,
            )

    def _record(
        self, tenant: str, delivery_id: str, *, provider_id: str = "", error: DeliveryError | None = None
    ) -> None:
        now = self._now()
        with self._database.unit_of_work(tenant) as uow:
            record = uow.session.get(DeliveryRecord, delivery_id)
            if record is None or record.status != DeliveryStatus.PENDING.value:
                return
            record.attempts += 1
            if error is None:
                record.status, record.sent_at, record.provider_id, record.last_error = "sent", now, provider_id, ""
            else:
                record.last_error = str(error)[:1000]
                delay = None if error.permanent else retry_delay(record.attempts)
                if delay is not None:
                    queued = uow.session.get(DeliveryQueueRecord, delivery_id)
                    if queued is not None:
                        queued.due_at = now + delay
                    uow.commit()
                    return
                record.status = DeliveryStatus.FAILED.value
            if record.event_type == RECEIPT:
                # A reporter's contact (an anonymous one's too) is kept only until the receipt is done with, and
                # the receipt number is theirs alone: the row keeps what operators need (status, attempts).
                record.address, record.text = "", ""
            _dequeue(uow, delivery_id)
            emit(uow, _delivered(record))
            uow.commit()

    # -- operators -----------------------------------------------------------------------------------------

    def list_deliveries(
        self, *, status: str = "", subject_type: str = "", subject_id: str = "", page_size: int = 0
    ) -> list[DeliveryRecord]:
        caller = require_role(*OPERATORS)
        if status and status not in {s.value for s in DeliveryStatus}:
            raise errors.InvalidInput.single("status", "status is pending, sent or failed")
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(DeliveryRecord).where(DeliveryRecord.tenant_id == caller.tenant)
            if status:
                query = query.where(DeliveryRecord.status == status)
            if subject_type or subject_id:
                query = query.where(
                    DeliveryRecord.subject_type == subject_type, DeliveryRecord.subject_id == subject_id
                )
            size = min(max(page_size or 50, 1), MAX_LISTED)
            return detached(
                uow,
                uow.session.scalars(query.order_by(DeliveryRecord.created_at.desc(), DeliveryRecord.id).limit(size)),
            )

    def resend(self, delivery_id: str) -> DeliveryRecord:
        """A delivery that failed for good goes back to its channel's queue with a fresh count of attempts."""
        caller = require_role(*OPERATORS)
        with self._database.unit_of_work(caller.tenant) as uow:
            record = uow.session.get(DeliveryRecord, delivery_id)
            if record is None or record.tenant_id != caller.tenant:
                raise errors.NotFound("no such delivery in this town")
            if record.status != DeliveryStatus.FAILED.value:
                raise errors.Conflict("only a delivery that failed can be sent again")
            if record.event_type == RECEIPT:
                raise errors.Conflict("a reporter's receipt cannot be sent again: their contact was erased")
            now = self._now()
            record.status, record.attempts, record.last_error, record.not_before = "pending", 0, "", now
            uow.session.add(
                DeliveryQueueRecord(delivery_id=record.id, tenant_id=caller.tenant, channel=record.channel, due_at=now)
            )
            uow.commit()
            return record


def _dequeue(uow: UnitOfWork, delivery_id: str) -> None:
    queued = uow.session.get(DeliveryQueueRecord, delivery_id)
    if queued is not None:
        uow.session.delete(queued)


def _delivered(record: DeliveryRecord) -> NotificationDelivered:
    return NotificationDelivered(
        delivery_id=record.id,
        recipient=record.recipient,
        channel=Channel(record.channel),
        status=DeliveryStatus(record.status),
        attempts=record.attempts,
        notification_id=record.notification_id,
        title=record.title,
        body="",  # the inbox item's text: a message sent on another channel goes out without it
        priority=Priority(record.priority),
        subject_type=record.subject_type,
        subject_id=record.subject_id,
        created_at=record.created_at,
    )
