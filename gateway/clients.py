"""The services, as the gateway calls them: one typed method per RPC the portal uses.

Every call carries a short-lived token for the person behind it meant for the service called and no other
(`authorization: Bearer ...`, signed here, in one place: `_acting_for` and the channels' `bearer_channel`) and the
browser's address (`x-forwarded-for`), has a deadline, and turns a gRPC failure into `BackendError` with the
service's field violations, so views never see grpc. Tests pass an in-process fake with the same methods.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from minorprot.benefits.v1 import benefits_pb2, benefits_pb2_grpc
from minorprot.notify.v1 import notify_pb2, notify_pb2_grpc
from minorprot.referral.v1 import referral_pb2, referral_pb2_grpc, routing_pb2, routing_pb2_grpc
from minorprot.registry.v1 import (
    casework_pb2,
    casework_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    survey_pb2,
    survey_pb2_grpc,
)
from minorprot.reporting.v1 import crisis_steps_pb2, crisis_steps_pb2_grpc, reporting_pb2, reporting_pb2_grpc

from platform_runtime.auth import Principal, ServiceTokens
from platform_runtime.errors import FieldViolation
from platform_runtime.grpc_client import bearer_channel
from platform_runtime.settings import GrpcTls

VIOLATIONS_KEY = "x-field-violations-bin"


@dataclass(frozen=True)
class Caller:
    """On whose behalf a call is made (None for the one anonymous call, a receipt lookup) and the browser's address."""

    principal: Principal | None
    client_ip: str

    def metadata(self) -> list[tuple[str, str]]:
        return [("x-forwarded-for", self.client_ip)]


