"""From an event to its targets: the town's subscriptions for the event type, expanded into people (roles,
named staff, the duty officer of the day, an agency's contact points) and each person's channels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from platform_runtime.auth import Role
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.notify.adapters.orm import AgencyContactRecord, ContactRecord, DutyRotaRecord, SubscriptionRecord
from services.notify.domain import audience
from services.notify.domain.audience import AGENCY, DEFAULTS, DUTY_OFFICER, RESPONSIBLE, Person
from services.notify.domain.channels import Channel
from services.notify.domain.outbound import DEFAULT_LOCALE


@dataclass(frozen=True)
class Concerned:
    """What an event says about who it concerns."""

    users: tuple[str, ...] = ()  # the named staff's accounts
    fallback_roles: tuple[Role, ...] = ()  # the inboxes told when nobody is named
    agency_codes: tuple[str, ...] = ()
    # The district directory's contact points of those agencies: (agency code, channel, address).
    district_contacts: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class Target:
    recipient: str  # user:<id>, role:<role>, agency:<code>
    channel: Channel
    address: str = ""
    not_before: datetime | None = None
    locale: str = DEFAULT_LOCALE


def subscriptions(session: Session, tenant: str, event_type: str) -> dict[str, tuple[Channel, ...]]:
    """The town's subscriptions for the event type; the district's defaults while the town has none at all."""
    rows = session.scalars(
        select(SubscriptionRecord).where(
            SubscriptionRecord.tenant_id == tenant, SubscriptionRecord.event_type == event_type
        )
    ).all()
    if rows:
        return {row.recipient: audience.check_channels(row.channels.split(",")) for row in rows}
    if session.scalar(select(SubscriptionRecord.event_type).where(SubscriptionRecord.tenant_id == tenant).limit(1)):
        return {}
    return dict(DEFAULTS.get(event_type, {}))


def person(record: ContactRecord | None, user_id: str) -> Person:
    if record is None:
        return Person(user_id)
    return Person(
        user_id=record.user_id,
        phone=record.phone,
        email=record.email,
        channels_off=frozenset(filter(None, record.channels_off.split(","))),
        quiet_from=audience.parse_clock(record.quiet_from, "quiet_from"),
        quiet_until=audience.parse_clock(record.quiet_until, "quiet_until"),
        locale=record.locale or DEFAULT_LOCALE,
    )


def beijing_date(now: datetime) -> date:
    return now.astimezone(CHINA_STANDARD_TIME).date()


def duty_officer(session: Session, tenant: str, on: date) -> str:
    return (
        session.scalar(
            select(DutyRotaRecord.user_id).where(DutyRotaRecord.tenant_id == tenant, DutyRotaRecord.on_date == on)
        )
        or ""
    )


class Resolver:
    """Targets for one event in one town; people are read once each."""

    def __init__(self, session: Session, tenant: str, enabled: frozenset[Channel], now: datetime) -> None:
        self._session, self._tenant, self._enabled, self._now = session, tenant, enabled, now
        self._targets: dict[tuple[str, Channel], Target] = {}

    def resolve(self, event_type: str, concerned: Concerned) -> list[Target]:
        for recipient, channels in subscriptions(self._session, self._tenant, event_type).items():
            self.add(event_type, recipient, channels, concerned)
        return self.targets

    @property
    def targets(self) -> list[Target]:
        return list(self._targets.values())

    def add(self, event_type: str, recipient: str, channels: Iterable[Channel], concerned: Concerned) -> None:
        channels = tuple(channel for channel in channels if channel in self._enabled or channel is Channel.IN_APP)
        if recipient.startswith("role:"):
            self._role(event_type, Role(recipient.removeprefix("role:")), channels)
        elif recipient.startswith("user:"):
            self.people(event_type, [recipient.removeprefix("user:")], channels)
        elif recipient == RESPONSIBLE:
            if concerned.users:
                self.people(event_type, concerned.users, channels)
            else:
                for fallback in concerned.fallback_roles:
                    self._role(event_type, fallback, (Channel.IN_APP,) if Channel.IN_APP in channels else ())
        elif recipient == DUTY_OFFICER:
            officer = duty_officer(self._session, self._tenant, beijing_date(self._now))
            if officer:
                self.people(event_type, [officer], channels)
            else:  # nobody on the rota today: the town administrator answers
                self._role(event_type, Role.TOWN_ADMIN, channels)
        elif recipient == AGENCY and concerned.agency_codes:
            # The district's directory (shared by its towns) names an agency's contact points; a town's own,
            # kept from before, only reach an agency the directory gives none for.
            in_directory = {code for code, _, _ in concerned.district_contacts}
            own = self._session.scalars(
                select(AgencyContactRecord).where(
                    AgencyContactRecord.tenant_id == self._tenant,
                    AgencyContactRecord.agency_code.in_(set(concerned.agency_codes) - in_directory),
                )
            )
            points = [*concerned.district_contacts, *((r.agency_code, r.channel, r.address) for r in own)]
            for code, name, address in points:
                channel = Channel(name)
                if channel in channels:
                    self._put(Target(f"agency:{code}", channel, address))

    def people(self, event_type: str, user_ids: Iterable[str], channels: Iterable[Channel]) -> None:
        user_ids = list(dict.fromkeys(user_ids))
        found = {
            record.user_id: record
            for record in self._session.scalars(
                select(ContactRecord).where(
                    ContactRecord.tenant_id == self._tenant, ContactRecord.user_id.in_(user_ids)
                )
            )
        }
        for user_id in user_ids:
            self._person(event_type, person(found.get(user_id), user_id), channels)

    def _role(self, event_type: str, value: Role, channels: Iterable[Channel]) -> None:
        channels = tuple(channels)
        if Channel.IN_APP in channels:  # the role's shared inbox
            self._put(Target(audience.role(value), Channel.IN_APP))
        outside = tuple(channel for channel in channels if channel is not Channel.IN_APP)
        if not outside:
            return
        members = self._session.scalars(
            select(ContactRecord).where(ContactRecord.tenant_id == self._tenant, ContactRecord.role == value.value)
        )
        for record in members:
            self._person(event_type, person(record, record.user_id), outside)

    def _person(self, event_type: str, who: Person, channels: Iterable[Channel]) -> None:
        for channel in channels:
            if channel is Channel.IN_APP:  # their own inbox, in their language
                self._put(Target(audience.user(who.user_id), channel, locale=who.locale))
                continue
            address = who.address(channel)
            if address and who.wants(channel, event_type):
                not_before = who.not_before(self._now, event_type)
                self._put(Target(audience.user(who.user_id), channel, address, not_before, who.locale))

    def _put(self, target: Target) -> None:
        self._targets.setdefault((target.recipient, target.channel), target)
