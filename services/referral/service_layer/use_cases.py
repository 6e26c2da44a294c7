"""The base the referral service is composed over (services.py): what its parts share (the database, routing's
configuration, the clock, the signal that wakes the agencies' streams), how they find a referral and its town,
write its history and announce its events, and who may see which referral."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Select, select

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from services.referral.adapters import messages
from services.referral.adapters.orm import ReferralEntryRecord, ReferralRecord
from services.referral.domain.events import ReferralEvent
from services.referral.domain.lifecycle import ReferralStatus, limited
from services.referral.domain.routing import RoutingRule
from services.referral.service_layer.routing_config import RoutingConfig
from services.referral.service_layer.views import ReferralView

STAFF_ROLES = (Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_OFFICER)
AGENCY_ROLES = (Role.AGENCY_OFFICER, Role.AGENCY_SYSTEM)


class ReferralUseCases:
    """What the parts of ReferralService share."""

    def __init__(
        self,
        database: Database,
        *,
        rules: Iterable[RoutingRule] | None = None,
        now: Callable[[], datetime] = utcnow,
        config: RoutingConfig | None = None,
    ) -> None:
        self._database = database
        # Fixed rules (tests, benchmarks) instead of the district's versions.
        self._rules = None if rules is None else tuple(rules)
        self._now = now
        self.config = config or RoutingConfig(database, now=now)
        self._change_signal = threading.Condition()

    def _tenant_for(self, caller: Principal, referral_id: str) -> str:
        """The town whose unit of work holds the referral: the caller's own town for town staff; any town of the
        caller's district for an agency or the leading group office (another district's: NotFound)."""
        if caller.role not in AGENCY_ROLES and caller.role is not Role.LEADING_GROUP_OFFICE:
            return caller.tenant
        with self._database.unit_of_work("", district=caller.district) as uow:
            tenant = uow.session.scalar(
                in_district(select(ReferralRecord.tenant_id), caller.district).where(ReferralRecord.id == referral_id)
            )
        if tenant is None:
            raise errors.NotFound("no such referral in this district")
        return tenant

    @staticmethod
    def _referral(uow: UnitOfWork, referral_id: str, *, for_update: bool = False) -> ReferralRecord:
        record = uow.session.get(ReferralRecord, referral_id, with_for_update=for_update)
        # Another tenant's referral is reported as absent: its existence is not disclosed.
        if record is None or record.tenant_id != uow.tenant:
            raise errors.NotFound("no such referral in this town")
        return record

    @staticmethod
    def _agencies_of(uow: UnitOfWork, report_id: str) -> set[str]:
        return set(
            uow.session.scalars(
                select(ReferralRecord.agency_code).where(
                    ReferralRecord.tenant_id == uow.tenant, ReferralRecord.report_id == report_id
                )
            )
        )

    def _entry(self, uow: UnitOfWork, record: ReferralRecord, action: str, by: str, text: str) -> None:
        """One step of the referral's history, as the referral is after it."""
        uow.session.add(
            ReferralEntryRecord(
                id=new_id(),
                tenant_id=record.tenant_id,
                referral_id=record.id,
                action=action,
                at=self._now(),
                by=by,
                agency_code=record.agency_code,
                text=text,
                status=record.status,
                version=record.version,
            )
        )

    @staticmethod
    def _emit(uow: UnitOfWork, event: ReferralEvent) -> None:
        """Queue a domain event (adapters/messages.py maps it to its message, topic and key)."""
        uow.publish(messages.pending(uow.tenant, event))


def agency_of(caller: Principal) -> str:
    if not caller.agency:
        raise errors.PermissionDenied("this token names no agency")
    return caller.agency


def check_addressed(caller: Principal, record: ReferralRecord) -> None:
    if agency_of(caller) != record.agency_code:
        raise errors.PermissionDenied("this referral is addressed to another agency")


def check_version(record: ReferralRecord, expected_version: int | None) -> None:
    if expected_version is not None and record.version != expected_version:
        raise errors.ConcurrentUpdate(
            f"the referral was changed since you read it (version {expected_version}, now {record.version}): "
            "reload it and try again"
        )


Q = TypeVar("Q", Select[tuple[ReferralRecord]], Select[tuple[str]])


def in_district(query: Q, district: str) -> Q:
    # Row-level security keeps PostgreSQL to the district; SQLite has none, so the query says it too.
    return query.where(ReferralRecord.tenant_id.startswith(district_code(district), autoescape=True))


def district_code(district: str) -> str:
    """The caller's district, checked: it prefixes the codes of its towns."""
    if len(district) != 6 or not district.isdigit():
        raise errors.PermissionDenied("this token names no district")
    return district


def limited_values() -> list[str]:
    """The statuses whose time limit runs."""
    return [status.value for status in ReferralStatus if limited(status)]


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite gives back naive UTC


def view_of(record: ReferralRecord) -> ReferralView:
    return ReferralView(
        referral_id=record.id,
        tenant=record.tenant_id,
        report_id=record.report_id,
        child_id=record.child_id or "",
        agency_code=record.agency_code,
        agency_name=record.agency_name,
        status=ReferralStatus(record.status),
        reason=record.reason,
        rule_code=record.rule_code,
        urgent=record.urgent,
        opened_at=aware(record.opened_at),
        due_at=aware(record.due_at),
        version=record.version,
        escalated_step=record.escalated_step or 0,
        last_note=record.last_note or "",
        outcome=record.outcome or "",
        updated_at=aware(record.updated_at) if record.updated_at else None,
        case_facts=dict(record.case_facts or {}),
    )
