"""The notify use cases: notifications from other services' events, and the caller's inbox.

Consumers call `referral_opened` / `crisis_declared` / `deadline_breached` / `visit_overdue` / `case_status_changed` /
`case_assigned` inside their unit of work (they commit). Every notification created is announced on `notify.delivery`,
in the same transaction, through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import or_, select

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.tenancy import require_role
from services.notify.adapters.messages import emit
from services.notify.adapters.orm import (
    CaseHolderRecord,
    DeliveryQueueRecord,
    DeliveryRecord,
    NotificationRecord,
    VisitReminderRecord,
)
from services.notify.domain import outbound, recipients, templates
from services.notify.domain.channels import Channel, DeliveryStatus
from services.notify.domain.events import NotificationDelivered
from services.notify.domain.templates import (
    AssignedCase,
    BreachedDeadline,
    ChangedCaseStatus,
    ChangedEntitlement,
    Content,
    DeclaredCrisis,
    EscalatedReferral,
    NamedStaff,
    OpenedReferral,
    OverdueVisit,
    Priority,
)
from services.notify.service_layer.directory import district_contacts
from services.notify.service_layer.recipients import Concerned, Resolver, Target
from services.notify.service_layer.town_templates import town_template
from services.notify.service_layer.views import NotificationView

DEFAULT_PAGE_SIZE = 50
LEADING_GROUP = "leading_group_office"  # ReferralEscalated.escalated_to when no agency is above
MAX_PAGE_SIZE = 200


class NotifyService:
    def __init__(
        self,
        database: Database,
        *,
        now: Callable[[], datetime] = utcnow,
        channels: frozenset[Channel] = frozenset(Channel),
        portal_url: str = "http://127.0.0.1:8080",
    ) -> None:
        self._database = database
        self._now = now
        self._channels = channels
        self._portal_url = portal_url.rstrip("/")
        # Called in the acknowledging transaction (the crisis escalation stops there).
        self.on_acknowledged: list[Callable[[UnitOfWork, NotificationRecord, str, datetime], None]] = []
        # Called when a crisis is declared (the escalation chain opens); returns the SMS reply code.
        self.on_crisis: list[Callable[[UnitOfWork, str, str, Content], str]] = []

    @property
    def database(self) -> Database:
        return self._database

    @property
    def channels(self) -> frozenset[Channel]:
        return self._channels

    # -- events from other services ------------------------------------------------------------------------

    def referral_opened(self, uow: UnitOfWork, event_id: str, referral: OpenedReferral) -> list[NotificationView]:
        concerned = Concerned(agency_codes=(referral.agency_code,))
        return self._tell(uow, event_id, "referral_opened", templates.referral_opened(referral), concerned)

    def referral_sent(self, uow: UnitOfWork, event_id: str, referral: OpenedReferral) -> list[NotificationView]:
        concerned = Concerned(agency_codes=(referral.agency_code,))
        return self._tell(uow, event_id, "referral_sent", templates.referral_sent(referral), concerned)

    def referral_escalated(
        self, uow: UnitOfWork, event_id: str, escalated: EscalatedReferral
    ) -> list[NotificationView]:
        """The agency and, when the step goes to another agency (its supervising level), that one too."""
        agencies = (escalated.referral.agency_code, escalated.escalated_to)
        concerned = Concerned(agency_codes=tuple(a for a in dict.fromkeys(agencies) if a and a != LEADING_GROUP))
        return self._tell(uow, event_id, "referral_escalated", templates.referral_escalated(escalated), concerned)

    def entitlement_changed(self, uow: UnitOfWork, event_id: str, change: ChangedEntitlement) -> list[NotificationView]:
        """The child's caseworker, as the registry's case events last named them; the caseworkers' inbox
        when nobody is named."""
        holder = uow.session.get(CaseHolderRecord, (uow.tenant, change.child_id))
        users = (holder.social_worker_user_id,) if holder and holder.social_worker_user_id else ()
        concerned = Concerned(users, (Role.CASEWORKER,))
        return self._tell(uow, event_id, "entitlement_changed", templates.entitlement_changed(change), concerned)

    def _hold(self, uow: UnitOfWork, child_id: str, staff: NamedStaff) -> None:
        """Remember who holds the child's case (for events that name only the child)."""
        holder = uow.session.get(CaseHolderRecord, (uow.tenant, child_id))
        if holder is None:
            holder = CaseHolderRecord(tenant_id=uow.tenant, child_id=child_id)
            uow.session.add(holder)
        holder.social_worker_user_id = staff.social_worker_user_id
        holder.responsible_user_id = staff.responsible_user_id
        holder.child_director_user_id = staff.child_director_user_id
        holder.updated_at = self._now()

    def crisis_declared(self, uow: UnitOfWork, event_id: str, crisis: DeclaredCrisis) -> list[NotificationView]:
        content = templates.crisis_declared(crisis)
        code = ""
        for hook in self.on_crisis:
            code = hook(uow, event_id, crisis.report_id, content)
        return self._tell(uow, event_id, "crisis_declared", content, Concerned(), reply_code=code)

    def deadline_breached(self, uow: UnitOfWork, event_id: str, breach: BreachedDeadline) -> list[NotificationView]:
        event_type = "crisis_deadline_breached" if breach.crisis else "deadline_breached"
        return self._tell(uow, event_id, event_type, templates.deadline_breached(breach), Concerned())

    def visit_overdue(self, uow: UnitOfWork, event_id: str, visit: OverdueVisit) -> list[NotificationView]:
        """One reminder per child and due date: a due date raised again (a new event) reminds nobody again.
        Two replicas racing on the same visit collide on the reminder's key; the loser's retry finds it."""
        self._hold(uow, visit.child_id, visit.staff)
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
        concerned = Concerned(visit.staff.user_ids(), recipients.holders(visit.staff))
        return self._tell(uow, event_id, "visit_overdue", templates.visit_overdue(visit), concerned)

    def case_status_changed(self, uow: UnitOfWork, event_id: str, change: ChangedCaseStatus) -> list[NotificationView]:
        self._hold(uow, change.child_id, change.staff)
        if not recipients.status_change_is_told(change.from_status, change.to_status):
            return []
        concerned = Concerned(change.staff.user_ids(), recipients.holders(change.staff))
        return self._tell(uow, event_id, "case_status_changed", templates.case_status_changed(change), concerned)

    def case_assigned(self, uow: UnitOfWork, event_id: str, assigned: AssignedCase) -> list[NotificationView]:
        self._hold(uow, assigned.child_id, assigned.staff)
        roles = recipients.newly_named(assigned.staff, assigned.previous)
        if not roles:
            return []
        concerned = Concerned(assigned.staff.user_ids(assigned.staff.named_anew(assigned.previous)), roles)
        return self._tell(uow, event_id, "case_assigned", templates.case_assigned(assigned), concerned)

    def _tell(
        self,
        uow: UnitOfWork,
        event_id: str,
        event_type: str,
        content: Content,
        concerned: Concerned,
        *,
        reply_code: str = "",
    ) -> list[NotificationView]:
        now = self._now()
        if concerned.agency_codes:
            concerned = replace(
                concerned, district_contacts=district_contacts(self._database, uow.tenant, concerned.agency_codes)
            )
        targets = Resolver(uow.session, uow.tenant, self._channels, now).resolve(event_type, concerned)
        return self.deliver(uow, event_id, event_type, content, targets, now, reply_code=reply_code)

    def deliver(
        self,
        uow: UnitOfWork,
        event_id: str,
        event_type: str,
        content: Content,
        targets: Iterable[Target],
        now: datetime,
        *,
        reply_code: str = "",
    ) -> list[NotificationView]:
        """One delivery per target, unless this event already gave one to the same recipient on the same
        channel. In-app ones are in the inbox at once; the others wait in the queue for their channel's worker."""
        done = set(
            uow.session.execute(
                select(DeliveryRecord.recipient, DeliveryRecord.channel).where(
                    DeliveryRecord.tenant_id == uow.tenant, DeliveryRecord.event_id == event_id
                )
            ).tuples()
        )
        facts = {
            "link": self.link(content.subject_type, content.subject_id),
            "code": reply_code,
            "town": uow.tenant,
            **content.facts,  # a receipt gives its own link (the public lookup) and no town
        }
        inbox_facts = {**content.inbox_variables(), **facts}
        rendered: dict[tuple[str, str], outbound.Rendered] = {}

        def worded(name: str, locale: str, variables: dict[str, str]) -> outbound.Rendered:
            """The town's template (or the district's) of `name`, in `locale`, once per event."""
            if (name, locale) not in rendered:
                rendered[name, locale] = town_template(uow, name, locale).render(variables)
            return rendered[name, locale]

        created = []
        for target in targets:
            if (target.recipient, target.channel.value) in done:
                continue
            done.add((target.recipient, target.channel.value))
            if target.channel is Channel.IN_APP:
                inbox = worded(outbound.INBOX + event_type, target.locale, inbox_facts)
                title, text = inbox.subject, inbox.text
            else:
                outgoing = worded(event_type, target.locale, facts)
                title, text = outgoing.subject, outgoing.text
            delivery = DeliveryRecord(
                id=new_id(),
                tenant_id=uow.tenant,
                event_id=event_id,
                recipient=target.recipient,
                channel=target.channel.value,
                address=target.address,
                notification_id="",
                event_type=event_type,
                priority=content.priority.value,
                subject_type=content.subject_type,
                subject_id=content.subject_id,
                title=title,
                text=text,
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                last_error="",
                provider_id="",
                created_at=now,
                not_before=target.not_before or now,
            )
            uow.session.add(delivery)
            if target.channel is Channel.IN_APP:
                created.append(self._in_app(uow, delivery, content, text, now))
            else:
                uow.session.add(
                    DeliveryQueueRecord(
                        delivery_id=delivery.id,
                        tenant_id=uow.tenant,
                        channel=delivery.channel,
                        due_at=delivery.not_before,
                    )
                )
        return created

    def _in_app(
        self, uow: UnitOfWork, delivery: DeliveryRecord, content: Content, body: str, now: datetime
    ) -> NotificationView:
        kind, _, who = delivery.recipient.partition(":")
        record = NotificationRecord(
            id=new_id(),
            tenant_id=uow.tenant,
            recipient_role=who if kind == "role" else "",
            recipient_user=who if kind == "user" else "",
            title=delivery.title,
            body=body,
            priority=content.priority.value,
            subject_type=content.subject_type,
            subject_id=content.subject_id,
            created_at=now,
        )
        uow.session.add(record)
        delivery.notification_id = record.id
        delivery.status = DeliveryStatus.SENT.value
        delivery.attempts = 1
        delivery.sent_at = now
        view = _view(record)
        emit(
            uow,
            NotificationDelivered(
                delivery_id=delivery.id,
                recipient=delivery.recipient,
                channel=Channel.IN_APP,
                status=DeliveryStatus.SENT,
                attempts=1,
                notification_id=record.id,
                title=record.title,
                body=body,
                priority=content.priority,
                subject_type=content.subject_type,
                subject_id=content.subject_id,
                created_at=now,
            ),
        )
        return view

    def link(self, subject_type: str, subject_id: str) -> str:
        return self.public_link(f"/notifications/about/{subject_type}/{subject_id}")

    def public_link(self, path: str) -> str:
        return f"{self._portal_url}{path}"

    def delivery_of(self, uow: UnitOfWork, event_id: str, recipient: str, channel: Channel) -> str:
        """The id of the delivery an event gave a recipient on a channel ("" if none)."""
        found = uow.session.scalar(
            select(DeliveryRecord.id).where(
                DeliveryRecord.tenant_id == uow.tenant,
                DeliveryRecord.event_id == event_id,
                DeliveryRecord.recipient == recipient,
                DeliveryRecord.channel == channel.value,
            )
        )
        return found or ""

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
            record = _addressed_to_caller(uow, caller, notification_id)
            if record.read_at is None:  # marking twice keeps the first reader
                record.read_at = self._now()
                record.read_by = caller.user_id
                uow.commit()
            return _view(record)

    def acknowledge(self, notification_id: str) -> NotificationView:
        """ "I am on it": read and acknowledged (the first one stands); a crisis alert stops escalating."""
        caller = require_role(*recipients.INBOX_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            record = _addressed_to_caller(uow, caller, notification_id)
            now = self._now()
            if record.acknowledged_at is None:
                record.acknowledged_at = now
                record.acknowledged_by = caller.user_id
                record.read_at = record.read_at or now
                record.read_by = record.read_by or caller.user_id
                for hook in self.on_acknowledged:
                    hook(uow, record, caller.user_id, now)
                uow.commit()
            return _view(record)


def _addressed_to_caller(uow: UnitOfWork, caller: Principal, notification_id: str) -> NotificationRecord:
    record = uow.session.get(NotificationRecord, notification_id)
    if record is None or record.tenant_id != caller.tenant:
        raise errors.NotFound("no such notification in this town")
    if not recipients.addressed_to(
        record.recipient_role, record.recipient_user, role=caller.role.value, user_id=caller.user_id
    ):
        raise errors.PermissionDenied("this notification is addressed to someone else")
    return record


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
        acknowledged_at=record.acknowledged_at,
        acknowledged_by=record.acknowledged_by or "",
    )
