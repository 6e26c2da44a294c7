"""The referral use cases. Each runs in a unit of work scoped to one tenant; events go through the outbox.

Reports become referrals by the routing rules (consumers call `open_referrals` / `link_child` inside the
consumer's unit of work). Township staff read referrals; an agency moves only referrals addressed to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from google.protobuf.message import Message
from minorprot.referral.v1 import events_pb2
from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.events import PendingEvent
from platform_runtime.tenancy import require_role
from platform_runtime.topics import REFERRAL_REFERRAL
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.referral.adapters import messages
from services.referral.adapters.orm import ReferralRecord, ReportLinkRecord
from services.referral.domain.agencies import DIRECTORY
from services.referral.domain.lifecycle import (
    NOTE_MAX_CHARS,
    OUTCOME_MAX_CHARS,
    ReferralStatus,
    advance,
    clean_text,
)
from services.referral.domain.routing import ROUTING_RULES, RoutingRule, route
from services.referral.service_layer.views import ReferralView, SubmittedReport

STAFF_ROLES = (Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_OFFICER)
AGENCY_ROLES = (Role.AGENCY_OFFICER, Role.AGENCY_SYSTEM)
LIST_LIMIT = 500


class ReferralService:
    def __init__(
        self,
        database: Database,
        *,
        rules: Iterable[RoutingRule] = ROUTING_RULES,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._rules = tuple(rules)
        self._now = now

    # -- events from reporting (called by consumers inside their unit of work; they commit) ------------------

    def open_referrals(self, uow: UnitOfWork, report: SubmittedReport) -> list[ReferralView]:
        """Open one referral per routed agency that the report does not have yet."""
        day = report.received_at.astimezone(CHINA_STANDARD_TIME).date()
        # A link that overtook the report (another relay replica published it first) names the child.
        link = uow.session.get(ReportLinkRecord, (uow.tenant, report.report_id))
        child_id = link.child_id if link else report.child_id
        existing = set(
            uow.session.scalars(
                select(ReferralRecord.agency_code).where(
                    ReferralRecord.tenant_id == uow.tenant, ReferralRecord.report_id == report.report_id
                )
            )
        )
        opened = []
        for planned in route(report.facts, day, self._rules):
            if planned.agency_code in existing:
                continue
            record = ReferralRecord(
                id=new_id(),
                tenant_id=uow.tenant,
                report_id=report.report_id,
                child_id=child_id or None,
                agency_code=planned.agency_code,
                agency_name=DIRECTORY[planned.agency_code].name_zh,
                status=ReferralStatus.OPENED.value,
                reason=planned.reason,
                rule_code=planned.rule_code,
                urgent=planned.urgent,
                opened_at=self._now(),
                # The clock runs from when the town learnt of the child, not from when this consumer caught up.
                due_at=report.received_at + planned.due_in,
                version=1,  # now, not at the flush: the event below shows it
            )
            uow.session.add(record)
            view = _view(record)
            self._publish(uow, view, events_pb2.ReferralOpened(referral=messages.referral(view)))
            opened.append(view)
        return opened

    def link_child(self, uow: UnitOfWork, report_id: str, child_id: str, linked_at: datetime) -> None:
        """The report now concerns a known child: so do its referrals, and the child's case file hears of
        those opened before the link (their ReferralOpened named no child).

        The link is kept, so referrals opened later (the report's event arrived after its link) get the child;
        a link older than the kept one arrived late and changes nothing."""
        link = uow.session.get(ReportLinkRecord, (uow.tenant, report_id))
        if link is None:
            uow.session.add(
                ReportLinkRecord(tenant_id=uow.tenant, report_id=report_id, child_id=child_id, linked_at=linked_at)
            )
        elif linked_at < _aware(link.linked_at):
            return
        else:
            link.child_id, link.linked_at = child_id, linked_at
        records = uow.session.scalars(
            select(ReferralRecord).where(ReferralRecord.tenant_id == uow.tenant, ReferralRecord.report_id == report_id)
        ).all()
        for record in records:
            if record.child_id == child_id:
                continue
            record.child_id = child_id
            uow.session.flush()  # the update bumps the version the event shows
            view = _view(record)
            self._publish(uow, view, events_pb2.ReferralLinkedToChild(referral=messages.referral(view)))

    # -- township staff ------------------------------------------------------------------------------------

    def list_referrals(self, child_id: str = "", report_id: str = "") -> list[ReferralView]:
        caller = require_role(*STAFF_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(ReferralRecord).where(ReferralRecord.tenant_id == caller.tenant)
            if child_id:
                query = query.where(ReferralRecord.child_id == child_id)
            if report_id:
                query = query.where(ReferralRecord.report_id == report_id)
            rows = uow.session.scalars(
                query.order_by(ReferralRecord.opened_at.desc(), ReferralRecord.id).limit(LIST_LIMIT)
            )
            return [_view(row) for row in rows]

    def get_referral(self, referral_id: str) -> ReferralView:
        caller = require_role(*STAFF_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            return _view(self._referral(uow, referral_id))

    # -- agencies ------------------------------------------------------------------------------------------

    def accept(self, referral_id: str, note: str = "", expected_version: int | None = None) -> ReferralView:
        caller = require_role(*AGENCY_ROLES)
        note = clean_text(note, "note", NOTE_MAX_CHARS, required=False)
        with self._database.unit_of_work(caller.tenant) as uow:
            record = self._addressed_to(uow, caller, referral_id, expected_version)
            record.status = advance(ReferralStatus(record.status), ReferralStatus.ACCEPTED).value
            record.accepted_at = self._now()
            record.accepted_by = caller.user_id
            record.accept_note = note
            uow.session.flush()  # the update bumps the version the view and event show
            view = _view(record)
            self._publish(uow, view, events_pb2.ReferralAccepted(referral=messages.referral(view)))
            uow.commit()
            return view

    def complete(self, referral_id: str, outcome: str, expected_version: int | None = None) -> ReferralView:
        caller = require_role(*AGENCY_ROLES)
        outcome = clean_text(outcome, "outcome", OUTCOME_MAX_CHARS, required=True)
        with self._database.unit_of_work(caller.tenant) as uow:
            record = self._addressed_to(uow, caller, referral_id, expected_version)
            record.status = advance(ReferralStatus(record.status), ReferralStatus.COMPLETED).value
            record.completed_at = self._now()
            record.completed_by = caller.user_id
            record.outcome = outcome
            uow.session.flush()  # the update bumps the version the view and event show
            view = _view(record)
            self._publish(uow, view, events_pb2.ReferralCompleted(referral=messages.referral(view), outcome=outcome))
            uow.commit()
            return view

    # -- helpers -------------------------------------------------------------------------------------------

    def _referral(self, uow: UnitOfWork, referral_id: str, *, for_update: bool = False) -> ReferralRecord:
        record = uow.session.get(ReferralRecord, referral_id, with_for_update=for_update)
        # Another tenant's referral is reported as absent: its existence is not disclosed.
        if record is None or record.tenant_id != uow.tenant:
            raise errors.NotFound("no such referral in this town")
        return record

    def _addressed_to(
        self, uow: UnitOfWork, caller: Principal, referral_id: str, expected_version: int | None
    ) -> ReferralRecord:
        # Locked, so two concurrent accepts cannot both move the same referral (the second sees it accepted).
        record = self._referral(uow, referral_id, for_update=True)
        if not caller.agency or caller.agency != record.agency_code:
            raise errors.PermissionDenied("this referral is addressed to another agency")
        if expected_version is not None and record.version != expected_version:
            raise errors.ConcurrentUpdate(
                f"the referral was changed since you read it (version {expected_version}, now {record.version}): "
                "reload it and try again"
            )
        return record

    def _publish(self, uow: UnitOfWork, view: ReferralView, payload: Message) -> None:
        uow.publish(PendingEvent(REFERRAL_REFERRAL, uow.tenant, "referral", view.referral_id, payload))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite gives back naive UTC


def _view(record: ReferralRecord) -> ReferralView:
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
        opened_at=record.opened_at,
        due_at=record.due_at,
        version=record.version,
    )
