"""The notify use cases: notifications from other services' events, and the caller's inbox.

Consumers call `referral_opened` / `crisis_declared` / `deadline_breached` / `visit_overdue` / `case_status_changed` /
`case_assigned` inside their unit of work (they commit). Every notification created is announced on `notify.delivery`,
in the same transaction, through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from minorprot.notify.v1 import events_pb2
from sqlalchemy import or_, select

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.events import PendingEvent
from platform_runtime.tenancy import require_role
from platform_runtime.topics import NOTIFY_DELIVERY
from services.notify.adapters import messages
from services.notify.adapters.orm import NotificationRecord, VisitReminderRecord
from services.notify.domain import recipients, templates
from services.notify.domain.templates import (
    AssignedCase,
    BreachedDeadline,
    ChangedCaseStatus,
    Content,
    DeclaredCrisis,
    OpenedReferral,
    OverdueVisit,
    Priority,
)
from services.notify.service_layer.views import NotificationView

IN_APP = "in_app"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class NotifyService:
    def __init__(self, database: Database, *, now: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self._now = now

    # -- events from other services ------------------------------------------------------------------------

    def referral_opened(self, uow: UnitOfWork, referral: OpenedReferral) -> list[NotificationView]:
        return self._notify(uow, templates.referral_opened(referral), recipients.REFERRAL_OPENED_ROLES)

    def crisis_declared(self, uow: UnitOfWork, crisis: DeclaredCrisis) -> list[NotificationView]:
        return self._notify(uow, templates.crisis_declared(crisis), recipients.CRISIS_DECLARED_ROLES)

    def deadline_breached(self, uow: UnitOfWork, breach: BreachedDeadline) -> list[NotificationView]:
        roles = recipients.CRISIS_DEADLINE_BREACHED_ROLES if breach.crisis else recipients.DEADLINE_BREACHED_ROLES
        return self._notify(uow, templates.deadline_breached(breach), roles)

    def visit_overdue(self, uow: UnitOfWork, visit: OverdueVisit) -> list[NotificationView]:
        """One reminder per child and due date: a due date raised again (a new event) reminds nobody again.
        Two replicas racing on the same visit collide on the reminder's key; the loser's retry finds it."""
        if uow.session.get(VisitReminderRecord, (uow.tenant, visit.child_id, visit.due_on)) is not None:
            return []
        uow.session.add(
            VisitReminderRecord(
                tenant_id=uow.tenant,
                child_id=visit.child_id,
                due_on=visit.due_on,
                case_id=visit.case_id,
                reminded_at=self._now(),
            )
        )
        return self._notify(uow, templates.visit_overdue(visit), recipients.holders(visit.staff))

    def case_status_changed(self, uow: UnitOfWork, change: ChangedCaseStatus) -> list[NotificationView]:
        if not recipients.status_change_is_told(change.from_status, change.to_status):
            return []
        return self._notify(uow, templates.case_status_changed(change), recipients.holders(change.staff))

    def case_assigned(self, uow: UnitOfWork, assigned: AssignedCase) -> list[NotificationView]:
        roles = recipients.newly_named(assigned.staff, assigned.previous)
        return self._notify(uow, templates.case_assigned(assigned), roles) if roles else []

    def _notify(self, uow: UnitOfWork, content: Content, roles: Iterable[Role]) -> list[NotificationView]:
        created = []
        for role in roles:
            record = NotificationRecord(
                id=new_id(),
                tenant_id=uow.tenant,
                recipient_role=role.value,
                recipient_user="",
                title=content.title,
                body=content.body,
                priority=content.priority.value,
                subject_type=content.subject_type,
                subject_id=content.subject_id,
                created_at=self._now(),
            )
            uow.session.add(record)
            view = _view(record)
            uow.publish(
                PendingEvent(
                    NOTIFY_DELIVERY,
                    uow.tenant,
                    "notification",
                    record.id,
                    events_pb2.NotificationDelivered(notification=messages.notification(view), channel=IN_APP),
                )
            )
            created.append(view)
        return created

    # -- the caller's inbox --------------------------------------------------------------------------------

    def list_inbox(self, *, unread_only: bool = False, page_size: int = 0) -> list[NotificationView]:
        caller = require_role(*recipients.INBOX_ROLES)
        size = min(max(page_size or DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(NotificationRecord).where(
                NotificationRecord.tenant_id == caller.tenant,
                or_(
                    NotificationRecord.recipient_role == caller.role.value,
                    NotificationRecord.recipient_user == caller.user_id,
                ),
            )
            if unread_only:
                query = query.where(NotificationRecord.read_at.is_(None))
            rows = uow.session.scalars(
                query.order_by(NotificationRecord.created_at.desc(), NotificationRecord.id.desc()).limit(size)
            )
            return [_view(row) for row in rows]

    def mark_read(self, notification_id: str) -> NotificationView:
        caller = require_role(*recipients.INBOX_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            record = uow.session.get(NotificationRecord, notification_id)
            if record is None or record.tenant_id != caller.tenant:
                raise errors.NotFound("no such notification in this town")
            if not recipients.addressed_to(
                record.recipient_role, record.recipient_user, role=caller.role.value, user_id=caller.user_id
            ):
                raise errors.PermissionDenied("this notification is addressed to someone else")
            if record.read_at is None:  # marking twice keeps the first reader
                record.read_at = self._now()
                record.read_by = caller.user_id
                uow.commit()
            return _view(record)


def _view(record: NotificationRecord) -> NotificationView:
    return NotificationView(
        notification_id=record.id,
        tenant=record.tenant_id,
        recipient_role=record.recipient_role,
        recipient_user=record.recipient_user,
        title=record.title,
        body=record.body,
        priority=Priority(record.priority),
        subject_type=record.subject_type,
        subject_id=record.subject_id,
        created_at=record.created_at,
        read_at=record.read_at,
    )
