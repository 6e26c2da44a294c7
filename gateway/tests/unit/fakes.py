"""In-process stand-ins for the services: they record who called with what and answer from memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import timestamp_pb2
from minorprot.benefits.v1 import benefits_pb2
from minorprot.notify.v1 import notify_pb2
from minorprot.referral.v1 import referral_pb2
from minorprot.registry.v1 import casework_pb2, registry_pb2, survey_pb2
from minorprot.reporting.v1 import crisis_steps_pb2, reporting_pb2

from gateway.clients import (
    BENEFITS_METHODS,
    CASEWORK_METHODS,
    NOTIFY_METHODS,
    REFERRAL_METHODS,
    BackendError,
    Caller,
)
from platform_runtime.errors import FieldViolation

RECEIPT = "R-T242F2X-Q4KERV3-R7HPCPW"


def stamp(seconds: int = 1_750_000_000) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


@dataclass
class FakeBackends:
    calls: list[tuple[str, Caller, Any]] = field(default_factory=list)
    reports: list[reporting_pb2.Report] = field(default_factory=list)
    report_reads: list[reporting_pb2.ReportRead] = field(default_factory=list)
    crisis_steps: list[crisis_steps_pb2.CrisisStep] = field(default_factory=list)
    towns: list[registry_pb2.Tenant] = field(
        default_factory=lambda: [registry_pb2.Tenant(code="110111008", name="良乡镇", district_code="110111")]
    )
    inbox: list[notify_pb2.Notification] = field(default_factory=list)
    fail: dict[str, BackendError] = field(default_factory=dict)  # method name -> error to raise
    children: list[registry_pb2.Child] = field(default_factory=list)
    case_files: dict[str, registry_pb2.CaseFile] = field(default_factory=dict)
    villages: list[registry_pb2.Village] = field(
        default_factory=lambda: [registry_pb2.Village(code="110111008201", name="东关村")]
    )
    changes: list[casework_pb2.ChangeEntry] = field(default_factory=list)
    merged: dict[str, registry_pb2.CaseFile] = field(default_factory=dict)  # merged id -> its own case file
    survey_imports: list[survey_pb2.SurveyImport] = field(default_factory=list)
    audit: list[registry_pb2.AuditEntry] = field(default_factory=list)
    survey_rows: dict[str, list[survey_pb2.SurveyRowResult]] = field(default_factory=dict)
    referral_replies: dict[str, Any] = field(default_factory=dict)  # referral RPC name -> its reply

    def _record(self, name: str, caller: Caller, request: Any) -> None:
        self.calls.append((name, caller, request))
        if name in self.fail:
            raise self.fail[name]

    def last(self, name: str) -> tuple[Caller, Any]:
        found = [(caller, request) for method, caller, request in self.calls if method == name]
        assert found, f"{name} was not called"
        return found[-1]

    def submit_report(self, caller: Caller, request: reporting_pb2.SubmitReportRequest) -> Any:
        self._record("submit_report", caller, request)
        report = reporting_pb2.Report(
            report_id=f"rep{len(self.reports) + 1}",
            tenant="110111008",
            channel=request.channel,
            status="triaged",
            urgency=reporting_pb2.URGENCY_CRISIS,
            child=request.child,
            division_code=request.division_code,
            place_text=request.place_text,
            occurred_at=request.occurred_at,
            received_at=stamp(),
            situation_types=request.situation_types,
            narrative=request.narrative,
            crisis=True,
            triage_reasons=["child wandering alone"],
        )
        self.reports.append(report)
        return reporting_pb2.SubmitReportResponse(report=report, receipt_number=RECEIPT)

    def list_reports(self, caller: Caller, page_size: int) -> list[reporting_pb2.Report]:
        self._record("list_reports", caller, page_size)
        return list(self.reports)

    def get_report(self, caller: Caller, report_id: str, purpose: str = "") -> reporting_pb2.Report:
        self._record("get_report", caller, (report_id, purpose))
        report = self._stored_report(report_id)
        if purpose and len(purpose.strip()) < 4:
            raise BackendError("INVALID_ARGUMENT", "say why you open this report (it is recorded)")
        if purpose:
            self.report_reads.append(reporting_pb2.ReportRead(actor="u1", role="caseworker", purpose=purpose))
            return report
        # As the service does: details only on a read that names its purpose.
        withheld = reporting_pb2.Report()
        withheld.CopyFrom(report)
        withheld.narrative = ""
        withheld.ClearField("reporter")
        withheld.details_withheld = True
        return withheld

    def _stored_report(self, report_id: str) -> reporting_pb2.Report:
        for report in self.reports:
            if report.report_id == report_id:
                return report
        raise BackendError("NOT_FOUND", "no such report in this town")

    def list_report_reads(
        self, caller: Caller, report_id: str, page_size: int = 0, page_token: str = ""
    ) -> reporting_pb2.ListReportReadsResponse:
        self._record("list_report_reads", caller, report_id)
        return reporting_pb2.ListReportReadsResponse(reads=self.report_reads)

    def list_crisis_steps(self, caller: Caller, report_id: str) -> list[crisis_steps_pb2.CrisisStep]:
        self._record("list_crisis_steps", caller, report_id)
        return list(self.crisis_steps)

    def lookup_receipt(self, caller: Caller, receipt_number: str) -> reporting_pb2.LookupReceiptResponse:
        self._record("lookup_receipt", caller, receipt_number)
        if receipt_number != RECEIPT:
            raise BackendError("NOT_FOUND", "no report has this receipt number")
        return reporting_pb2.LookupReceiptResponse(
            receipt_number=RECEIPT, received_at=stamp(), status="已受理", outcome_notice=""
        )

    def list_link_candidates(self, caller: Caller, report_id: str) -> list[reporting_pb2.LinkCandidate]:
        self._record("list_link_candidates", caller, report_id)
        self._stored_report(report_id)
        return [reporting_pb2.LinkCandidate(child_id="c7", score=0.74, reasons=["姓名相同 same name"], name="张小明")]

    def confirm_link(self, caller: Caller, report_id: str, child_id: str) -> reporting_pb2.Report:
        self._record("confirm_link", caller, (report_id, child_id))
        return self._change(caller, report_id, status="linked", child_id=child_id)

    def link_to_new_child(self, caller: Caller, report_id: str) -> reporting_pb2.Report:
        self._record("link_to_new_child", caller, report_id)
        return self._change(caller, report_id, status="linked", child_id="new-child")

    def record_milestone(self, caller: Caller, request: reporting_pb2.RecordMilestoneRequest) -> reporting_pb2.Report:
        self._record("record_milestone", caller, request)
        report = self._stored_report(request.report_id)
        report.deadlines.add(milestone=request.milestone, due_at=stamp(), completed_at=stamp())
        return report

    def give_outcome_notice(self, caller: Caller, report_id: str, text: str) -> reporting_pb2.Report:
        self._record("give_outcome_notice", caller, (report_id, text))
        return self._change(caller, report_id, outcome_notice=text)

    def close_report(self, caller: Caller, report_id: str) -> reporting_pb2.Report:
        self._record("close_report", caller, report_id)
        if not self._stored_report(report_id).outcome_notice:
            raise BackendError("FAILED_PRECONDITION", "give an outcome notice before closing the report")
        return self._change(caller, report_id, status="closed")

    def decide_triage(
        self, caller: Caller, report_id: str, confirmed: bool, expected_version: int | None
    ) -> reporting_pb2.Report:
        self._record("decide_triage", caller, (report_id, confirmed, expected_version))
        return self._change(caller, report_id, person_triage="confirmed" if confirmed else "rejected")

    def _change(self, caller: Caller, report_id: str, **fields: str) -> reporting_pb2.Report:
        report = self._stored_report(report_id)
        for name, value in fields.items():
            setattr(report, name, value)
        return report

    def get_case_file(self, caller: Caller, child_id: str, purpose: str) -> registry_pb2.CaseFile:
        self._record("get_case_file", caller, (child_id, purpose))
        if len(purpose) < 4:
            raise BackendError("INVALID_ARGUMENT", "say why you open this case file (it is recorded)")
        if child_id in self.case_files:
            return self.case_files[child_id]
        return registry_pb2.CaseFile(
            case_id="case1", child=registry_pb2.Child(child_id=child_id, legal_name="张小明"), status="identified"
        )

    # -- the register -----------------------------------------------------------------------------------------

    def add_child(self, name: str, **fields: Any) -> registry_pb2.Child:
        """A child in the fake register with its case file (what RegisterChild would have made)."""
        child = registry_pb2.Child(
            child_id=f"c{len(self.children) + 1:04d}", tenant="110111008", legal_name=name, **fields
        )
        self.children.append(child)
        self.case_files[child.child_id] = registry_pb2.CaseFile(
            case_id=f"case-{child.child_id}", child=child, status="identified"
        )
        return child

    def list_children(
        self, caller: Caller, request: registry_pb2.ListChildrenRequest
    ) -> registry_pb2.ListChildrenResponse:
        self._record("list_children", caller, request)
        found = [
            c
            for c in self.children
            if c.child_id > request.page_token
            and (not request.division_code or c.residence_division_code.startswith(request.division_code))
            and (not request.category or request.category in c.categories)
            and (not request.case_status or self.case_files[c.child_id].status == request.case_status)
            and (not request.visit_overdue or self.case_files[c.child_id].next_visit_due.year > 0)
        ]
        size = request.page_size or 50
        more = len(found) > size
        return registry_pb2.ListChildrenResponse(
            children=found[:size], next_page_token=found[size - 1].child_id if more else ""
        )

    def match_child(self, caller: Caller, request: registry_pb2.MatchChildRequest) -> list[registry_pb2.MatchCandidate]:
        self._record("match_child", caller, request)
        return [
            registry_pb2.MatchCandidate(child=c, score=0.9, reasons=["姓名相同 same name"])
            for c in self.children
            if request.name and c.legal_name == request.name
        ]

    def register_child(self, caller: Caller, request: registry_pb2.RegisterChildRequest) -> registry_pb2.Child:
        self._record("register_child", caller, request)
        if not request.legal_name:
            raise BackendError(
                "INVALID_ARGUMENT", "legal_name: required", (FieldViolation("legal_name", "姓名必填 required"),)
            )
        return self.add_child(request.legal_name, residence_division_code=request.residence_division_code)

    def update_child(self, caller: Caller, request: registry_pb2.UpdateChildRequest) -> registry_pb2.Child:
        self._record("update_child", caller, request)
        case = self.case_files[request.child_id]
        if request.HasField("expected_version") and request.expected_version != case.child.version:
            raise BackendError("ABORTED", "the child's record changed since you read it: reload and try again")
        for path in request.update_mask.paths:
            if path == "contact_person":
                case.child.contact_person.CopyFrom(request.contact_person)
            elif path == "birth_date":
                case.child.birth_date.CopyFrom(request.birth_date)
            else:
                setattr(case.child, path, getattr(request, path))
        case.child.version += 1
        return case.child

    def list_villages(self, caller: Caller, include_retired: bool = False) -> list[registry_pb2.Village]:
        self._record("list_villages", caller, include_retired)
        return [v for v in self.villages if include_retired or not v.retired]

    def set_villages(self, caller: Caller, villages: list[registry_pb2.Village]) -> registry_pb2.SetVillagesResponse:
        self._record("set_villages", caller, villages)
        bad = [v for v in villages if not (v.code.isdigit() and len(v.code) == 12 and v.code.startswith("110111008"))]
        if bad:
            raise BackendError(
                "INVALID_ARGUMENT",
                "villages: bad code",
                (FieldViolation("villages", f"{bad[0].code}: 12 digits of this town"),),
            )
        listed = {v.code for v in villages}
        retired = [
            registry_pb2.Village(code=v.code, name=v.name, retired=True) for v in self.villages if v.code not in listed
        ]
        self.villages = [*villages, *retired]
        return registry_pb2.SetVillagesResponse(villages=self.villages, retired=len(retired))

    def list_triage_rule_sets(self, caller: Caller) -> reporting_pb2.ListTriageRuleSetsResponse:
        self._record("list_triage_rule_sets", caller, None)
        rule = reporting_pb2.TriageRuleInfo(
            code="CRISIS_WANDERING_YOUNG",
            urgency=reporting_pb2.URGENCY_CRISIS,
            reason="a young child wandering alone",
            any_of_situations=["wandering"],
            all_of_facts=["child_alone"],
            under_age=10,
        )
        return reporting_pb2.ListTriageRuleSetsResponse(
            rule_sets=[
                reporting_pb2.TriageRuleSetInfo(version=2, tenant="110111008", in_effect=True, rules=[rule]),
                reporting_pb2.TriageRuleSetInfo(version=1, tenant="*", built_in=True, rules=[rule]),
            ],
            legal_minimum=reporting_pb2.TriageRuleInfo(
                code="URGENT_MANDATORY_REPORTING", urgency=reporting_pb2.URGENCY_URGENT
            ),
        )

    def list_audit_entries(
        self, caller: Caller, request: registry_pb2.ListAuditEntriesRequest
    ) -> registry_pb2.ListAuditEntriesResponse:
        self._record("list_audit_entries", caller, request)
        return registry_pb2.ListAuditEntriesResponse(entries=self.audit, next_page_token="")

    def register_statistics(self, caller: Caller, town_code: str) -> registry_pb2.GetRegisterStatisticsResponse:
        self._record("register_statistics", caller, town_code)
        town = town_code or "110111008"
        if not town.startswith("110111"):
            raise BackendError("NOT_FOUND", "no such town in your district")
        by_category: dict[str, int] = {}
        by_village: dict[str, int] = {}
        mine = [c for c in self.children if c.tenant == town]
        for child in mine:
            by_village[child.residence_division_code] = by_village.get(child.residence_division_code, 0) + 1
            for category in child.categories:
                by_category[category] = by_category.get(category, 0) + 1

        def pairs(counts: dict[str, int]) -> list[registry_pb2.KeyCount]:
            return [registry_pb2.KeyCount(key=k, count=v) for k, v in sorted(counts.items())]

        return registry_pb2.GetRegisterStatisticsResponse(
            town_code=town,
            children=len(mine),
            by_category=pairs(by_category),
            by_village=pairs(by_village),
            by_case_status=pairs({"identified": len(mine)} if mine else {}),
            overdue_visits=2 if mine else 0,
            overdue_plan_actions=1 if mine else 0,
        )

    # -- the survey: a CSV of "name,problem" lines; a row with a problem is rejected ---------------------------

    def survey_template(self, caller: Caller) -> survey_pb2.GetSurveyTemplateResponse:
        self._record("survey_template", caller, None)
        return survey_pb2.GetSurveyTemplateResponse(file_name="排查摸底模板.xlsx", content=b"PK-template")

    def import_survey(
        self,
        caller: Caller,
        options: survey_pb2.SurveyImportOptions,
        content: bytes,
        on_progress: Callable[[survey_pb2.ImportSurveyResponse], None],
    ) -> survey_pb2.SurveyImportSummary:
        self._record("import_survey", caller, (options, content))
        lines = [line.split(",") for line in content.decode().splitlines() if line]
        results = []
        for number, cells in enumerate(lines, start=2):
            problem = cells[1] if len(cells) > 1 else ""
            results.append(
                survey_pb2.SurveyRowResult(
                    row_number=number,
                    outcome=survey_pb2.SURVEY_ROW_OUTCOME_REJECTED
                    if problem
                    else survey_pb2.SURVEY_ROW_OUTCOME_ACCEPTED,
                    problems=[survey_pb2.SurveyRowProblem(column="出生日期", field="birth_date", reason=problem)]
                    if problem
                    else [],
                )
            )
            on_progress(survey_pb2.ImportSurveyResponse(rows_done=len(results), rows_total=len(lines)))
        import_id = f"imp{len(self.survey_imports) + 1}"
        rejected = sum(1 for r in results if r.outcome == survey_pb2.SURVEY_ROW_OUTCOME_REJECTED)
        summary = survey_pb2.SurveyImportSummary(
            import_id=import_id,
            dry_run=options.dry_run,
            rows=len(results),
            accepted=len(results) - rejected,
            rejected=rejected,
        )
        self.survey_rows[import_id] = results
        self.survey_imports.insert(
            0,
            survey_pb2.SurveyImport(
                import_id=import_id,
                file_name=options.file_name,
                dry_run=options.dry_run,
                status=survey_pb2.SURVEY_IMPORT_STATUS_FINISHED,
                rows=summary.rows,
                accepted=summary.accepted,
                rejected=rejected,
            ),
        )
        return summary

    def list_survey_imports(self, caller: Caller, page_size: int) -> list[survey_pb2.SurveyImport]:
        self._record("list_survey_imports", caller, page_size)
        return list(self.survey_imports)

    def list_survey_import_rows(
        self, caller: Caller, request: survey_pb2.ListSurveyImportRowsRequest
    ) -> survey_pb2.ListSurveyImportRowsResponse:
        self._record("list_survey_import_rows", caller, request)
        if request.import_id not in self.survey_rows:
            raise BackendError("NOT_FOUND", "no such import in this town")
        rows = [r for r in self.survey_rows[request.import_id] if not request.outcomes or r.outcome in request.outcomes]
        return survey_pb2.ListSurveyImportRowsResponse(rows=rows)

    def export_register(self, caller: Caller, request: survey_pb2.ExportRegisterRequest) -> tuple[str, bytes]:
        self._record("export_register", caller, request)
        if len(request.purpose) < 4:
            raise BackendError("INVALID_ARGUMENT", "purpose: say why the register is read (at least 4 characters)")
        return "分类台账.xlsx", b"PK-register"

    def merge_children(self, caller: Caller, surviving_id: str, merged_id: str, reason: str) -> registry_pb2.Child:
        self._record("merge_children", caller, (surviving_id, merged_id, reason))
        if not reason:
            raise BackendError(
                "INVALID_ARGUMENT", "reason: say why (it is recorded)", (FieldViolation("reason", "say why"),)
            )
        merged = self.case_files[merged_id]
        self.children = [c for c in self.children if c.child_id != merged_id]
        survivor = self.case_files[surviving_id]
        survivor.merged_child_ids.append(merged_id)
        self.case_files[merged_id] = survivor
        self.merged[merged_id] = merged
        return survivor.child

    def unmerge_children(self, caller: Caller, merged_id: str, reason: str) -> registry_pb2.Child:
        self._record("unmerge_children", caller, (merged_id, reason))
        if merged_id not in self.merged:
            raise BackendError("FAILED_PRECONDITION", "this record is not merged")
        restored = self.merged.pop(merged_id)
        survivor = self.case_files[merged_id]
        survivor.merged_child_ids.remove(merged_id)
        self.case_files[merged_id] = restored
        self.children.append(restored.child)
        return restored.child

    def casework(self, caller: Caller, method: str, request: Any) -> Any:
        expected = CASEWORK_METHODS[method]
        assert isinstance(request, expected), (method, request)
        self._record(method, caller, request)
        child_id = getattr(request, "child_id", "")
        case = self.case_files.get(child_id)
        if method == "RecordVisit" and case is not None:
            case.visits.insert(0, registry_pb2.Visit(visit_id="v1", child_id=child_id, findings=request.findings))
        if method == "AssignCase" and case is not None:
            for name in ("responsible_person", "social_worker", "child_director"):
                setattr(case, name, getattr(request, name))
                setattr(
                    case,
                    f"{name.replace('_person', '')}_user_id",
                    getattr(request, f"{name.replace('_person', '')}_user_id"),
                )
        if method == "ChangeCaseStatus" and case is not None:
            case.status = request.status
        return None

    def list_changes(
        self, caller: Caller, request: casework_pb2.ListChangesRequest
    ) -> casework_pb2.ListChangesResponse:
        self._record("list_changes", caller, request)
        return casework_pb2.ListChangesResponse(changes=self.changes)

    def list_tenants(self, caller: Caller, district_code: str) -> list[registry_pb2.Tenant]:
        self._record("list_tenants", caller, district_code)
        return [town for town in self.towns if town.district_code == district_code]

    def referral(self, caller: Caller, method: str, request: Any) -> Any:
        _service, expected, reply = REFERRAL_METHODS[method]
        assert isinstance(request, expected), (method, request)
        self._record(method, caller, request)
        return self.referral_replies.get(method) or reply()

    def list_referrals(self, caller: Caller, child_id: str, report_id: str) -> list[referral_pb2.Referral]:
        self._record("list_referrals", caller, (child_id, report_id))
        return [referral_pb2.Referral(referral_id="ref1", agency_name="区公安局", status="open", opened_at=stamp())]

    def list_inbox(self, caller: Caller, unread_only: bool) -> list[notify_pb2.Notification]:
        self._record("list_inbox", caller, unread_only)
        return list(self.inbox)

    def mark_read(self, caller: Caller, notification_id: str) -> notify_pb2.Notification:
        self._record("mark_read", caller, notification_id)
        for notification in self.inbox:
            if notification.notification_id == notification_id:
                notification.read_at.CopyFrom(stamp())
                return notification
        raise BackendError("NOT_FOUND", "no such notification")

    def notify(self, caller: Caller, method: str, request: Any) -> Any:
        """Records the call; replies with the method's empty response (the notifications pages are tested in
        the browser against the real service)."""
        assert isinstance(request, NOTIFY_METHODS[method]), (method, request)
        self._record(method, caller, request)
        return getattr(notify_pb2, f"{method}Response")()

    def benefits(self, caller: Caller, method: str, request: Any) -> Any:
        """Records the call; replies with the method's empty response (the benefits views are tested in the
        browser against the real service)."""
        assert isinstance(request, BENEFITS_METHODS[method]), (method, request)
        self._record(method, caller, request)
        return getattr(benefits_pb2, f"{method}Response")()

    def close(self) -> None:
        pass
