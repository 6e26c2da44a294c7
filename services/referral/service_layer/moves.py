"""The one place a referral is opened, moves and is escalated: its state, time limit, history, events and its
agency's feed change together, in the caller's unit of work. The use cases (opening.py, agency_actions.py,
referrer_actions.py, overdue.py) decide when; this decides what a move does."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from platform_runtime.db import UnitOfWork, new_id
from services.referral.adapters.orm import ReferralRecord, ReferralTownRecord
from services.referral.domain import events
from services.referral.domain.lifecycle import LAST_STEP, Action, ReferralStatus, advance, escalated_to
from services.referral.domain.routing import Route
from services.referral.service_layer.agency_feed import AgencyFeed
from services.referral.service_layer.use_cases import view_of
from services.referral.service_layer.views import ReferralView


class ReferralMoves(AgencyFeed):
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
        view = view_of(record)
        self._entry(uow, record, "open", "routing", planned.reason)
        self._emit(uow, events.ReferralOpened(view))
        for benefit_code in planned.benefit_codes:
            # The benefits service opens the application (it may not be able to act yet: its inbox keeps it).
            request = events.BenefitApplicationRequested(
                referral_id=record.id,
                report_id=report_id,
                child_id=child_id or "",
                benefit_code=benefit_code,
                reason=planned.reason,
                agency_code=planned.agency_code,
            )
            self._emit(uow, request)
        # In the agency's inbox (and stream) as soon as this commits: sent in the same transaction.
        return self._move(uow, record, Action.SEND, "routing", "")

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
                _restart_limit(record, now, record.accept_within_seconds)
        elif action is Action.ACCEPT:
            record.accepted_at, record.accepted_by, record.accept_note = now, by, text
            _restart_limit(record, now, record.complete_within_seconds)
        elif action is Action.COMPLETE:
            record.completed_at, record.completed_by, record.outcome = now, by, text
        uow.session.flush()  # the update bumps the version the view and event show
        view = view_of(record)
        self._entry(uow, record, action.value, by, text)
        self._emit(uow, events.moved(action, view, text))
        self._feed(uow, view)
        if action is Action.REJECT:
            self._after_rejection(uow, record, text)
        return view

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

    def _escalate(self, uow: UnitOfWork, record: ReferralRecord, step: int, reason: str) -> None:
        now = self._now()
        record.escalated_step = step
        record.escalated_at = record.updated_at = now
        uow.session.flush()
        view = view_of(record)
        # Step 1 goes to the unit that supervises the agency, where the directory names one.
        agency = self.config.directory(record.tenant_id[:6]).get(record.agency_code)
        to = escalated_to(step, agency.supervisor if agency and agency.supervisor else record.agency_code)
        self._entry(uow, record, "escalate", "system", f"→ {to}: {reason}")
        self._emit(uow, events.ReferralEscalated(view, step=step, escalated_to=to, reason=reason))
        self._feed(uow, view)


def _restart_limit(record: ReferralRecord, now: datetime, seconds: int) -> None:
    record.deadline_from = now
    record.due_at = now + timedelta(seconds=seconds)
    record.escalated_step = 0


def _add_town(uow: UnitOfWork) -> None:
    """Note the town as one with referrals (the escalation worker visits only those)."""
    values = {"tenant_id": uow.tenant}
    dialect = uow.session.get_bind().dialect.name
    table = ReferralTownRecord
    if dialect == "postgresql":
        uow.session.execute(pg_insert(table).values(values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        uow.session.execute(sqlite_insert(table).values(values).on_conflict_do_nothing())
    else:  # pragma: no cover - the two stores the platform runs on
        uow.session.execute(insert(table).values(values))