class BackendError(Exception):
    """A service said no (or was not there). `code` is the gRPC status name, e.g. INVALID_ARGUMENT."""

    def __init__(self, code: str, message: str, violations: tuple[FieldViolation, ...] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.violations = violations


class Backends(Protocol):
    def submit_report(
        self, caller: Caller, request: reporting_pb2.SubmitReportRequest
    ) -> reporting_pb2.SubmitReportResponse: ...

    def list_reports(self, caller: Caller, page_size: int) -> list[reporting_pb2.Report]: ...

    def get_report(self, caller: Caller, report_id: str, purpose: str = "") -> reporting_pb2.Report: ...

    def list_report_reads(
        self, caller: Caller, report_id: str, page_size: int = 0, page_token: str = ""
    ) -> reporting_pb2.ListReportReadsResponse: ...

    def list_crisis_steps(self, caller: Caller, report_id: str) -> list[crisis_steps_pb2.CrisisStep]: ...

    def lookup_receipt(self, caller: Caller, receipt_number: str) -> reporting_pb2.LookupReceiptResponse: ...

    def list_link_candidates(self, caller: Caller, report_id: str) -> list[reporting_pb2.LinkCandidate]: ...

    def confirm_link(self, caller: Caller, report_id: str, child_id: str) -> reporting_pb2.Report: ...

    def link_to_new_child(self, caller: Caller, report_id: str) -> reporting_pb2.Report: ...

    def record_milestone(
        self, caller: Caller, request: reporting_pb2.RecordMilestoneRequest
    ) -> reporting_pb2.Report: ...

    def give_outcome_notice(self, caller: Caller, report_id: str, text: str) -> reporting_pb2.Report: ...

    def close_report(self, caller: Caller, report_id: str) -> reporting_pb2.Report: ...

    def decide_triage(
        self, caller: Caller, report_id: str, confirmed: bool, expected_version: int | None
    ) -> reporting_pb2.Report: ...

    def get_case_file(self, caller: Caller, child_id: str, purpose: str) -> registry_pb2.CaseFile: ...

    def list_tenants(self, caller: Caller, district_code: str) -> list[registry_pb2.Tenant]: ...

    # The register and casework (gateway/views/register.py).

    def list_children(
        self, caller: Caller, request: registry_pb2.ListChildrenRequest
    ) -> registry_pb2.ListChildrenResponse: ...

    def match_child(
        self, caller: Caller, request: registry_pb2.MatchChildRequest
    ) -> list[registry_pb2.MatchCandidate]: ...

    def register_child(self, caller: Caller, request: registry_pb2.RegisterChildRequest) -> registry_pb2.Child: ...

    def update_child(self, caller: Caller, request: registry_pb2.UpdateChildRequest) -> registry_pb2.Child: ...

    def list_villages(self, caller: Caller, include_retired: bool = False) -> list[registry_pb2.Village]: ...

    def set_villages(
        self, caller: Caller, villages: list[registry_pb2.Village]
    ) -> registry_pb2.SetVillagesResponse: ...

    def list_triage_rule_sets(self, caller: Caller) -> reporting_pb2.ListTriageRuleSetsResponse: ...

    def list_audit_entries(
        self, caller: Caller, request: registry_pb2.ListAuditEntriesRequest
    ) -> registry_pb2.ListAuditEntriesResponse: ...

    def register_statistics(self, caller: Caller, town_code: str) -> registry_pb2.GetRegisterStatisticsResponse: ...

    def merge_children(self, caller: Caller, surviving_id: str, merged_id: str, reason: str) -> registry_pb2.Child: ...

    # The survey (gateway/views/survey.py).

    def survey_template(self, caller: Caller) -> survey_pb2.GetSurveyTemplateResponse: ...

    def import_survey(
        self,
        caller: Caller,
        options: survey_pb2.SurveyImportOptions,
        content: bytes,
        on_progress: Callable[[survey_pb2.ImportSurveyResponse], None],
    ) -> survey_pb2.SurveyImportSummary:
        """Streams the file to the registry; `on_progress` sees every progress message; the summary at the end."""
        ...

    def list_survey_imports(self, caller: Caller, page_size: int) -> list[survey_pb2.SurveyImport]: ...

    def list_survey_import_rows(
        self, caller: Caller, request: survey_pb2.ListSurveyImportRowsRequest
    ) -> survey_pb2.ListSurveyImportRowsResponse: ...

    def export_register(self, caller: Caller, request: survey_pb2.ExportRegisterRequest) -> tuple[str, bytes]: ...

    def unmerge_children(self, caller: Caller, merged_id: str, reason: str) -> registry_pb2.Child: ...

    def casework(self, caller: Caller, method: str, request: Any) -> Any:
        """One CaseworkService call by its RPC name (CASEWORK_METHODS): its reply as the service sent it."""
        ...

    def list_changes(
        self, caller: Caller, request: casework_pb2.ListChangesRequest
    ) -> casework_pb2.ListChangesResponse: ...

    def benefits(self, caller: Caller, method: str, request: Any) -> Any:
        """One BenefitsService call by its RPC name (BENEFITS_METHODS): its reply as the service sent it."""
        ...

    def referral(self, caller: Caller, method: str, request: Any) -> Any:
        """One call of the referral service by its RPC name (REFERRAL_METHODS; gateway/views/referrals.py)."""
        ...

    def list_referrals(self, caller: Caller, child_id: str, report_id: str) -> list[referral_pb2.Referral]: ...

    def list_inbox(self, caller: Caller, unread_only: bool) -> list[notify_pb2.Notification]: ...

    def mark_read(self, caller: Caller, notification_id: str) -> notify_pb2.Notification: ...

    def notify(self, caller: Caller, method: str, request: Any) -> Any:
        """One NotifyService call by its RPC name (NOTIFY_METHODS; gateway/views/notifications.py)."""
        ...

    def close(self) -> None: ...


# The CaseworkService calls the portal makes, by RPC name, with their request types (a view may call no other).
CASEWORK_METHODS: dict[str, type[Any]] = {
    "AddFamilyMember": casework_pb2.AddFamilyMemberRequest,
    "RemoveFamilyMember": casework_pb2.RemoveFamilyMemberRequest,
    "AddCategory": casework_pb2.AddCategoryRequest,
    "EndCategory": casework_pb2.EndCategoryRequest,
    "AssignCase": casework_pb2.AssignCaseRequest,
    "ChangeCaseStatus": casework_pb2.ChangeCaseStatusRequest,
    "RecordAssessment": casework_pb2.RecordAssessmentRequest,
    "AddPlanGoal": casework_pb2.AddPlanGoalRequest,
    "UpdatePlanGoal": casework_pb2.UpdatePlanGoalRequest,
    "AddPlanAction": casework_pb2.AddPlanActionRequest,
    "UpdatePlanAction": casework_pb2.UpdatePlanActionRequest,
    "RecordVisit": casework_pb2.RecordVisitRequest,
}

# The NotifyService calls the portal makes (gateway/views/notifications.py), by RPC name, with their request types.
NOTIFY_METHODS: dict[str, type[Any]] = {
    name: getattr(notify_pb2, f"{name}Request")
    for name in notify_pb2.DESCRIPTOR.services_by_name["NotifyService"].methods_by_name
}

# The BenefitsService calls the portal makes (gateway/views/benefits.py), by RPC name, with their request types.
BENEFITS_METHODS: dict[str, type[Any]] = {
    name: getattr(benefits_pb2, f"{name}Request")
    for name in benefits_pb2.DESCRIPTOR.services_by_name["BenefitsService"].methods_by_name
}


# The referral service's calls the portal makes (gateway/views/referrals.py), by RPC name: the service, the
# request and the reply types. Streams are for the agencies' own systems, not the portal.
_REFERRAL_STUBS: dict[str, Any] = {
    "ReferralService": referral_pb2_grpc.ReferralServiceStub,
    "AgencyService": referral_pb2_grpc.AgencyServiceStub,
    "AgencyCredentialService": referral_pb2_grpc.AgencyCredentialServiceStub,
    "RoutingAdminService": routing_pb2_grpc.RoutingAdminServiceStub,
}
REFERRAL_METHODS: dict[str, tuple[str, type[Any], type[Any]]] = {
    method.name: (service, getattr(module, method.input_type.name), getattr(module, method.output_type.name))
    for module in (referral_pb2, routing_pb2)
    for service, descriptor in module.DESCRIPTOR.services_by_name.items()
    for method in descriptor.methods
    if not method.server_streaming
}


# The person a call being made is for: the channels' interceptor signs (or reuses) their token for the service.
_acting_for: ContextVar[Principal | None] = ContextVar("acting_for", default=None)


@contextmanager
def _acting_for_caller(caller: Caller) -> Iterator[None]:
    reset = _acting_for.set(caller.principal)
    try:
        yield
    finally:
        _acting_for.reset(reset)


SURVEY_CHUNK_BYTES = 1024 * 1024  # the registry takes the file in chunks of at most 1 MiB


def _violations(error: grpc.RpcError) -> tuple[FieldViolation, ...]:
    for key, value in error.trailing_metadata() or ():
        if key == VIOLATIONS_KEY:
            try:
                items = json.loads(value)
                return tuple(FieldViolation(str(item["field"]), str(item["message"])) for item in items)
            except (ValueError, TypeError, KeyError):
                return ()
    return ()


class GrpcBackends:
    """The real services over gRPC. Channels are made once (at bootstrap, after tracing is set up)."""

    def __init__(
        self,
        *,
        registry: str,
        reporting: str,
        referral: str,
        notify: str,
        tokens: ServiceTokens,
        benefits: str = "",
        timeout_seconds: float = 10.0,
        tls: GrpcTls | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        targets = {"registry": registry, "reporting": reporting, "referral": referral, "notify": notify}
        if benefits:
            targets["benefits"] = benefits

        def token_for(service: str) -> Callable[[], str]:
            def token() -> str:
                principal = _acting_for.get()
                return tokens.token(principal, service) if principal is not None else ""

            return token

        self._channels = {name: bearer_channel(target, token_for(name), tls) for name, target in targets.items()}
        self._registry = registry_pb2_grpc.RegistryServiceStub(self._channels["registry"])
        self._tenants = registry_pb2_grpc.TenantDirectoryServiceStub(self._channels["registry"])
        self._casework = casework_pb2_grpc.CaseworkServiceStub(self._channels["registry"])
        self._survey = survey_pb2_grpc.SurveyServiceStub(self._channels["registry"])
        self._reporting = reporting_pb2_grpc.ReportingServiceStub(self._channels["reporting"])
        self._crisis_steps = crisis_steps_pb2_grpc.CrisisStepServiceStub(self._channels["reporting"])
        self._referral = referral_pb2_grpc.ReferralServiceStub(self._channels["referral"])
        self._notify = notify_pb2_grpc.NotifyServiceStub(self._channels["notify"])
        self._benefits = benefits_pb2_grpc.BenefitsServiceStub(self._channels["benefits"]) if benefits else None

    def _call(self, method: Any, request: Any, caller: Caller) -> Any:
        try:
            with _acting_for_caller(caller):
                return method(request, timeout=self._timeout, metadata=caller.metadata())
        except grpc.RpcError as error:
            code = error.code()
            raise BackendError(code.name if code else "UNKNOWN", error.details() or "", _violations(error)) from None

    def submit_report(
        self, caller: Caller, request: reporting_pb2.SubmitReportRequest
    ) -> reporting_pb2.SubmitReportResponse:
        reply: reporting_pb2.SubmitReportResponse = self._call(self._reporting.SubmitReport, request, caller)
        return reply

    def list_reports(self, caller: Caller, page_size: int) -> list[reporting_pb2.Report]:
        reply = self._call(self._reporting.ListReports, reporting_pb2.ListReportsRequest(page_size=page_size), caller)
        return list(reply.reports)

    def get_report(self, caller: Caller, report_id: str, purpose: str = "") -> reporting_pb2.Report:
        request = reporting_pb2.GetReportRequest(report_id=report_id, purpose=purpose)
        report: reporting_pb2.Report = self._call(self._reporting.GetReport, request, caller).report
        return report

    def list_report_reads(
        self, caller: Caller, report_id: str, page_size: int = 0, page_token: str = ""
    ) -> reporting_pb2.ListReportReadsResponse:
        request = reporting_pb2.ListReportReadsRequest(report_id=report_id, page_size=page_size, page_token=page_token)
        reply: reporting_pb2.ListReportReadsResponse = self._call(self._reporting.ListReportReads, request, caller)
        return reply

    def list_crisis_steps(self, caller: Caller, report_id: str) -> list[crisis_steps_pb2.CrisisStep]:
        request = crisis_steps_pb2.ListCrisisStepsRequest(report_id=report_id)
        return list(self._call(self._crisis_steps.ListCrisisSteps, request, caller).steps)

    def lookup_receipt(self, caller: Caller, receipt_number: str) -> reporting_pb2.LookupReceiptResponse:
        request = reporting_pb2.LookupReceiptRequest(receipt_number=receipt_number)
        reply: reporting_pb2.LookupReceiptResponse = self._call(self._reporting.LookupReceipt, request, caller)
        return reply

    def list_link_candidates(self, caller: Caller, report_id: str) -> list[reporting_pb2.LinkCandidate]:
        request = reporting_pb2.ListLinkCandidatesRequest(report_id=report_id)
        return list(self._call(self._reporting.ListLinkCandidates, request, caller).candidates)

    def confirm_link(self, caller: Caller, report_id: str, child_id: str) -> reporting_pb2.Report:
        request = reporting_pb2.ConfirmLinkRequest(report_id=report_id, child_id=child_id)
        return self._report(self._reporting.ConfirmLink, request, caller)

    def link_to_new_child(self, caller: Caller, report_id: str) -> reporting_pb2.Report:
        request = reporting_pb2.LinkToNewChildRequest(report_id=report_id)
        return self._report(self._reporting.LinkToNewChild, request, caller)

    def record_milestone(self, caller: Caller, request: reporting_pb2.RecordMilestoneRequest) -> reporting_pb2.Report:
        return self._report(self._reporting.RecordMilestone, request, caller)

    def give_outcome_notice(self, caller: Caller, report_id: str, text: str) -> reporting_pb2.Report:
        request = reporting_pb2.GiveOutcomeNoticeRequest(report_id=report_id, text=text)
        return self._report(self._reporting.GiveOutcomeNotice, request, caller)

    def close_report(self, caller: Caller, report_id: str) -> reporting_pb2.Report:
        return self._report(self._reporting.CloseReport, reporting_pb2.CloseReportRequest(report_id=report_id), caller)

    def decide_triage(
        self, caller: Caller, report_id: str, confirmed: bool, expected_version: int | None
    ) -> reporting_pb2.Report:
        request = reporting_pb2.DecideTriageRequest(report_id=report_id, confirmed=confirmed)
        if expected_version is not None:
            request.expected_version = expected_version
        return self._report(self._reporting.DecideTriage, request, caller)

    def _report(self, method: Any, request: Any, caller: Caller) -> reporting_pb2.Report:
        """For the reporting calls that answer with the report as it now is."""
        report: reporting_pb2.Report = self._call(method, request, caller).report
        return report

    def get_case_file(self, caller: Caller, child_id: str, purpose: str) -> registry_pb2.CaseFile:
        request = registry_pb2.GetCaseFileRequest(child_id=child_id, purpose=purpose)
        case_file: registry_pb2.CaseFile = self._call(self._registry.GetCaseFile, request, caller).case_file
        return case_file

    def list_tenants(self, caller: Caller, district_code: str) -> list[registry_pb2.Tenant]:
        request = registry_pb2.ListTenantsRequest(district_code=district_code)
        return list(self._call(self._tenants.ListTenants, request, caller).tenants)

    def list_children(
        self, caller: Caller, request: registry_pb2.ListChildrenRequest
    ) -> registry_pb2.ListChildrenResponse:
        reply: registry_pb2.ListChildrenResponse = self._call(self._registry.ListChildren, request, caller)
        return reply

    def match_child(self, caller: Caller, request: registry_pb2.MatchChildRequest) -> list[registry_pb2.MatchCandidate]:
        return list(self._call(self._registry.MatchChild, request, caller).candidates)

    def register_child(self, caller: Caller, request: registry_pb2.RegisterChildRequest) -> registry_pb2.Child:
        child: registry_pb2.Child = self._call(self._registry.RegisterChild, request, caller).child
        return child

    def update_child(self, caller: Caller, request: registry_pb2.UpdateChildRequest) -> registry_pb2.Child:
        child: registry_pb2.Child = self._call(self._registry.UpdateChild, request, caller).child
        return child

    def list_villages(self, caller: Caller, include_retired: bool = False) -> list[registry_pb2.Village]:
        request = registry_pb2.ListVillagesRequest(include_retired=include_retired)
        return list(self._call(self._tenants.ListVillages, request, caller).villages)

    def set_villages(self, caller: Caller, villages: list[registry_pb2.Village]) -> registry_pb2.SetVillagesResponse:
        request = registry_pb2.SetVillagesRequest(villages=villages)
        reply: registry_pb2.SetVillagesResponse = self._call(self._tenants.SetVillages, request, caller)
        return reply

    def list_triage_rule_sets(self, caller: Caller) -> reporting_pb2.ListTriageRuleSetsResponse:
        request = reporting_pb2.ListTriageRuleSetsRequest()
        reply: reporting_pb2.ListTriageRuleSetsResponse = self._call(
            self._reporting.ListTriageRuleSets, request, caller
        )
        return reply

    def list_audit_entries(
        self, caller: Caller, request: registry_pb2.ListAuditEntriesRequest
    ) -> registry_pb2.ListAuditEntriesResponse:
        reply: registry_pb2.ListAuditEntriesResponse = self._call(self._registry.ListAuditEntries, request, caller)
        return reply

    def register_statistics(self, caller: Caller, town_code: str) -> registry_pb2.GetRegisterStatisticsResponse:
        request = registry_pb2.GetRegisterStatisticsRequest(town_code=town_code)
        reply: registry_pb2.GetRegisterStatisticsResponse = self._call(
            self._registry.GetRegisterStatistics, request, caller
        )
        return reply

    def survey_template(self, caller: Caller) -> survey_pb2.GetSurveyTemplateResponse:
        reply: survey_pb2.GetSurveyTemplateResponse = self._call(
            self._survey.GetSurveyTemplate, survey_pb2.GetSurveyTemplateRequest(), caller
        )
        return reply

    def import_survey(
        self,
        caller: Caller,
        options: survey_pb2.SurveyImportOptions,
        content: bytes,
        on_progress: Callable[[survey_pb2.ImportSurveyResponse], None],
    ) -> survey_pb2.SurveyImportSummary:
        def parts() -> Iterator[survey_pb2.ImportSurveyRequest]:
            yield survey_pb2.ImportSurveyRequest(options=options)
            for start in range(0, len(content), SURVEY_CHUNK_BYTES):
                yield survey_pb2.ImportSurveyRequest(chunk=content[start : start + SURVEY_CHUNK_BYTES])

        summary = survey_pb2.SurveyImportSummary()
        try:
            # A long import is one call: no deadline beyond the service's own limits.
            with _acting_for_caller(caller):
                replies = self._survey.ImportSurvey(parts(), metadata=caller.metadata())
            for reply in replies:
                on_progress(reply)
                if reply.HasField("summary"):
                    summary = reply.summary
        except grpc.RpcError as error:
            code = error.code()
            raise BackendError(code.name if code else "UNKNOWN", error.details() or "", _violations(error)) from None
        return summary

    def list_survey_imports(self, caller: Caller, page_size: int) -> list[survey_pb2.SurveyImport]:
        request = survey_pb2.ListSurveyImportsRequest(page_size=page_size)
        return list(self._call(self._survey.ListSurveyImports, request, caller).imports)

    def list_survey_import_rows(
        self, caller: Caller, request: survey_pb2.ListSurveyImportRowsRequest
    ) -> survey_pb2.ListSurveyImportRowsResponse:
        reply: survey_pb2.ListSurveyImportRowsResponse = self._call(self._survey.ListSurveyImportRows, request, caller)
        return reply

    def export_register(self, caller: Caller, request: survey_pb2.ExportRegisterRequest) -> tuple[str, bytes]:
        try:
            with _acting_for_caller(caller):
                chunks = list(self._survey.ExportRegister(request, timeout=120, metadata=caller.metadata()))
        except grpc.RpcError as error:
            code = error.code()
            raise BackendError(code.name if code else "UNKNOWN", error.details() or "", _violations(error)) from None
        name = chunks[0].file_name if chunks else "register.xlsx"
        return name, b"".join(chunk.content for chunk in chunks)

    def merge_children(self, caller: Caller, surviving_id: str, merged_id: str, reason: str) -> registry_pb2.Child:
        request = registry_pb2.MergeChildrenRequest(
            surviving_child_id=surviving_id, merged_child_id=merged_id, reason=reason
        )
        child: registry_pb2.Child = self._call(self._registry.MergeChildren, request, caller).surviving
        return child

    def unmerge_children(self, caller: Caller, merged_id: str, reason: str) -> registry_pb2.Child:
        request = registry_pb2.UnmergeChildrenRequest(merged_child_id=merged_id, reason=reason)
        child: registry_pb2.Child = self._call(self._registry.UnmergeChildren, request, caller).restored
        return child

    def casework(self, caller: Caller, method: str, request: Any) -> Any:
        expected = CASEWORK_METHODS[method]  # KeyError: a programming error, never user input
        if not isinstance(request, expected):
            raise TypeError(f"{method} takes {expected.__name__}")
        return self._call(getattr(self._casework, method), request, caller)

    def list_changes(
        self, caller: Caller, request: casework_pb2.ListChangesRequest
    ) -> casework_pb2.ListChangesResponse:
        reply: casework_pb2.ListChangesResponse = self._call(self._casework.ListChanges, request, caller)
        return reply

    def benefits(self, caller: Caller, method: str, request: Any) -> Any:
        expected = BENEFITS_METHODS[method]  # KeyError: a programming error, never user input
        if not isinstance(request, expected):
            raise TypeError(f"{method} takes {expected.__name__}")
        if self._benefits is None:
            raise BackendError("UNAVAILABLE", "the benefits service is not configured")
        return self._call(getattr(self._benefits, method), request, caller)

    def referral(self, caller: Caller, method: str, request: Any) -> Any:
        service, expected, _reply = REFERRAL_METHODS[method]  # KeyError: a programming error, never user input
        if not isinstance(request, expected):
            raise TypeError(f"{method} takes {expected.__name__}")
        stub = _REFERRAL_STUBS[service](self._channels["referral"])
        return self._call(getattr(stub, method), request, caller)

    def list_referrals(self, caller: Caller, child_id: str, report_id: str) -> list[referral_pb2.Referral]:
        # The newest 200: a child's or a report's referrals are a handful; the town's whole list is not paged
        # in the portal yet (ListReferrals pages, the page does not follow).
        request = referral_pb2.ListReferralsRequest(child_id=child_id, report_id=report_id, page_size=200)
        return list(self._call(self._referral.ListReferrals, request, caller).referrals)

    def list_inbox(self, caller: Caller, unread_only: bool) -> list[notify_pb2.Notification]:
        request = notify_pb2.ListInboxRequest(unread_only=unread_only, page_size=50)
        return list(self._call(self._notify.ListInbox, request, caller).notifications)

    def mark_read(self, caller: Caller, notification_id: str) -> notify_pb2.Notification:
        request = notify_pb2.MarkReadRequest(notification_id=notification_id)
        notification: notify_pb2.Notification = self._call(self._notify.MarkRead, request, caller).notification
        return notification

    def notify(self, caller: Caller, method: str, request: Any) -> Any:
        expected = NOTIFY_METHODS[method]  # KeyError: a programming error, never user input
        if not isinstance(request, expected):
            raise TypeError(f"{method} takes {expected.__name__}")
        return self._call(getattr(self._notify, method), request, caller)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
