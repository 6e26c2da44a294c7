"""Crisis alerts that must be acknowledged, and their escalation up the town's chain.

A crisis is declared with step 1 (the duty officer of the day, on every channel) and a durable timer. Each
time the timer runs out unacknowledged, the next level is told on every channel of each person, the step is
recorded (and announced, CrisisEscalated, for the report's timeline) and the timer moves on, all in one
transaction: a notify restarted at any point neither loses a step nor takes one twice (a step's key is
(crisis, step) and its messages' key is (event id, recipient, channel)). Acknowledging (in the portal, by
replying to the SMS with the code, or over gRPC) stops the chain.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from platform_runtime import errors, paging
from platform_runtime.auth import Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.tenancy import require_role
from services.notify.adapters.messages import emit
from services.notify.adapters.orm import (
    ContactRecord,
    CrisisRecord,
    CrisisStepRecord,
    DeliveryRecord,
    EscalationTimerRecord,
    NotificationRecord,
    SmsCodeRecord,
    detached,
)
from services.notify.domain import audience, templates
from services.notify.domain.audience import DUTY_OFFICER
from services.notify.domain.channels import Channel
from services.notify.domain.events import CrisisAcknowledged, CrisisEscalated
from services.notify.domain.outbound import RECEIPT
from services.notify.domain.recipients import INBOX_ROLES
from services.notify.domain.templates import Content, Priority
from services.notify.service_layer.directory import crisis_limit
from services.notify.service_layer.recipients import Concerned, Resolver
from services.notify.service_layer.services import NotifyService

# The chain, in order: step n tells LEVELS[n - 1].
LEVELS = (
    ("duty_officer", DUTY_OFFICER),
    ("town_admin", audience.role(Role.TOWN_ADMIN)),
    ("district_civil_affairs", audience.role(Role.DISTRICT_OFFICER)),
    ("leading_group_office", audience.role(Role.LEADING_GROUP_OFFICE)),
)
EVERY_CHANNEL = (Channel.IN_APP, Channel.EMAIL, Channel.SMS)
CODE = re.compile(r"\b(\d{6})\b")
TIMERS_PER_ROUND = 50
TIMER_LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class CrisisView:
    crisis: CrisisRecord
    steps: list[CrisisStepRecord]
    deliveries: list[DeliveryRecord]
    names: dict[str, str]  # user:<id> -> the person's name, for the people with contact details

    def name(self, recipient: str) -> str:
        return self.names.get(recipient, recipient)


def _event_id(crisis_id: str, step: int, alert_event_id: str) -> str:
    # Step 1 shares the alert's event id: the duty officer told by both gets each message once.
    return alert_event_id if step == 1 else f"{crisis_id}:step{step}"


class CrisisService:
    def __init__(
        self,
        database: Database,
        notify: NotifyService,
        *,
        limit: timedelta,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._notify = notify
        self._limit = limit
        self._now = now
        notify.on_acknowledged.append(self._acknowledged_in_inbox)
        notify.on_crisis.append(self.declared)

    # -- declared (from the consumer, inside its unit of work) --------------------------------------------

    def declared(self, uow: UnitOfWork, event_id: str, report_id: str, content: Content) -> str:
        """Open the crisis's chain (step 1 and its timer); returns the code its SMS can be replied with."""
        existing = uow.session.scalar(
            select(CrisisRecord).where(CrisisRecord.tenant_id == uow.tenant, CrisisRecord.report_id == report_id)
        )
        if existing is not None:
            return existing.code  # the same crisis declared again: one chain
        now = self._now()
        limit = crisis_limit(uow, self._limit)
        crisis = CrisisRecord(
            id=new_id(),
            tenant_id=uow.tenant,
            report_id=report_id,
            code=self._free_code(uow),
            title=content.title,
            actions=content.facts.get("actions", "")[:300],
            declared_at=now,
            limit_seconds=int(limit.total_seconds()),
            step=0,
            acknowledged_by="",
            acknowledged_via="",
        )
        uow.session.add(crisis)
        uow.session.add(SmsCodeRecord(code=crisis.code, tenant_id=uow.tenant, crisis_id=crisis.id))
        self._step(uow, crisis, content, event_id, now)
        uow.session.add(EscalationTimerRecord(crisis_id=crisis.id, tenant_id=uow.tenant, due_at=now + limit))
        return crisis.code

    def _free_code(self, uow: UnitOfWork) -> str:
        while True:
            code = f"{secrets.randbelow(900_000) + 100_000}"
            if uow.session.get(SmsCodeRecord, code) is None:
                return code

    def _step(
        self, uow: UnitOfWork, crisis: CrisisRecord, content: Content, alert_event_id: str, now: datetime
    ) -> None:
        crisis.step += 1
        level, recipient = LEVELS[crisis.step - 1]
        resolver = Resolver(uow.session, uow.tenant, self._notify.channels, now)
        # Step 1 is the alert itself (its words); later steps say it went unacknowledged.
        event_type = "crisis_declared" if crisis.step == 1 else "crisis_escalation"
        resolver.add(event_type, recipient, EVERY_CHANNEL, Concerned())
        targets = resolver.targets
        self._notify.deliver(
            uow,
            _event_id(crisis.id, crisis.step, alert_event_id),
            event_type,
            content,
            targets,
            now,
            reply_code=crisis.code,
        )
        told = sorted({target.recipient for target in targets})
        names = _names(uow, told)
        uow.session.add(
            CrisisStepRecord(
                tenant_id=uow.tenant,
                crisis_id=crisis.id,
                step=crisis.step,
                level=level,
                recipients=",".join(told),
                told_at=now,
            )
        )
        emit(
            uow,
            CrisisEscalated(
                crisis_id=crisis.id,
                report_id=crisis.report_id,
                step=crisis.step,
                level=level,
                recipients=tuple(told),
                recipient_names=tuple(names.get(recipient, "") for recipient in told),
                at=now,
            ),
        )

    # -- the timer worker ----------------------------------------------------------------------------------

    def escalate_due(self) -> int:
        """Take the next step of every crisis whose time ran out unacknowledged; returns how many.

        Due timers are claimed first (moved a lease ahead, skipping those another replica holds); a notify
        stopped between the claim and the step finds the timer again when the lease runs out."""
        now = self._now()
        with self._database.platform_session() as session:
            due = session.scalars(
                select(EscalationTimerRecord)
                .where(EscalationTimerRecord.due_at <= now)
                .order_by(EscalationTimerRecord.due_at)
                .limit(TIMERS_PER_ROUND)
                .with_for_update(skip_locked=True)
            ).all()
            claimed = [(timer.tenant_id, timer.crisis_id) for timer in due]
            for timer in due:
                timer.due_at = now + TIMER_LEASE
            session.commit()
        return sum(self._escalate(tenant, crisis_id, now) for tenant, crisis_id in claimed)

    def _escalate(self, tenant: str, crisis_id: str, now: datetime) -> int:
        with self._database.unit_of_work(tenant) as uow:
            crisis = uow.session.get(CrisisRecord, crisis_id)
            timer = uow.session.get(EscalationTimerRecord, crisis_id)
            if crisis is None or timer is None:
                return 0
            if crisis.acknowledged_at is not None or crisis.step >= len(LEVELS):
                uow.session.delete(timer)
                uow.commit()
                return 0
            content = templates.crisis_escalation(crisis.report_id, crisis.actions)
            self._step(uow, crisis, content, "", now)
            if crisis.step >= len(LEVELS):
                uow.session.delete(timer)
            else:
                timer.due_at = now + timedelta(seconds=crisis.limit_seconds)
            uow.commit()
            return 1

    # -- acknowledging -------------------------------------------------------------------------------------

    def acknowledge(self, crisis_id: str = "", code: str = "") -> CrisisView:
        caller = require_role(*INBOX_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(CrisisRecord).where(CrisisRecord.tenant_id == caller.tenant)
            if crisis_id:
                query = query.where(CrisisRecord.id == crisis_id)
            elif code:
                query = query.where(CrisisRecord.code == code)
            else:
                raise errors.InvalidInput.single("crisis_id", "give the crisis id or its code")
            crisis = uow.session.scalar(query)
            if crisis is None:
                raise errors.NotFound("no such crisis in this town")
            # People acknowledge in the portal; systems (an agency's, the platform's) over the API.
            via = "api" if caller.role in (Role.AGENCY_SYSTEM, Role.SYSTEM) else "portal"
            self._acknowledge(uow, crisis, caller.user_id, via, self._now())
            uow.commit()
        return self._view_of(caller.tenant, crisis.id)

    def _acknowledged_in_inbox(
        self, uow: UnitOfWork, notification: NotificationRecord, user_id: str, now: datetime
    ) -> None:
        if notification.priority != Priority.CRISIS.value or notification.subject_type != "report":
            return
        crisis = uow.session.scalar(
            select(CrisisRecord).where(
                CrisisRecord.tenant_id == uow.tenant, CrisisRecord.report_id == notification.subject_id
            )
        )
        if crisis is not None:
            self._acknowledge(uow, crisis, user_id, "portal", now)

    def sms_reply(self, from_phone: str, text: str) -> str:
        """A reply to a crisis SMS: its code acknowledges the crisis when it comes from a phone of that town
        that was told of it. Returns the crisis id, or "" when the reply acknowledges nothing."""
        require_role(Role.SYSTEM)
        found = CODE.search(text or "")
        if not found:
            return ""
        with self._database.platform_session() as session:
            index = session.get(SmsCodeRecord, found.group(1))
            tenant, crisis_id = (index.tenant_id, index.crisis_id) if index else ("", "")
        if not tenant:
            return ""
        phone = re.sub(r"[^\d+]", "", from_phone)
        with self._database.unit_of_work(tenant) as uow:
            crisis = uow.session.get(CrisisRecord, crisis_id)
            told = uow.session.scalar(
                select(DeliveryRecord.recipient).where(
                    DeliveryRecord.tenant_id == tenant,
                    DeliveryRecord.subject_id == (crisis.report_id if crisis else ""),
                    DeliveryRecord.channel == Channel.SMS.value,
                    DeliveryRecord.address == phone,
                    DeliveryRecord.event_type != RECEIPT,  # a reporter's receipt acknowledges nothing
                )
            )
            if crisis is None or not told:
                return ""
            self._acknowledge(uow, crisis, told.removeprefix("user:"), "sms", self._now())
            uow.commit()
            return crisis.id

    def _acknowledge(self, uow: UnitOfWork, crisis: CrisisRecord, user_id: str, via: str, now: datetime) -> None:
        if crisis.acknowledged_at is not None:
            return  # the first acknowledgement stands
        crisis.acknowledged_at, crisis.acknowledged_by, crisis.acknowledged_via = now, user_id, via
        who = audience.user(user_id)
        timer = uow.session.get(EscalationTimerRecord, crisis.id)
        if timer is not None:
            uow.session.delete(timer)
        code = uow.session.get(SmsCodeRecord, crisis.code)
        if code is not None:
            uow.session.delete(code)
        emit(
            uow,
            CrisisAcknowledged(
                crisis_id=crisis.id,
                report_id=crisis.report_id,
                acknowledged_by=user_id,
                acknowledged_by_name=_names(uow, [who]).get(who, ""),
                via=via,
                at=now,
            ),
        )

    # -- reading -------------------------------------------------------------------------------------------

    def list_crises(
        self, *, open_only: bool = False, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[CrisisView], str]:
        """The town's crises, the latest declared first, a page at a time (the crises and the next page's token)."""
        caller = require_role(*INBOX_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(CrisisRecord).where(CrisisRecord.tenant_id == caller.tenant)
            if open_only:
                query = query.where(CrisisRecord.acknowledged_at.is_(None))
            rows, next_token = paging.one_page(
                uow.session,
                query,
                CrisisRecord.declared_at,
                CrisisRecord.id,
                newest_first=True,
                size=page_size,
                token=page_token,
            )
            ids = [row.id for row in rows]
        return [self._view_of(caller.tenant, crisis_id) for crisis_id in ids], next_token

    def _view_of(self, tenant: str, crisis_id: str) -> CrisisView:
        with self._database.unit_of_work(tenant) as uow:
            crisis = uow.session.get(CrisisRecord, crisis_id)
            if crisis is None:
                raise errors.NotFound("no such crisis in this town")
            steps = uow.session.scalars(
                select(CrisisStepRecord).where(CrisisStepRecord.crisis_id == crisis_id).order_by(CrisisStepRecord.step)
            )
            deliveries = uow.session.scalars(
                select(DeliveryRecord)
                .where(
                    DeliveryRecord.tenant_id == tenant,
                    DeliveryRecord.subject_type == "report",
                    DeliveryRecord.subject_id == crisis.report_id,
                )
                .order_by(DeliveryRecord.created_at, DeliveryRecord.recipient)
            )
            found_steps, found_deliveries = list(steps), list(deliveries)
            names = {
                f"user:{row.user_id}": row.display_name
                for row in uow.session.scalars(select(ContactRecord).where(ContactRecord.tenant_id == tenant))
            }
            detached(uow, [])
            return CrisisView(crisis, found_steps, found_deliveries, names)


def _names(uow: UnitOfWork, recipients: list[str]) -> dict[str, str]:
    """user:<id> -> the person's name, for people with contact details (the report's timeline shows names)."""
    user_ids = [recipient.removeprefix("user:") for recipient in recipients if recipient.startswith("user:")]
    if not user_ids:
        return {}
    rows = uow.session.scalars(
        select(ContactRecord).where(ContactRecord.tenant_id == uow.tenant, ContactRecord.user_id.in_(user_ids))
    )
    return {audience.user(row.user_id): row.display_name for row in rows}
