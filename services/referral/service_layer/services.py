"""The referral use cases. Each change runs in a unit of work scoped to one town; events go through the outbox.

Reports become referrals by the routing rules (consumers call `open_referrals` / `link_child` inside the
consumer's unit of work); a referral is opened and sent to its agency in the same transaction. An agency
(officer or its own system) moves only referrals addressed to it in its district; the referrer (town staff)
answers, cancels and reassigns; the leading group office sees the district's referrals and reassigns the
ones escalated to it. A periodic worker escalates referrals past their time limit, once per step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf.message import Message
from minorprot.referral.v1 import events_pb2, referral_pb2
from sqlalchemy import Select, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute

from platform_runtime import errors, paging
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, new_id, utcnow
from platform_runtime.events import PendingEvent
from platform_runtime.tenancy import require_role
from platform_runtime.topics import REFERRAL_REFERRAL
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.referral.adapters import messages
from services.referral.adapters.orm import (
    AgencyCommandRecord,
    FeedEntryRecord,
    ReferralEntryRecord,
    ReferralRecord,
    ReferralTownRecord,
    ReportLinkRecord,
)
from services.referral.domain.lifecycle import (
    AGENCY_ACTIONS,
    AWAITING_AGENCY,
    LAST_STEP,
    LEADING_GROUP_OFFICE,
    NOTE_MAX_CHARS,
    REFERRER_ACTIONS,
    WORKING,
    Action,
    ReferralStatus,
    action_text,
    advance,
    clean_text,
    escalated_to,
    escalation_due,
    limited,
)
from services.referral.domain.routing import Route, RoutingRule, route
from services.referral.service_layer.routing_config import RoutingConfig
from services.referral.service_layer.views import (
    EntryView,
    FeedChange,
    ReferralDetail,
    ReferralPage,
    ReferralView,
    SubmittedReport,
)

STAFF_ROLES = (Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_OFFICER)
AGENCY_ROLES = (Role.AGENCY_OFFICER, Role.AGENCY_SYSTEM)
IDEMPOTENCY_KEY_MAX = 100
ESCALATIONS_PER_ROUND = 200
FEED_BATCH = 200
PLAN_RULE_CODE = "ASSISTANCE_PLAN"
PLAN_DUE_DAYS = 5
# "Due soon" in the agency's inbox: within a day of the limit.
DUE_SOON = timedelta(days=1)


class ReferralService:
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

    # -- events from reporting (called by consumers inside their unit of work; they commit) ------------------

    def open_referrals(self, uow: UnitOfWork, report: SubmittedReport) -> list[ReferralView]:
        """Open and send one referral per routed agency that the report does not have yet."""
        day = report.received_at.astimezone(CHINA_STANDARD_TIME).date()
        # A link that overtook the report (another relay replica published it first) names the child.
        link = uow.session.get(ReportLinkRecord, (uow.tenant, report.report_id))
        child_id = link.child_id if link else report.child_id
        existing = self._agencies_of(uow, report.report_id)
        district = uow.tenant[:6]
        if self._rules is None:
            rule_set = self.config.rules_for(district, day)
            rules, version = rule_set.rules, rule_set.version
        else:
            rules, version = self._rules, 0
        opened = []
        for planned in route(report.facts, day, rules, self.config.directory(district)):
            if planned.agency_code in existing:
                continue
            # The clock runs from when the town learnt of the child, not from when this consumer caught up.
            opened.append(
                self._open(uow, report.report_id, child_id, planned, report.received_at, version, _case_facts(report))
            )
        return opened

    def _open(
        self,
        uow: UnitOfWork,
        report_id: str,
        child_id: str | None,
        planned: Route,
        clock_from: datetime,
        rule_set_version: int = 0,
        case_facts: dict[str, Any] | None = None,
    ) -> ReferralView:
        now = self._now()
        directory = self.config.directory(uow.tenant[:6])
        record = ReferralRecord(
            id=new_id(),
            tenant_id=uow.tenant,
            report_id=report_id,
            child_id=child_id or None,
            agency_code=planned.agency_code,
            agency_name=directory[planned.agency_code].name_zh,
            status=ReferralStatus.OPENED.value,
            reason=planned.reason,
            rule_code=planned.rule_code,
            urgent=planned.urgent,
            opened_at=now,
            deadline_from=clock_from,
            due_at=clock_from + planned.due_in,
            accept_within_seconds=int(planned.due_in.total_seconds()),
            complete_within_seconds=int(planned.complete_within.total_seconds()),
            reroute_to=planned.reroute_to,
            rule_set_version=rule_set_version,
            case_facts=case_facts,
            escalated_step=0,
            last_note="",
            updated_at=now,
            version=1,  # now, not at the flush: the event below shows it
        )
        uow.session.add(record)
        _add_town(uow)
        view = _view(record)
        self._entry(uow, record, "open", "routing", planned.reason)
        self._publish(uow, view, events_pb2.ReferralOpened(referral=messages.referral_event(view)))
        for benefit_code in planned.benefit_codes:
            # The benefits service opens the application (it may not be able to act yet: its inbox keeps it).
            request = events_pb2.BenefitApplicationRequested(
                referral_id=record.id,
                report_id=report_id,
                child_id=child_id or "",
                benefit_code=benefit_code,
                reason=planned.reason,
                agency_code=planned.agency_code,
            )
            self._publish(uow, view, request)
        # In the agency's inbox (and stream) as soon as this commits: sent in the same transaction.
        return self._move(uow, record, Action.SEND, "routing", "")

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
            self._publish(uow, view, events_pb2.ReferralLinkedToChild(referral=messages.referral_event(view)))

    # -- township staff: a referral for an action of a child's assistance plan -------------------------------

    def open_for_plan(
        self, child_id: str, agency_code: str, reason: str, due_in_days: int = PLAN_DUE_DAYS
    ) -> ReferralView:
        """A referral the caseworker opens by hand for an action of the child's assistance plan (帮扶计划): the
        plan action names it (AddPlanAction.referral_id) and the registry moves the action with its events."""
        caller = require_role(Role.CASEWORKER, Role.TOWN_ADMIN)
        child_id = clean_text(child_id, "child_id", 32, required=True)
        reason = clean_text(reason, "reason", NOTE_MAX_CHARS, required=True)
        if agency_code not in self.config.directory(caller.district):
            raise errors.InvalidInput.single("agency_code", "is not a unit of the district's directory")
        if not 1 <= due_in_days <= 90:
            raise errors.InvalidInput.single("due_in_days", "must be from 1 to 90")
        planned = Route(agency_code, reason, PLAN_RULE_CODE, timedelta(days=due_in_days), False)
        with self._database.unit_of_work(caller.tenant) as uow:
            # No report: the plan's own reference keeps the one-referral-per-report-and-unit rule apart.
            view = self._open(uow, "plan-" + new_id()[:27], child_id, planned, self._now())
            uow.commit()
        self._changed()
        return view

    # -- township staff and the leading group office: reading ----------------------------------------------

    def list_referrals(
        self, child_id: str = "", report_id: str = "", *, page_size: int = 0, page_token: str = ""
    ) -> ReferralPage:
        """The town's referrals (of a child, or of a report), newest first, a page at a time."""
        caller = require_role(*STAFF_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            query = select(ReferralRecord).where(ReferralRecord.tenant_id == caller.tenant)
            if child_id:
                query = query.where(ReferralRecord.child_id == child_id)
            if report_id:
                query = query.where(ReferralRecord.report_id == report_id)
            return _one_page(uow, query, ReferralRecord.opened_at, newest_first=True, size=page_size, token=page_token)

    def get_referral(self, referral_id: str) -> ReferralView:
        return self.referral_detail(referral_id).referral

    def referral_detail(self, referral_id: str) -> ReferralDetail:
        """The referral and its history, for town staff, the leading group office or the agency it is addressed
        to (each sees only what is theirs)."""
        caller = require_role(*STAFF_ROLES, Role.LEADING_GROUP_OFFICE, *AGENCY_ROLES)
        tenant = self._tenant_for(caller, referral_id)
        with self._database.unit_of_work(tenant) as uow:
            record = self._referral(uow, referral_id)
            if caller.role in AGENCY_ROLES:
                _check_addressed(caller, record)
            return ReferralDetail(_view(record), self._entries(uow, record.id))

    def list_district(
        self,
        *,
        status: str = "",
        agency_code: str = "",
        overdue_only: bool = False,
        escalated_only: bool = False,
        page_size: int = 0,
        page_token: str = "",
    ) -> ReferralPage:
        """The leading group office's view: every referral of the district, the nearest time limit first, a page
        at a time."""
        caller = require_role(Role.LEADING_GROUP_OFFICE)
        with self._database.unit_of_work("", district=caller.district) as uow:
            query = _in_district(select(ReferralRecord), caller.district)
            if status:
                query = query.where(ReferralRecord.status == ReferralStatus(_status(status)).value)
            if agency_code:
                query = query.where(ReferralRecord.agency_code == agency_code)
            if overdue_only:
                query = query.where(ReferralRecord.status.in_(_limited_values()), ReferralRecord.due_at <= self._now())
            if escalated_only:
                query = query.where(ReferralRecord.escalated_step > 0)
            return _one_page(uow, query, ReferralRecord.due_at, newest_first=False, size=page_size, token=page_token)

    # -- agencies ------------------------------------------------------------------------------------------

    def list_for_agency(
        self, *, status: str = "", due: str = "", page_size: int = 0, page_token: str = ""
    ) -> ReferralPage:
        """The referrals addressed to the caller's agency in its district, newest first, a page at a time.
        `due`: "" (any), "overdue" (past the limit) or "soon" (within a day of it)."""
        caller = require_role(*AGENCY_ROLES)
        agency = _agency_of(caller)
        now = self._now()
        with self._database.unit_of_work("", district=caller.district) as uow:
            query = _in_district(select(ReferralRecord), caller.district).where(ReferralRecord.agency_code == agency)
            if status:
                query = query.where(ReferralRecord.status == _status(status))
            if due == "overdue":
                query = query.where(ReferralRecord.status.in_(_limited_values()), ReferralRecord.due_at <= now)
            elif due == "soon":
                query = query.where(
                    ReferralRecord.status.in_(_limited_values()),
                    ReferralRecord.due_at > now,
                    ReferralRecord.due_at <= now + DUE_SOON,
                )
            elif due:
                raise errors.InvalidInput.single("due", "must be empty, 'overdue' or 'soon'")
            return _one_page(uow, query, ReferralRecord.opened_at, newest_first=True, size=page_size, token=page_token)

    def act_as_agency(
        self,
        action: Action,
        referral_id: str,
        text: str = "",
        *,
        expected_version: int | None = None,
        idempotency_key: str = "",
    ) -> ReferralView:
        """Accept, reject, return, add progress to or complete a referral addressed to the caller's agency.
        The same `idempotency_key` again (a retry) changes nothing and answers with the referral as it is."""
        caller = require_role(*AGENCY_ROLES)
        if action not in AGENCY_ACTIONS:
            raise errors.InvalidInput.single("action", f"an agency cannot {action.value} a referral")
        text = action_text(action, text)
        key = idempotency_key.strip()
        if len(key) > IDEMPOTENCY_KEY_MAX:
            raise errors.InvalidInput.single("idempotency_key", f"must be at most {IDEMPOTENCY_KEY_MAX} characters")
        tenant = self._tenant_for(caller, referral_id)
        try:
            return self._agency_change(caller, tenant, action, referral_id, text, expected_version, key)
        except IntegrityError:
            if not key:
                raise
            # The same key raced in on another connection and won: answer as for a retry.
            return self._agency_change(caller, tenant, action, referral_id, text, expected_version, key)

    def _agency_change(
        self,
        caller: Principal,
        tenant: str,
        action: Action,
        referral_id: str,
        text: str,
        expected_version: int | None,
        key: str,
    ) -> ReferralView:
        with self._database.unit_of_work(tenant) as uow:
            # Locked, so two concurrent changes cannot both move the same referral (the second sees the first).
            record = self._referral(uow, referral_id, for_update=True)
            _check_addressed(caller, record)
            if key:
                done = uow.session.get(AgencyCommandRecord, (tenant, caller.agency, key))
                if done is not None:
                    if (done.referral_id, done.action) != (referral_id, action.value):
                        raise errors.InvalidInput.single("idempotency_key", "was already used for another change")
                    return _view(record)
            _check_version(record, expected_version)
            view = self._move(uow, record, action, caller.user_id, text)
            if key:
                uow.session.add(
                    AgencyCommandRecord(
                        tenant_id=tenant,
                        agency_code=caller.agency,
                        idempotency_key=key,
                        referral_id=referral_id,
                        action=action.value,
                        at=self._now(),
                    )
                )
            uow.commit()
        self._changed()
        return view

    # -- the referrer: answer a question, cancel, reassign -------------------------------------------------

    def act_as_referrer(
        self,
        action: Action,
        referral_id: str,
        text: str = "",
        *,
        expected_version: int | None = None,
        agency_code: str = "",
    ) -> ReferralView:
        """Town staff answer a returned referral, cancel or reassign one of their town's referrals; the leading
        group office reassigns any referral of the district (the ones escalated to it)."""
        caller = require_role(*STAFF_ROLES, Role.LEADING_GROUP_OFFICE)
        if action not in REFERRER_ACTIONS:
            raise errors.InvalidInput.single("action", f"the referrer cannot {action.value} a referral")
        if caller.role is Role.LEADING_GROUP_OFFICE and action is not Action.REASSIGN:
            raise errors.PermissionDenied("the leading group office reassigns; the town answers and cancels")
        text = action_text(action, text)
        if action is Action.REASSIGN and agency_code not in self.config.directory(caller.district):
            raise errors.InvalidInput.single("agency_code", "is not a unit of the district's directory")
        tenant = self._tenant_for(caller, referral_id)
        with self._database.unit_of_work(tenant) as uow:
            record = self._referral(uow, referral_id, for_update=True)
            _check_version(record, expected_version)
            if action is Action.REASSIGN:
                view = self._reassign(uow, record, caller.user_id, agency_code, text)
            else:
                view = self._move(uow, record, action, caller.user_id, text)
            uow.commit()
        self._changed()
        return view

    def _reassign(self, uow: UnitOfWork, record: ReferralRecord, by: str, agency_code: str, text: str) -> ReferralView:
        previous = record.agency_code
        if agency_code == previous:
            raise errors.InvalidInput.single("agency_code", "the referral is already addressed to this unit")
        if agency_code in self._agencies_of(uow, record.report_id):
            raise errors.Conflict("this report already has a referral to that unit")
        advance(ReferralStatus(record.status), Action.REASSIGN)
        record.agency_code = agency_code
        record.agency_name = self.config.directory(record.tenant_id[:6])[agency_code].name_zh
        record.accepted_at = record.accepted_by = None
        record.reroute_to = ""
        now = self._now()
        record.status = ReferralStatus.SENT.value
        record.sent_at = record.deadline_from = record.updated_at = now
        record.due_at = now + timedelta(seconds=record.accept_within_seconds)
        record.escalated_step = 0
        record.last_note = text
        uow.session.flush()
        view = _view(record)
        self._entry(uow, record, Action.REASSIGN.value, by, text or f"from {previous}")
        self._publish(
            uow,
            view,
            events_pb2.ReferralReassigned(referral=messages.referral_event(view), previous_agency_code=previous),
        )
        self._publish(uow, view, events_pb2.ReferralSent(referral=messages.referral_event(view)))
        self._feed(uow, view, agency_code=previous, gone=True)
        self._feed(uow, view)
        return view

    # -- the one place a referral moves --------------------------------------------------------------------

    def _move(self, uow: UnitOfWork, record: ReferralRecord, action: Action, by: str, text: str) -> ReferralView:
        """Apply `action` (not reassign) to a locked referral: state, time limit, history and event."""
        now = self._now()
        record.status = advance(ReferralStatus(record.status), action).value
        record.updated_at = now
        if text:
            record.last_note = text
        if action is Action.SEND or action is Action.ANSWER:
            record.sent_at = now if action is Action.SEND else record.sent_at
            if action is Action.ANSWER:  # the question stopped the clock: the agency has its full time again
                self._restart_limit(record, now, record.accept_within_seconds)
        elif action is Action.ACCEPT:
            record.accepted_at, record.accepted_by, record.accept_note = now, by, text
            self._restart_limit(record, now, record.complete_within_seconds)
        elif action is Action.COMPLETE:
            record.completed_at, record.completed_by, record.outcome = now, by, text
        uow.session.flush()  # the update bumps the version the view and event show
        view = _view(record)
        self._entry(uow, record, action.value, by, text)
        self._publish(uow, view, _event_of(action, messages.referral_event(view), text))
        self._feed(uow, view)
        if action is Action.REJECT:
            self._after_rejection(uow, record, text)
        return view

    @staticmethod
    def _restart_limit(record: ReferralRecord, now: datetime, seconds: int) -> None:
        record.deadline_from = now
        record.due_at = now + timedelta(seconds=seconds)
        record.escalated_step = 0

    def _after_rejection(self, uow: UnitOfWork, record: ReferralRecord, reason: str) -> None:
        """Re-route to the rule's next unit, or, with none (or that unit already has it), escalate to the
        leading group office, which reassigns it."""
        target = record.reroute_to
        directory = self.config.directory(record.tenant_id[:6])
        if target and target in directory and target not in self._agencies_of(uow, record.report_id):
            window = timedelta(seconds=record.accept_within_seconds)
            planned = Route(
                target,
                f"{record.reason}(由{record.agency_name}退回后转介 re-routed after rejection: {reason})",
                record.rule_code,
                window,
                record.urgent,
                timedelta(seconds=record.complete_within_seconds),
            )
            self._open(
                uow,
                record.report_id,
                record.child_id,
                planned,
                self._now(),
                record.rule_set_version,
                dict(record.case_facts or {}),
            )
            return
        # The reason goes on Kafka: the agency's own words stay in the history's reject entry.
        self._escalate(uow, record, LAST_STEP, f"rejected by {record.agency_code}")

    # -- time limits ---------------------------------------------------------------------------------------

    def towns_with_referrals(self) -> list[str]:
        with self._database.platform_session() as session:
            return list(session.scalars(select(ReferralTownRecord.tenant_id).order_by(ReferralTownRecord.tenant_id)))

    def escalate_overdue(self, tenant: str) -> int:
        """Escalate the town's referrals past their limit, one step each at most, each step once: the step is
        stored with the event in one transaction, so a restart or a second replica never raises it again
        (replicas skip the rows another one holds). Returns how many were escalated."""
        now = self._now()
        with self._database.unit_of_work(tenant) as uow:
            candidates = uow.session.scalars(
                select(ReferralRecord)
                .where(
                    ReferralRecord.tenant_id == tenant,
                    ReferralRecord.status.in_(_limited_values()),
                    ReferralRecord.due_at <= now,
                    ReferralRecord.escalated_step < LAST_STEP,
                )
                .order_by(ReferralRecord.due_at)
                .limit(ESCALATIONS_PER_ROUND)
                .with_for_update(skip_locked=True)
            ).all()
            raised = 0
            for record in candidates:
                step = escalation_due(
                    ReferralStatus(record.status),
                    _aware(record.deadline_from or record.opened_at),
                    _aware(record.due_at),
                    record.escalated_step,
                    now,
                )
                if step:
                    what = "accepted" if ReferralStatus(record.status) in AWAITING_AGENCY else "completed"
                    self._escalate(uow, record, step, f"not {what} by {_aware(record.due_at).isoformat()}")
                    raised += 1
            uow.commit()
        if raised:
            self._changed()
        return raised

    def _escalate(self, uow: UnitOfWork, record: ReferralRecord, step: int, reason: str) -> None:
        now = self._now()
        record.escalated_step = step
        record.escalated_at = record.updated_at = now
        uow.session.flush()
        view = _view(record)
        # Step 1 goes to the unit that supervises the agency, where the directory names one.
        agency = self.config.directory(record.tenant_id[:6]).get(record.agency_code)
        to = escalated_to(step, agency.supervisor if agency and agency.supervisor else record.agency_code)
        self._entry(uow, record, "escalate", "system", f"→ {to}: {reason}")
        self._publish(
            uow,
            view,
            events_pb2.ReferralEscalated(
                referral=messages.referral_event(view), step=step, escalated_to=to, reason=reason
            ),
        )
        self._feed(uow, view)

    # -- the agencies' change feed (their streams) ---------------------------------------------------------

    def changes_for_agency(self, after: int, limit: int = FEED_BATCH) -> list[FeedChange]:
        """The changes of referrals addressed to the caller's agency in its district after cursor `after`, in
        order (the stream's next batch)."""
        caller = require_role(*AGENCY_ROLES)
        agency = _agency_of(caller)
        with self._database.unit_of_work("", district=caller.district) as uow:
            rows = uow.session.execute(
                select(FeedEntryRecord.seq, FeedEntryRecord.gone, FeedEntryRecord.snapshot)
                .where(
                    FeedEntryRecord.tenant_id.startswith(_district(caller.district), autoescape=True),
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

    # -- helpers -------------------------------------------------------------------------------------------

    def _tenant_for(self, caller: Principal, referral_id: str) -> str:
        """The town whose unit of work holds the referral: the caller's own town for town staff; any town of the
        caller's district for an agency or the leading group office (another district's: NotFound)."""
        if caller.role not in AGENCY_ROLES and caller.role is not Role.LEADING_GROUP_OFFICE:
            return caller.tenant
        with self._database.unit_of_work("", district=caller.district) as uow:
            tenant = uow.session.scalar(
                _in_district(select(ReferralRecord.tenant_id), caller.district).where(ReferralRecord.id == referral_id)
            )
        if tenant is None:
            raise errors.NotFound("no such referral in this district")
        return tenant

    def _referral(self, uow: UnitOfWork, referral_id: str, *, for_update: bool = False) -> ReferralRecord:
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
    def _entries(uow: UnitOfWork, referral_id: str) -> list[EntryView]:
        rows = uow.session.scalars(
            select(ReferralEntryRecord)
            .where(ReferralEntryRecord.tenant_id == uow.tenant, ReferralEntryRecord.referral_id == referral_id)
            .order_by(ReferralEntryRecord.at, ReferralEntryRecord.version)
        )
        return [
            EntryView(row.action, _aware(row.at), row.by, row.agency_code, row.text, row.status, row.version)
            for row in rows
        ]

    def _publish(self, uow: UnitOfWork, view: ReferralView, payload: Message) -> None:
        uow.publish(PendingEvent(REFERRAL_REFERRAL, uow.tenant, "referral", view.referral_id, payload))


def _event_of(action: Action, referral: referral_pb2.Referral, text: str) -> Message:
    """The event that tells the others of a move (reassign and escalate have their own). The text written with
    it stays here (the history): it is free text, and only a completed referral's outcome has a consumer (the
    registry's plan action notes it)."""
    if action is Action.SEND or action is Action.ANSWER:
        return events_pb2.ReferralSent(referral=referral)
    if action is Action.ACCEPT:
        return events_pb2.ReferralAccepted(referral=referral)
    if action is Action.REJECT:
        return events_pb2.ReferralRejected(referral=referral)
    if action is Action.RETURN:
        return events_pb2.ReferralReturned(referral=referral)
    if action is Action.PROGRESS:
        return events_pb2.ReferralProgressed(referral=referral)
    if action is Action.COMPLETE:
        return events_pb2.ReferralCompleted(referral=referral, outcome=text)
    if action is Action.CANCEL:
        return events_pb2.ReferralCancelled(referral=referral)
    raise ValueError(f"{action} has an event of its own")


def _agency_of(caller: Principal) -> str:
    if not caller.agency:
        raise errors.PermissionDenied("this token names no agency")
    return caller.agency


def _check_addressed(caller: Principal, record: ReferralRecord) -> None:
    if _agency_of(caller) != record.agency_code:
        raise errors.PermissionDenied("this referral is addressed to another agency")


def _check_version(record: ReferralRecord, expected_version: int | None) -> None:
    if expected_version is not None and record.version != expected_version:
        raise errors.ConcurrentUpdate(
            f"the referral was changed since you read it (version {expected_version}, now {record.version}): "
            "reload it and try again"
        )


Q = TypeVar("Q", Select[tuple[ReferralRecord]], Select[tuple[str]])


def _in_district(query: Q, district: str) -> Q:
    # Row-level security keeps PostgreSQL to the district; SQLite has none, so the query says it too.
    return query.where(ReferralRecord.tenant_id.startswith(_district(district), autoescape=True))


def _district(district: str) -> str:
    if len(district) != 6 or not district.isdigit():
        raise errors.PermissionDenied("this token names no district")
    return district


def _lock_feed(uow: UnitOfWork) -> None:
    """Hold the district's feed lock to the commit, so the district's feed rows commit in `seq` order and a
    stream past one never finds a lower one later (SQLite: one writer at a time does the same)."""
    if uow.session.get_bind().dialect.name == "postgresql":
        uow.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"referral_feed:{uow.tenant[:6]}"}
        )


def _status(value: str) -> str:
    try:
        return ReferralStatus(value).value
    except ValueError:
        raise errors.InvalidInput.single("status", f"must be one of {', '.join(ReferralStatus)}") from None


def _limited_values() -> list[str]:
    return [status.value for status in ReferralStatus if limited(status)]


def _one_page(
    uow: UnitOfWork,
    query: Select[tuple[ReferralRecord]],
    key: InstrumentedAttribute[datetime],
    *,
    newest_first: bool,
    size: int,
    token: str,
) -> ReferralPage:
    """One page of `query` ordered by `key` then id, after the row `token` names (keyset paging)."""
    rows, next_token = paging.one_page(
        uow.session, query, key, ReferralRecord.id, newest_first=newest_first, size=size, token=token
    )
    return ReferralPage([_view(row) for row in rows], next_token)


def _add_town(uow: UnitOfWork) -> None:
    values = {"tenant_id": uow.tenant}
    dialect = uow.session.get_bind().dialect.name
    table = ReferralTownRecord
    if dialect == "postgresql":
        uow.session.execute(pg_insert(table).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        uow.session.execute(sqlite_insert(table).values(values).on_conflict_do_nothing())
    else:  # pragma: no cover - the two stores the platform runs on
        uow.session.execute(insert(table).values(values))


def _case_facts(report: SubmittedReport) -> dict[str, Any]:
    facts = report.facts
    return {
        "situation_types": sorted(facts.situations),
        "facts": sorted(facts.facts),
        "approximate_age": facts.age or 0,
        "division_code": report.division_code,
        "place_text": report.place_text,
        "urgency": facts.urgency.value,
        "crisis": facts.crisis,
    }


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
        opened_at=_aware(record.opened_at),
        due_at=_aware(record.due_at),
        version=record.version,
        escalated_step=record.escalated_step or 0,
        last_note=record.last_note or "",
        outcome=record.outcome or "",
        updated_at=_aware(record.updated_at) if record.updated_at else None,
        case_facts=dict(record.case_facts or {}),
    )


__all__ = ["LEADING_GROUP_OFFICE", "WORKING", "ReferralService"]
