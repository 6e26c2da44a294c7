"""The reporting use cases: intake, triage and crisis, linking to the register, time limits, receipts.

A report is stored (with its events, crisis included) in one transaction BEFORE anything downstream is
asked, so a registry outage can delay linking but never lose a report or hold back a crisis.

The use cases see the store only through its ports (`ReportStore`, a unit of work per transaction with its
`ReportRepository`) and emit domain events (`domain/events.py`): no SQL and no protobuf here, so they are
unit-tested on in-memory fakes.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.db import utcnow
from platform_runtime.pii import BlindIndex
from platform_runtime.tenancy import current_principal
from services.reporting.domain import errors as domain_errors
from services.reporting.domain import events, receipt_sending
from services.reporting.domain.deadlines import Deadline, Milestone, deadlines_for, reach
from services.reporting.domain.grouping import GroupingFacts, find_group
from services.reporting.domain.model import AgencyKind, Channel, PersonTriage, Report, ReportStatus, Submission
from services.reporting.domain.receipts import (
    ReporterView,
    TokenBucketLimiter,
    new_receipt,
    parse_receipt,
    reporter_view,
)
from services.reporting.domain.triage import (
    DEFAULT_RULE_SET,
    DEFAULT_TENANT,
    TriageRuleSet,
    select_rule_set,
    triage,
)
from services.reporting.domain.validation import validate_submission
from services.reporting.service_layer.ports import (
    ChildCandidate,
    ChildDirectory,
    ChildDirectoryUnavailable,
    DuplicateReport,
    ReportEntry,
    ReportingUnitOfWork,
    ReportRead,
    ReportStore,
)
from services.reporting.service_layer.views import StoredReport, SubmitOutcome

RECEIPT_FIELD = "receipt"
GROUPING_WINDOW = timedelta(days=30)
EXTERNAL_REFERENCE_MAX_CHARS = 64
BREACHES_PER_ROUND = 200  # per town and check; the rest are found by the next check

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
AGENCY_ROLES = frozenset({Role.AGENCY_SYSTEM, Role.AGENCY_OFFICER})
# Township and district staff read reports and handle them: link, record milestones, notify, close.
READER_ROLES = frozenset({Role.CASEWORKER, Role.TOWN_ADMIN, Role.DISTRICT_OFFICER})
AUDIT_READER_ROLES = frozenset({Role.TOWN_ADMIN, Role.DISTRICT_OFFICER})
# A read of the narrative or the reporter names its purpose, as a case-file read does (the registry's limits).
MIN_PURPOSE_CHARS = 4
MAX_PURPOSE_CHARS = 500
# Public reports are linked by a person: an anonymous caller must not trigger a search of the register.
AUTO_LINK_ROLES = frozenset(CHANNELS_BY_ROLE) - {Role.PUBLIC}
# Nobody has checked what the public web form sends: a person triages it before any agency acts on it.
PERSON_TRIAGE_ROLES = frozenset({Role.PUBLIC})


class ReportingService:
    def __init__(
        self,
        store: ReportStore,
        blind_index: BlindIndex,
        children: ChildDirectory,
        *,
        auto_link_threshold: float = 0.9,
        receipt_lookups_per_minute: int = 10,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
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
        submission = _as_own_agency(caller, submission)
        now = self._now()
        _validate(submission, now, caller.tenant)
        reference = _scoped_reference(caller, external_reference)
        if reference and (first := self._resubmitted(caller.tenant, submission.channel, reference)):
            return first  # an agency system resending a report gets the first one back, not a duplicate
        with self._store.unit_of_work(caller.tenant) as uow:
            decision = triage(submission, select_rule_set(uow.reports.triage_rule_sets(), caller.tenant, now))
            receipt = new_receipt()
            report = Report(
                report_id=uuid.uuid4().hex,
                tenant_id=caller.tenant,
                receipt=receipt,
                received_at=now,
                submission=submission,
                person_triage=PersonTriage.AWAITING if caller.role in PERSON_TRIAGE_ROLES else None,
            )
            report.record_triage(decision.urgency, decision.rule_codes)
            uow.reports.add(
                report,
                submitted_by=caller.user_id,
                reasons=decision.reasons,
                crisis=decision.crisis is not None,
                reference=reference,
                deadlines=deadlines_for(now, decision.urgency),
                receipt_digest=self._blind_index.digest(receipt, field=RECEIPT_FIELD),
            )
            if (to := receipt_sending.destination(submission)) is not None:
                uow.reports.queue_receipt(report.report_id, receipt, to, now)  # notify is asked after the commit
            for event in events.submitted(report, decision):
                uow.emit(event)
            try:
                uow.commit()
            except DuplicateReport:
                # The same agency report arrived twice at once and the other copy was stored first.
                first = self._resubmitted(caller.tenant, submission.channel, reference) if reference else None
                if first is None:
                    raise
                return first
        try:
            if caller.role in AUTO_LINK_ROLES:
                stored = self._link_automatically(caller, report)
            else:
                stored = self._flag(caller, report.report_id, "public report: a person links it to a child")
        except errors.ConcurrentUpdate:
            stored = self._read(caller.tenant, report.report_id)  # a person linked it meanwhile: theirs stands
        return SubmitOutcome(stored, receipt)

    def _resubmitted(self, tenant: str, channel: Channel, reference: str) -> SubmitOutcome | None:
        with self._store.unit_of_work(tenant) as uow:
            entry = uow.reports.by_external_reference(channel, reference)
            return None if entry is None else SubmitOutcome(self._stored(uow, entry), "")

    # -- linking to the register ----------------------------------------------------------------------------

    def _link_automatically(self, caller: Principal, report: Report) -> StoredReport:
        submission = report.submission
        try:
            candidates = self._children.match(submission.child, submission.place)
            strong = [c for c in candidates if c.score >= self._auto_link_threshold]
            if len(strong) == 1:
                child_id = strong[0].child_id
            elif candidates:
                # Several likely children (twins, a common name): a person tells them apart.
                return self._flag(caller, report.report_id, f"{len(candidates)} possible children: confirm which one")
            else:
                child_id = self._children.register_provisional(submission.child, submission.place)
        except ChildDirectoryUnavailable as exc:
            return self._flag(caller, report.report_id, f"not linked to a child yet: {exc}")
        return self._link(caller.tenant, report.report_id, child_id)

    def list_link_candidates(self, report_id: str) -> list[ChildCandidate]:
        """The register's candidates for a report's child, found again on behalf of the staff caller."""
        report = self.get(report_id).report
        try:
            return self._children.match(report.submission.child, report.submission.place)
        except ChildDirectoryUnavailable as exc:
            raise errors.Conflict(f"the register cannot be searched now, try again: {exc}") from exc

    def confirm_link(self, report_id: str, child_id: str, expected_version: int | None = None) -> StoredReport:
        """A person says which child of the register the report concerns (having read `expected_version`)."""
        caller = _staff()
        if not child_id.strip():
            raise domain_errors.InvalidInput.single("child_id", "is required")
        try:
            current = self._children.current_id(child_id.strip())
        except ChildDirectoryUnavailable as exc:
            raise errors.Conflict(f"the register cannot be reached now, try again: {exc}") from exc
        if current is None:
            raise errors.NotFound("no such child in this town's register")
        return self._link(caller.tenant, report_id, current, expected_version)

    def link_to_new_child(self, report_id: str, expected_version: int | None = None) -> StoredReport:
        """A person says the child is not in the register: register a provisional child and link the report."""
        stored = self.get(report_id)
        report = stored.report
        # Both before registering, so a refused link leaves no orphan child behind.
        _check_version(stored.version, expected_version)
        report.check_linkable()
        try:
            child_id = self._children.register_provisional(report.submission.child, report.submission.place)
        except ChildDirectoryUnavailable as exc:
            raise errors.Conflict(f"the register cannot be reached now, try again: {exc}") from exc
        return self._link(current_principal().tenant, report_id, child_id, expected_version)

    def _link(self, tenant: str, report_id: str, child_id: str, expected_version: int | None = None) -> StoredReport:
        """Tie a report to a child and group it with the recent reports about the same child.

        Two links of one report at once (two people, or a person and the automatic link): the report's version
        lets one through; the other gets ConcurrentUpdate, or Conflict if it read the report already linked."""
        with self._store.unit_of_work(tenant) as uow:
            entry = _entry(uow, report_id)
            _check_version(entry.version, expected_version)
            report = entry.report
            # Only reports linked to the same child are grouped with it.
            others = uow.reports.linked_to_child(
                child_id, since=report.received_at - GROUPING_WINDOW, excluding=report.report_id
            )
            group = find_group(
                replace(GroupingFacts.of(report), child_id=child_id), [GroupingFacts.of(other) for other in others]
            )
            report.link(child_id, group.group_id if group else report.report_id)
            uow.reports.save(report)
            uow.emit(events.linked(report))
            uow.commit()
            return self._stored(uow, entry)

    def _flag(self, caller: Principal, report_id: str, reason: str) -> StoredReport:
        return self._change_as(caller, report_id, lambda report: report.flag_for_attention(reason))

    # -- a person's triage of public reports ----------------------------------------------------------------

    def decide_triage(self, report_id: str, confirmed: bool, expected_version: int | None = None) -> StoredReport:
        """A person on duty confirms a report from the public (its agency referrals open now) or rejects it."""
        caller = _staff()
        with self._store.unit_of_work(caller.tenant) as uow:
            entry = _entry(uow, report_id)
            _check_version(entry.version, expected_version)
            report = entry.report
            report.decide_triage(confirmed)
            uow.reports.save(report)
            if confirmed:
                uow.emit(events.triage_confirmed(report, entry.crisis))
            uow.commit()
            return self._stored(uow, entry)

    # -- time limits ----------------------------------------------------------------------------------------

    def record_milestone(self, report_id: str, milestone: Milestone, at: datetime | None = None) -> StoredReport:
        """Staff reached a milestone (now, or at an earlier `at`); one reached late announces its breach."""
        caller = _staff()
        now = self._now()
        with self._store.unit_of_work(caller.tenant) as uow:
            entry = _entry(uow, report_id)
            report = entry.report
            if report.status is ReportStatus.CLOSED:
                raise errors.Conflict("the report is closed")
            current = uow.reports.deadlines([report_id], lock=True).get(report_id, ())
            reached = reach(current, milestone, at or now, received_at=report.received_at, now=now)
            for before, after in zip(current, reached, strict=True):
                if before.completed_at is None and after.completed_at is not None:
                    uow.reports.complete_deadline(report_id, after.milestone, after.completed_at, by=caller.user_id)
                self._announce_breach(uow, report, after, now)
            if report.status is ReportStatus.LINKED:
                report.start_handling()  # someone is working on it now
            uow.reports.save(report)
            uow.commit()
            return self._stored(uow, entry)

    def tenants_with_reports(self) -> list[str]:
        """Every town that has reports; the periodic deadline check goes through them one by one."""
        return self._store.tenants_with_reports()

    def raise_breaches_of(self, tenant: str) -> int:
        """Announce the town's missed time limits not announced yet (DeadlineBreached): once per report and
        milestone. Run periodically by a worker; replicas may run it at the same time (the time limits are
        locked, and a replica skips those another one holds). Returns how many breaches were announced.
        """
        now = self._now()
        with self._store.unit_of_work(tenant) as uow:
            due = uow.reports.due_breaches(now, BREACHES_PER_ROUND)
            raised = sum(self._announce_breach(uow, report, deadline, now) for report, deadline in due)
            uow.commit()
            return raised

    def _announce_breach(self, uow: ReportingUnitOfWork, report: Report, deadline: Deadline, now: datetime) -> bool:
        """Emit DeadlineBreached if the deadline is missed and not announced yet; the caller holds its lock."""
        breach = deadline.breach_to_raise(now)
        if breach is None:
            return False
        uow.reports.mark_breach_raised(report.report_id, deadline.milestone, now)
        uow.emit(events.deadline_breached(report, breach))
        return True

    # -- telling the reporter and closing -------------------------------------------------------------------

    def give_outcome_notice(self, report_id: str, text: str) -> StoredReport:
        return self._change(report_id, lambda report: report.give_outcome_notice(text))

    def close(self, report_id: str) -> StoredReport:
        return self._change(report_id, Report.close)

    def _change(self, report_id: str, change: Callable[[Report], None]) -> StoredReport:
        return self._change_as(_staff(), report_id, change)

    def _change_as(self, caller: Principal, report_id: str, change: Callable[[Report], None]) -> StoredReport:
        with self._store.unit_of_work(caller.tenant) as uow:
            entry = _entry(uow, report_id)
            change(entry.report)
            uow.reports.save(entry.report)
            uow.commit()
            return self._stored(uow, entry)

    # -- reading --------------------------------------------------------------------------------------------

    def get(self, report_id: str) -> StoredReport:
        """The report for lists and handling; callers show it without narrative or reporter (see `read`)."""
        return self._read(_staff().tenant, report_id)

    def read(self, report_id: str, purpose: str) -> StoredReport:
        """The report to be shown whole (narrative, and the reporter to roles that see reporters); the read is
        logged with its purpose, in the same transaction, or the report is not shown."""
        caller = _staff()
        purpose = _purpose(purpose)
        with self._store.unit_of_work(caller.tenant) as uow:
            stored = self._stored(uow, _entry(uow, report_id))
            uow.reports.record_read(
                ReportRead(
                    report_id, self._now(), caller.user_id, caller.role.value, purpose, caller.can_see_reporter()
                )
            )
            uow.commit()
        return stored

    def reads(self, report_id: str, *, page_size: int = 0, page_token: str = "") -> tuple[list[ReportRead], str]:
        """Who read the report, when and why, oldest first, a page at a time: for the town's administrators and
        the district."""
        caller = _staff()
        if caller.role not in AUDIT_READER_ROLES:
            raise errors.PermissionDenied("only administrators see who read a report")
        with self._store.unit_of_work(caller.tenant) as uow:
            _entry(uow, report_id)
            return uow.reports.reads(report_id, page_size=page_size, page_token=page_token)

    def triage_rule_sets(self) -> tuple[list[TriageRuleSet], TriageRuleSet]:
        """The sets that apply to the caller's town (its own, the shared, the built-in default), newest first,
        and the one in effect now."""
        caller = _staff()
        with self._store.unit_of_work(caller.tenant) as uow:
            recorded = uow.reports.triage_rule_sets()
        in_effect = select_rule_set(recorded, caller.tenant, self._now())
        sets = sorted(recorded, key=lambda s: (s.tenant == DEFAULT_TENANT, s.effective_from, s.version), reverse=True)
        return [*sets, DEFAULT_RULE_SET], in_effect

    def _read(self, tenant: str, report_id: str) -> StoredReport:
        with self._store.unit_of_work(tenant) as uow:
            return self._stored(uow, _entry(uow, report_id))

    def list_recent(self, page_size: int) -> list[StoredReport]:
        caller = _staff()
        now = self._now()
        with self._store.unit_of_work(caller.tenant) as uow:
            entries = uow.reports.recent(min(max(page_size or 50, 1), 200))
            deadlines = uow.reports.deadlines(entry.report.report_id for entry in entries)
            return [
                StoredReport(
                    entry.report,
                    entry.crisis,
                    entry.reasons,
                    deadlines.get(entry.report.report_id, ()),
                    now,
                    entry.version,
                )
                for entry in entries
            ]

    def _stored(self, uow: ReportingUnitOfWork, entry: ReportEntry) -> StoredReport:
        """The report as it stands in `uow` (after a commit: as committed, with its new version)."""
        report_id = entry.report.report_id
        return StoredReport(
            entry.report,
            entry.crisis,
            entry.reasons,
            uow.reports.deadlines([report_id]).get(report_id, ()),
            self._now(),
            uow.reports.version(report_id),
        )

    def lookup_receipt(self, text: str, client: str) -> ReporterView:
        """Public: status and outcome notice for a receipt, and nothing about the child or family."""
        self._limiter.acquire(client, time.monotonic())
        receipt = parse_receipt(text)
        found = self._store.receipt(self._blind_index.digest(receipt, field=RECEIPT_FIELD))
        if found is None:
            raise errors.NotFound("no report has this receipt number")
        tenant, report_id = found
        with self._store.unit_of_work(tenant) as uow:
            entry = uow.reports.get(report_id)
            if entry is None:
                raise errors.NotFound("no report has this receipt number")
            return reporter_view(replace(entry.report, receipt=receipt))


def _staff() -> Principal:
    caller = current_principal()
    if caller.role not in READER_ROLES:
        raise errors.PermissionDenied("only township and district staff read and handle reports")
    return caller


def _check_version(current: int, expected: int | None) -> None:
    if expected is not None and current != expected:
        raise errors.ConcurrentUpdate(
            f"the report was changed by someone else since you read it (version {expected}, now {current}): "
            "reload it and try again"
        )


def _purpose(purpose: str) -> str:
    purpose = purpose.strip()
    if len(purpose) < MIN_PURPOSE_CHARS:
        raise errors.InvalidInput("say why you open this report (it is recorded)", "purpose")
    if len(purpose) > MAX_PURPOSE_CHARS:
        raise errors.InvalidInput(f"must be at most {MAX_PURPOSE_CHARS} characters", "purpose")
    return purpose


def _entry(uow: ReportingUnitOfWork, report_id: str) -> ReportEntry:
    entry = uow.reports.get(report_id)
    if entry is None:
        raise errors.NotFound("no such report in this town")
    return entry


def _validate(submission: Submission, now: datetime, tenant: str) -> None:
    """Every problem at once: the report's own and whether it happened in the caller's town."""
    problems: list[domain_errors.Violation] = []
    try:
        validate_submission(submission, now)
    except domain_errors.InvalidInput as invalid:
        problems += invalid.violations
    problems += receipt_sending.problems(submission)
    if not submission.place.division_code.startswith(tenant):
        problems.append(domain_errors.Violation("division_code", f"must lie within town {tenant}"))
    if problems:
        raise domain_errors.InvalidInput(problems)


def _as_own_agency(caller: Principal, submission: Submission) -> Submission:
    """An agency's system or officer reports as the agency its token names, whatever the request says."""
    if caller.role not in AGENCY_ROLES:
        return submission
    try:
        own = AgencyKind(caller.agency)
    except ValueError:
        raise errors.PermissionDenied("an agency's token must name a known agency") from None
    if submission.reporter is None:
        return submission  # validation says what is missing
    if submission.reporter.agency not in (None, own):
        raise domain_errors.InvalidInput.single("reporter.agency", f"must be your own agency ({own.value})")
    return replace(submission, reporter=replace(submission.reporter, agency=own))


def _scoped_reference(caller: Principal, reference: str) -> str:
    reference = reference.strip()
    if len(reference) > EXTERNAL_REFERENCE_MAX_CHARS:
        raise domain_errors.InvalidInput.single(
            "external_reference", f"must be at most {EXTERNAL_REFERENCE_MAX_CHARS} characters"
        )
    if not reference:
        return ""
    # Two agencies may number their cases alike: a reference is unique within the submitting agency.
    if caller.agency:
        return f"{caller.agency}/{reference}"
    # A public caller's token is new with every report: their keys are unique within the public channel
    # (the gateway mints them unguessable, and shows a public caller nothing of the report but the receipt).
    if caller.role is Role.PUBLIC:
        return f"public/{reference}"
    # A person's idempotency key (the portal's) is theirs alone: another user's key never finds their report.
    return f"user:{hashlib.sha256(caller.user_id.encode()).hexdigest()[:16]}/{reference}"
