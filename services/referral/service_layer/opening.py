"""Opening referrals: from reporting's events, by the district's routing rules (the consumers call
`open_referrals` and `link_child` inside their unit of work and commit it), and by hand for an action of a
child's assistance plan. A referral is opened and sent to its agency in the same transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.db import UnitOfWork, new_id
from platform_runtime.tenancy import require_role
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.referral.adapters.orm import ReferralRecord, ReportLinkRecord
from services.referral.domain import events
from services.referral.domain.lifecycle import NOTE_MAX_CHARS, clean_text
from services.referral.domain.routing import Route, route
from services.referral.service_layer.moves import ReferralMoves
from services.referral.service_layer.use_cases import aware, view_of
from services.referral.service_layer.views import ReferralView, SubmittedReport

PLAN_RULE_CODE = "ASSISTANCE_PLAN"
PLAN_DUE_DAYS = 5


class OpeningUseCases(ReferralMoves):
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
        elif linked_at < aware(link.linked_at):
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
            self._emit(uow, events.ReferralLinkedToChild(view_of(record)))

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
