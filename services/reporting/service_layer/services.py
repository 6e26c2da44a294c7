"""The reporting use cases: intake, triage and crisis, linking to the register, receipts.

A report is stored (with its events, crisis included) in one transaction BEFORE anything downstream is
asked, so a registry outage can delay linking but never lose a report or hold back a crisis.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from minorprot.reporting.v1 import events_pb2, reporting_pb2
from sqlalchemy import select

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, UnitOfWork, utcnow
from platform_runtime.events import PendingEvent
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.tenancy import current_principal
from platform_runtime.topics import REPORTING_REPORT
from services.reporting.adapters import messages
from services.reporting.adapters.orm import ReceiptRecord, ReportRecord, TriageRuleSetRecord
from services.reporting.adapters.repository import ReportRepository
from services.reporting.domain import errors as domain_errors
from services.reporting.domain.grouping import GroupingFacts, find_group
from services.reporting.domain.model import Channel, Report, Submission
from services.reporting.domain.receipts import (
    ReporterView,
    TokenBucketLimiter,
    new_receipt,
    parse_receipt,
    reporter_view,
)
from services.reporting.domain.triage import (
    TriageDecision,
    TriageRuleSet,
    rule_set_from_dict,
    select_rule_set,
    triage,
)
from services.reporting.domain.validation import validate_submission
from services.reporting.service_layer.ports import ChildDirectory, ChildDirectoryUnavailable

RECEIPT_FIELD = "receipt"
GROUPING_WINDOW = timedelta(days=30)

# Which channels each role may submit through; the tenant always comes from the caller's token.
CHANNELS_BY_ROLE: dict[Role, frozenset[Channel]] = {
    Role.PUBLIC: frozenset({Channel.PUBLIC_ANONYMOUS, Channel.PUBLIC_NAMED}),
    Role.MANDATED_REPORTER: frozenset({Channel.MANDATED_REPORTER}),
    Role.CHILD_DIRECTOR: frozenset({Channel.MANDATED_REPORTER}),
    Role.AGENCY_SYSTEM: frozenset({Channel.AGENCY_SHARE}),
    Role.AGENCY_OFFICER: frozenset({Channel.AGENCY_SHARE}),
    Role.CASEWORKER: frozenset(Channel),
    Role.TOWN_ADMIN: frozenset(Channel),
    Role.DISTRICT_OFFICER: frozenset(Channel),
}
READER_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_OFFICER})
# Public reports are linked by a person: an anonymous caller must not trigger a search of the register.
AUTO_LINK_ROLES = frozenset(CHANNELS_BY_ROLE) - {Role.PUBLIC}


@dataclass(frozen=True)
class StoredReport:
    """A report as read back, with the triage outcome recorded when it arrived."""

    report: Report
    crisis: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SubmitOutcome:
    report: Report
    receipt: str
    crisis: bool
    reasons: tuple[str, ...]


class ReportingService:
    def __init__(
        self,
        database: Database,
        cipher: FieldCipher,
        blind_index: BlindIndex,
        children: ChildDirectory,
        *,
        auto_link_threshold: float = 0.9,
        receipt_lookups_per_minute: int = 10,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._cipher = cipher
        self._blind_index = blind_index
        self._children = children
        self._auto_link_threshold = auto_link_threshold
        self._limiter = TokenBucketLimiter(receipt_lookups_per_minute, receipt_lookups_per_minute / 60)
        self._now = now

    # -- intake ---------------------------------------------------------------------------------------------

    def submit(self, submission: Submission, external_reference: str = "") -> SubmitOutcome:
        caller = current_principal()
        allowed = CHANNELS_BY_ROLE.get(caller.role, frozenset())
        if submission.channel not in allowed:
            raise errors.PermissionDenied(f"role {caller.role} may not submit through {submission.channel.value}")
        now = self._now()
        validate_submission(submission, now)
        if not submission.place.division_code.startswith(caller.tenant):
            raise domain_errors.InvalidInput.single("division_code", f"must lie within town {caller.tenant}")
        with self._database.unit_of_work(caller.tenant) as uow:
            repository = ReportRepository(uow.session, self._cipher, caller.tenant)
            if external_reference:
                existing = repository.by_external_reference(submission.channel, external_reference)
                if existing is not None:
                    # An agency system resending the same report gets the first one back, not a duplicate.
                    return SubmitOutcome(
                        repository.to_domain(existing), "", existing.crisis, tuple(existing.triage_reasons)
                    )
            decision = triage(submission, select_rule_set(self._rule_sets(uow), caller.tenant, now))
            receipt = new_receipt()
            report = Report(
                report_id=uuid.uuid4().hex,
                tenant_id=caller.tenant,
                receipt=receipt,
                received_at=now,
                submission=submission,
            )
            report.record_triage(decision.urgency, decision.rule_codes)
            repository.add(
                report,
                submitted_by=caller.user_id,
                reasons=decision.reasons,
                crisis=decision.crisis is not None,
                ref=external_reference,
            )
            uow.session.add(
                ReceiptRecord(
                    receipt_hash=self._blind_index.digest(receipt, field=RECEIPT_FIELD),
                    tenant_id=caller.tenant,
                    report_id=report.report_id,
                )
            )
            self._publish_submitted(uow, report, decision)
            uow.commit()
        if caller.role in AUTO_LINK_ROLES:
            report = self._link_automatically(caller, report)
        else:
            report = self._flag(caller, report.report_id, "public report: a person links it to a child")
        return SubmitOutcome(report, receipt, decision.crisis is not None, decision.reasons)

    def _publish_submitted(self, uow: UnitOfWork, report: Report, decision: TriageDecision) -> None:
        crisis = decision.crisis is not None
        uow.publish(
            PendingEvent(
                REPORTING_REPORT,
                report.tenant_id,
                "report",
                report.report_id,
                events_pb2.ReportSubmitted(report=messages.report(report, decision.reasons, crisis, reporter=False)),
            )
        )
        if decision.crisis is not None:
            uow.publish(
                PendingEvent(
                    REPORTING_REPORT,
                    report.tenant_id,
                    "report",
                    report.report_id,
                    events_pb2.CrisisDeclared(
                        report_id=report.report_id,
                        division_code=report.submission.place.division_code,
                        situation_types=sorted(s.value for s in report.submission.situations),
                        reasons=list(decision.crisis.reasons),
                        required_actions=[a.value for a in decision.crisis.actions],
                    ),
                )
            )

    def _rule_sets(self, uow: UnitOfWork) -> list[TriageRuleSet]:
        rows = uow.session.scalars(select(TriageRuleSetRecord).where(TriageRuleSetRecord.tenant_id == uow.tenant))
        return [rule_set_from_dict(row.rules) for row in rows]

    # -- linking to the register ----------------------------------------------------------------------------

    def _link_automatically(self, caller: Principal, report: Report) -> Report:
        submission = report.submission
        try:
            candidates = self._children.match(submission.child, submission.place)
            best = candidates[0] if candidates else None
            if best is not None and best.score >= self._auto_link_threshold:
                child_id = best.child_id
            elif candidates:
                return self._flag(caller, report.report_id, f"{len(candidates)} possible children: confirm which one")
            else:
                child_id = self._children.register_provisional(submission.child, submission.place)
        except ChildDirectoryUnavailable as exc:
            return self._flag(caller, report.report_id, f"not linked to a child yet: {exc}")
        return self.link(report.report_id, child_id)

    def link(self, report_id: str, child_id: str) -> Report:
        """Tie a report to a child (automatically or by a person) and group it with related reports."""
        caller = current_principal()
        with self._database.unit_of_work(caller.tenant) as uow:
            repository = ReportRepository(uow.session, self._cipher, caller.tenant)
            row = repository.record(report_id)
            if row is None:
                raise errors.NotFound("no such report in this town")
            report = repository.to_domain(row)
            group = find_group(
                replace(GroupingFacts.of(report), child_id=child_id),
                [GroupingFacts.of(repository.to_domain(other)) for other in self._recent(uow, report)],
            )
            report.link(child_id, group.group_id if group else report.report_id)
            repository.save_state(report)
            uow.publish(
                PendingEvent(
                    REPORTING_REPORT,
                    caller.tenant,
                    "report",
                    report_id,
                    events_pb2.ReportLinked(
                        report_id=report_id,
                        child_id=child_id,
                        group_id=report.group_id or "",
                        situation_types=sorted(s.value for s in report.submission.situations),
                        urgency=messages.URGENCY[report.urgency]
                        if report.urgency
                        else reporting_pb2.URGENCY_UNSPECIFIED,
                    ),
                )
            )
            uow.commit()
            return report

    def _recent(self, uow: UnitOfWork, report: Report) -> list[ReportRecord]:
        since = report.received_at - GROUPING_WINDOW
        return list(
            uow.session.scalars(
                select(ReportRecord).where(
                    ReportRecord.tenant_id == uow.tenant,
                    ReportRecord.received_at >= since,
                    ReportRecord.id != report.report_id,
                    ReportRecord.group_id.is_not(None),
                )
            )
        )

    def _flag(self, caller: Principal, report_id: str, reason: str) -> Report:
        with self._database.unit_of_work(caller.tenant) as uow:
            repository = ReportRepository(uow.session, self._cipher, caller.tenant)
            row = repository.record(report_id)
            assert row is not None, "the report was stored in this tenant a moment ago"
            report = repository.to_domain(row)
            report.flag_for_attention(reason)
            repository.save_state(report)
            uow.commit()
            return report

    # -- reading --------------------------------------------------------------------------------------------

    def get(self, report_id: str) -> StoredReport:
        caller = current_principal()
        if caller.role not in READER_ROLES:
            raise errors.PermissionDenied("only township and district staff read reports")
        with self._database.unit_of_work(caller.tenant) as uow:
            repository = ReportRepository(uow.session, self._cipher, caller.tenant)
            row = repository.record(report_id)
            if row is None:
                raise errors.NotFound("no such report in this town")
            return StoredReport(repository.to_domain(row), row.crisis, tuple(row.triage_reasons))

    def list_recent(self, page_size: int) -> list[StoredReport]:
        caller = current_principal()
        if caller.role not in READER_ROLES:
            raise errors.PermissionDenied("only township and district staff read reports")
        with self._database.unit_of_work(caller.tenant) as uow:
            repository = ReportRepository(uow.session, self._cipher, caller.tenant)
            rows = uow.session.scalars(
                select(ReportRecord)
                .where(ReportRecord.tenant_id == caller.tenant)
                .order_by(ReportRecord.received_at.desc())
                .limit(min(max(page_size or 50, 1), 200))
            )
            return [StoredReport(repository.to_domain(row), row.crisis, tuple(row.triage_reasons)) for row in rows]

    def lookup_receipt(self, text: str, client: str) -> ReporterView:
        """Public: status and outcome notice for a receipt, and nothing about the child or family."""
        self._limiter.acquire(client, time.monotonic())
        receipt = parse_receipt(text)
        digest = self._blind_index.digest(receipt, field=RECEIPT_FIELD)
        with self._database.platform_session() as session:
            found = session.get(ReceiptRecord, digest)
            if found is None:
                raise errors.NotFound("no report has this receipt number")
            tenant, report_id = found.tenant_id, found.report_id
        with self._database.unit_of_work(tenant) as uow:
            repository = ReportRepository(uow.session, self._cipher, tenant)
            row = repository.record(report_id)
            if row is None:
                raise errors.NotFound("no report has this receipt number")
            return reporter_view(repository.to_domain(row, receipt=receipt))
