"""Who is told of what, on which channels: the kinds of recipients a town subscribes to event types, the
district's defaults (copied into a town at onboarding), and the rules for one person's channels (their
preferences and quiet hours, never applied to a crisis)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.notify.domain.channels import Channel

# Recipients of a subscription.
RESPONSIBLE = "responsible"  # the staff a case or child names (user accounts); their role inbox when none
DUTY_OFFICER = "duty_officer"  # the town's duty officer of the day (值班表); the town administrator when none
AGENCY = "agency"  # the contact points of the agency an event concerns


def role(value: Role) -> str:
    return f"role:{value.value}"


def user(user_id: str) -> str:
    return f"user:{user_id}"


EVENT_TYPES = {
    "crisis_declared": "危机报告 crisis report",
    "deadline_breached": "办理超时 deadline missed",
    "crisis_deadline_breached": "危机报告办理超时 crisis deadline missed",
    "referral_opened": "新转介 new referral",
    "referral_sent": "转介已发送 referral sent to an agency",
    "referral_escalated": "转介督办 referral escalated",
    "visit_overdue": "随访逾期 follow-up visit overdue",
    "case_status_changed": "个案状态变更 case status changed",
    "case_assigned": "个案分配 case assigned",
    "entitlement_changed": "待遇变更 benefit entitlement changed",
}

ALL = (Channel.IN_APP, Channel.EMAIL, Channel.SMS)
IN_APP_EMAIL = (Channel.IN_APP, Channel.EMAIL)
AGENCY_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.WEBHOOK)

# The district's defaults; a town gets its own copy at onboarding and edits it.
DEFAULTS: dict[str, dict[str, tuple[Channel, ...]]] = {
    "crisis_declared": {role(Role.CASEWORKER): ALL, role(Role.TOWN_ADMIN): ALL, DUTY_OFFICER: ALL},
    "deadline_breached": {role(Role.CASEWORKER): (Channel.IN_APP,)},
    "crisis_deadline_breached": {role(Role.CASEWORKER): IN_APP_EMAIL, role(Role.TOWN_ADMIN): IN_APP_EMAIL},
    # The agency hears of a referral once, when it reaches it and it can act (ReferralSent); an opened referral
    # is the town's news only (both defaulting to the agency gave it every referral twice).
    "referral_opened": {role(Role.CASEWORKER): (Channel.IN_APP,)},
    "referral_sent": {AGENCY: AGENCY_CHANNELS},
    "referral_escalated": {AGENCY: AGENCY_CHANNELS, role(Role.LEADING_GROUP_OFFICE): (Channel.IN_APP,)},
    "visit_overdue": {RESPONSIBLE: IN_APP_EMAIL},
    "case_status_changed": {RESPONSIBLE: IN_APP_EMAIL},
    "case_assigned": {RESPONSIBLE: IN_APP_EMAIL},
    "entitlement_changed": {RESPONSIBLE: IN_APP_EMAIL},
}

# Quiet hours and preferences never hold back these.
ALWAYS_DELIVERED = frozenset({"crisis_declared", "crisis_deadline_breached", "crisis_escalation"})


def check_recipient(recipient: str) -> str:
    if recipient in (RESPONSIBLE, DUTY_OFFICER, AGENCY):
        return recipient
    kind, _, value = recipient.partition(":")
    if kind == "role" and value in {r.value for r in Role} - {Role.PUBLIC.value, Role.SYSTEM.value}:
        return recipient
    if kind == "user" and 0 < len(value) <= 100:
        return recipient
    raise errors.InvalidInput.single(
        "recipient", "recipient must be role:<role>, user:<id>, responsible, duty_officer or agency"
    )


def check_channels(names: list[str] | tuple[str, ...]) -> tuple[Channel, ...]:
    try:
        return tuple(dict.fromkeys(Channel(name) for name in names))
    except ValueError as error:
        raise errors.InvalidInput.single("channels", f"unknown channel: {error}") from error


def parse_clock(text: str, field: str) -> time | None:
    if not text:
        return None
    try:
        return time.fromisoformat(text)
    except ValueError as error:
        raise errors.InvalidInput.single(field, "a time of day is HH:MM") from error


@dataclass(frozen=True)
class Person:
    """A person as notify reaches them."""

    user_id: str
    phone: str = ""
    email: str = ""
    channels_off: frozenset[str] = frozenset()
    quiet_from: time | None = None
    quiet_until: time | None = None
    locale: str = "zh-CN"

    def address(self, channel: Channel) -> str:
        return {Channel.EMAIL: self.email, Channel.SMS: self.phone}.get(channel, "")

    def wants(self, channel: Channel, event_type: str) -> bool:
        return event_type in ALWAYS_DELIVERED or channel.value not in self.channels_off

    def not_before(self, now: datetime, event_type: str) -> datetime:
        """When a message may reach this person: now, or the end of their quiet hours (Beijing time)."""
        if event_type in ALWAYS_DELIVERED or self.quiet_from is None or self.quiet_until is None:
            return now
        local = now.astimezone(CHINA_STANDARD_TIME)
        start, end = self.quiet_from, self.quiet_until
        clock = local.time()
        quiet = start <= clock < end if start <= end else clock >= start or clock < end
        if not quiet:
            return now
        until = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if until <= local:
            until += timedelta(days=1)
        return until
