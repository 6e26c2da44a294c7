"""What a town keeps about being told: each person's contact details and preferences, the subscriptions
(event type -> recipients -> channels), the duty rota and the agencies' contact points."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.db import Database, UnitOfWork, utcnow
from platform_runtime.tenancy import require_role
from services.notify.adapters.orm import (
    AgencyContactRecord,
    ContactRecord,
    DutyRotaRecord,
    SubscriptionRecord,
    TownSettingsRecord,
    detached,
)
from services.notify.domain import audience
from services.notify.domain.audience import DEFAULTS, EVENT_TYPES
from services.notify.domain.channels import Channel
from services.notify.domain.outbound import DEFAULT_LOCALE, LOCALES
from services.notify.domain.recipients import INBOX_ROLES
from services.notify.service_layer.recipients import subscriptions

PHONE = re.compile(r"^\+?[0-9]{6,15}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
AGENCY_CODE = re.compile(r"^[a-z0-9_]{1,40}$")
ADMINS = (Role.TOWN_ADMIN,)
ROTA_DAYS_MAX = 62


def copy_defaults(uow: UnitOfWork) -> None:
    """The district's default subscriptions become the town's own (at onboarding, or before its first edit)."""
    has_any = uow.session.scalar(
        select(SubscriptionRecord.event_type).where(SubscriptionRecord.tenant_id == uow.tenant).limit(1)
    )
    if has_any:
        return
    for event_type, recipients in DEFAULTS.items():
        for recipient, channels in recipients.items():
            uow.session.add(
                SubscriptionRecord(
                    tenant_id=uow.tenant,
                    event_type=event_type,
                    recipient=recipient,
                    channels=",".join(channels),
                )
            )


MAX_ACK_MINUTES = 24 * 60


def crisis_limit(uow: UnitOfWork, default: timedelta) -> timedelta:
    """The town's limit for acknowledging a crisis alert, or the deployment's."""
    own = uow.session.get(TownSettingsRecord, uow.tenant)
    return timedelta(minutes=own.crisis_ack_minutes) if own is not None else default


def district_contacts(database: Database, town: str, agency_codes: tuple[str, ...]) -> tuple[tuple[str, str, str], ...]:
    """The agencies' contact points in the directory of the town's district (read as the district)."""
    district = town[:6]
    with database.unit_of_work(district, district=district) as directory:
        rows = directory.session.scalars(
            select(AgencyContactRecord).where(
                AgencyContactRecord.tenant_id == district, AgencyContactRecord.agency_code.in_(agency_codes)
            )
        )
        return tuple((row.agency_code, row.channel, row.address) for row in rows)


def directory_agency_saved(uow: UnitOfWork, agency_code: str, points: dict[Channel, str]) -> None:
    """A unit of the district's directory was saved (the unit of work is the district's): its contact points
    replace the ones kept for it."""
    uow.session.execute(
        delete(AgencyContactRecord).where(
            AgencyContactRecord.tenant_id == uow.tenant, AgencyContactRecord.agency_code == agency_code
        )
    )
    for channel, address in points.items():
        if address:
            uow.session.add(
                AgencyContactRecord(
                    tenant_id=uow.tenant, agency_code=agency_code, channel=channel.value, address=address
                )
            )


class DirectoryService:
    def __init__(
        self,
        database: Database,
        *,
        now: Callable[[], datetime] = utcnow,
        default_ack_limit: timedelta = timedelta(minutes=15),
    ) -> None:
        self._database = database
        self._now = now
        self._default_ack_limit = default_ack_limit

    # -- the town's settings ------------------------------------------------------------------------------

    def town_settings(self) -> tuple[int, int]:
        """(the town's crisis acknowledgement limit, the default), in minutes."""
        caller = require_role(*INBOX_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            limit = crisis_limit(uow, self._default_ack_limit)
        return int(limit.total_seconds() // 60), int(self._default_ack_limit.total_seconds() // 60)

    def set_town_settings(self, crisis_ack_minutes: int) -> tuple[int, int]:
        caller = require_role(*ADMINS)
        if not 0 <= crisis_ack_minutes <= MAX_ACK_MINUTES:
            raise errors.InvalidInput.single(
                "crisis_ack_minutes", f"between 1 and {MAX_ACK_MINUTES} minutes (0: the default)"
            )
        with self._database.unit_of_work(caller.tenant) as uow:
            own = uow.session.get(TownSettingsRecord, caller.tenant)
            if crisis_ack_minutes == 0:
                if own is not None:
                    uow.session.delete(own)
            else:
                if own is None:
                    own = TownSettingsRecord(tenant_id=caller.tenant)
                    uow.session.add(own)
                own.crisis_ack_minutes, own.updated_by, own.updated_at = crisis_ack_minutes, caller.user_id, self._now()
            uow.commit()
        return self.town_settings()

    # -- the caller's own contact details ------------------------------------------------------------------

    def my_contact(self) -> ContactRecord:
        caller = require_role(*INBOX_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            found = uow.session.get(ContactRecord, (caller.tenant, caller.user_id))
            if found is not None:
                uow.session.expunge(found)
                return found
            return ContactRecord(
                tenant_id=caller.tenant,
                user_id=caller.user_id,
                display_name=caller.display_name,
                role=caller.role.value,
                phone="",
                email="",
                channels_off="",
                quiet_from="",
                quiet_until="",
                locale=DEFAULT_LOCALE,
                updated_at=self._now(),
            )

    def update_my_contact(
        self,
        *,
        phone: str,
        email: str,
        channels_off: list[str],
        quiet_from: str,
        quiet_until: str,
        locale: str = DEFAULT_LOCALE,
    ) -> ContactRecord:
        caller = require_role(*INBOX_ROLES)
        problems = []
        phone, email = phone.strip().replace(" ", ""), email.strip()
        if phone and not PHONE.match(phone):
            problems.append(errors.FieldViolation("phone", "a phone number is digits, optionally after +"))
        if email and not EMAIL.match(email):
            problems.append(errors.FieldViolation("email", "not an e-mail address"))
        if bool(quiet_from) != bool(quiet_until):
            problems.append(errors.FieldViolation("quiet_until", "quiet hours need a start and an end"))
        if (locale or DEFAULT_LOCALE) not in LOCALES:
            problems.append(errors.FieldViolation("locale", f"locale is one of {', '.join(LOCALES)}"))
        if problems:
            raise errors.InvalidInput(problems)
        audience.parse_clock(quiet_from, "quiet_from")
        audience.parse_clock(quiet_until, "quiet_until")
        off = [channel for channel in audience.check_channels(channels_off) if channel is not Channel.IN_APP]
        with self._database.unit_of_work(caller.tenant) as uow:
            record = uow.session.get(ContactRecord, (caller.tenant, caller.user_id))
            if record is None:
                record = ContactRecord(tenant_id=caller.tenant, user_id=caller.user_id)
                uow.session.add(record)
            record.display_name = caller.display_name
            record.role = caller.role.value
            record.phone, record.email = phone, email
            record.channels_off = ",".join(off)
            record.quiet_from, record.quiet_until = quiet_from, quiet_until
            record.locale = locale or DEFAULT_LOCALE
            record.updated_at = self._now()
            uow.commit()
            return record

    # -- subscriptions -------------------------------------------------------------------------------------

    def list_subscriptions(self) -> list[tuple[str, str, tuple[Channel, ...]]]:
        caller = require_role(*INBOX_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            return [
                (event_type, recipient, channels)
                for event_type in EVENT_TYPES
                for recipient, channels in subscriptions(uow.session, caller.tenant, event_type).items()
            ]

    def set_subscription(
        self, event_type: str, recipient: str, channels: list[str]
    ) -> list[tuple[str, str, tuple[Channel, ...]]]:
        caller = require_role(*ADMINS)
        if event_type not in EVENT_TYPES:
            raise errors.InvalidInput.single("event_type", f"unknown event type; one of {', '.join(EVENT_TYPES)}")
        recipient = audience.check_recipient(recipient)
        chosen = audience.check_channels(channels)
        with self._database.unit_of_work(caller.tenant) as uow:
            copy_defaults(uow)
            uow.session.flush()
            uow.session.execute(
                delete(SubscriptionRecord).where(
                    SubscriptionRecord.tenant_id == caller.tenant,
                    SubscriptionRecord.event_type == event_type,
                    SubscriptionRecord.recipient == recipient,
                )
            )
            if chosen:
                uow.session.add(
                    SubscriptionRecord(
                        tenant_id=caller.tenant, event_type=event_type, recipient=recipient, channels=",".join(chosen)
                    )
                )
            uow.commit()
        return self.list_subscriptions()

    # -- the duty rota -------------------------------------------------------------------------------------

    def duty_rota(self, start: date, days: int) -> list[tuple[date, str, str]]:
        caller = require_role(*INBOX_ROLES)
        days = min(max(days or 14, 1), ROTA_DAYS_MAX)
        with self._database.unit_of_work(caller.tenant) as uow:
            rows = {
                row.on_date: row.user_id
                for row in uow.session.scalars(
                    select(DutyRotaRecord).where(
                        DutyRotaRecord.tenant_id == caller.tenant,
                        DutyRotaRecord.on_date >= start,
                        DutyRotaRecord.on_date < start + timedelta(days=days),
                    )
                )
            }
            names = {
                record.user_id: record.display_name
                for record in uow.session.scalars(
                    select(ContactRecord).where(
                        ContactRecord.tenant_id == caller.tenant, ContactRecord.user_id.in_(set(rows.values()))
                    )
                )
            }
        return [
            (day, rows.get(day, ""), names.get(rows.get(day, ""), ""))
            for day in (start + timedelta(days=n) for n in range(days))
        ]

    def set_duty_officer(self, on: date, user_id: str) -> tuple[date, str, str]:
        caller = require_role(*ADMINS)
        user_id = user_id.strip()
        with self._database.unit_of_work(caller.tenant) as uow:
            contact = uow.session.get(ContactRecord, (caller.tenant, user_id)) if user_id else None
            if user_id and contact is None:
                raise errors.InvalidInput.single(
                    "user_id", "no such person in this town's contacts (they set their contact details first)"
                )
            existing = uow.session.get(DutyRotaRecord, (caller.tenant, on))
            if not user_id:
                if existing is not None:
                    uow.session.delete(existing)
            elif existing is None:
                uow.session.add(DutyRotaRecord(tenant_id=caller.tenant, on_date=on, user_id=user_id))
            else:
                existing.user_id = user_id
            uow.commit()
            return on, user_id, contact.display_name if contact else ""

    def people(self) -> list[ContactRecord]:
        """The town's people with contact details (whom a rota or a subscription can name)."""
        caller = require_role(*ADMINS)
        with self._database.unit_of_work(caller.tenant) as uow:
            return detached(
                uow,
                uow.session.scalars(
                    select(ContactRecord)
                    .where(ContactRecord.tenant_id == caller.tenant)
                    .order_by(ContactRecord.role, ContactRecord.display_name)
                ),
            )

    # -- agencies' contact points --------------------------------------------------------------------------

    def agency_contacts(self) -> list[AgencyContactRecord]:
        caller = require_role(*ADMINS)
        with self._database.unit_of_work(caller.tenant) as uow:
            return detached(
                uow,
                uow.session.scalars(
                    select(AgencyContactRecord)
                    .where(AgencyContactRecord.tenant_id == caller.tenant)
                    .order_by(AgencyContactRecord.agency_code, AgencyContactRecord.channel)
                ),
            )

    def set_agency_contact(self, agency_code: str, channel: str, address: str) -> list[AgencyContactRecord]:
        caller = require_role(*ADMINS)
        if not AGENCY_CODE.match(agency_code):
            raise errors.InvalidInput.single("agency_code", "an agency code is lower-case letters, digits and _")
        (chosen,) = audience.check_channels([channel]) or (Channel.IN_APP,)
        address = address.strip()
        valid = {
            Channel.EMAIL: EMAIL.match(address),
            Channel.SMS: PHONE.match(address),
            # TLS to an agency's system; plain http only to this machine (a developer's or a test's receiver).
            Channel.WEBHOOK: address.startswith(("https://", "http://127.0.0.1", "http://localhost")),
        }
        if chosen not in valid:
            raise errors.InvalidInput.single("channel", "an agency is reached by email, sms or webhook")
        if address and not valid[chosen]:
            raise errors.InvalidInput.single("address", f"not a valid {chosen.value} address")
        with self._database.unit_of_work(caller.tenant) as uow:
            existing = uow.session.get(AgencyContactRecord, (caller.tenant, agency_code, chosen.value))
            if existing is not None:
                uow.session.delete(existing)
                uow.session.flush()
            if address:
                uow.session.add(
                    AgencyContactRecord(
                        tenant_id=caller.tenant, agency_code=agency_code, channel=chosen.value, address=address
                    )
                )
            uow.commit()
        return self.agency_contacts()
