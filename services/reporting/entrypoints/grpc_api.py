"""gRPC servicers: translate protobuf to commands, call the service layer, translate back. Nothing else."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from minorprot.reporting.v1 import reporting_pb2, reporting_pb2_grpc

from platform_runtime.tenancy import current_principal
from services.reporting.adapters import messages
from services.reporting.domain.triage import MANDATORY_REPORTING_FLOOR
from services.reporting.service_layer.services import ReportingService
from services.reporting.service_layer.views import StoredReport

SERVICE_NAME = reporting_pb2.DESCRIPTOR.services_by_name["ReportingService"].full_name
# The receipt lookup is the one call a member of the public makes without any token.
PUBLIC_METHODS = frozenset({f"/{SERVICE_NAME}/LookupReceipt"})


def _client_key(context: grpc.ServicerContext) -> str:
    # The gateway is the only way in from outside (NetworkPolicy) and forwards the browser's address.
    for key, value in context.invocation_metadata():
        if key == "x-forwarded-for" and isinstance(value, str):
            return value.split(",")[0].strip()
    return str(context.peer())


def _shown(stored: StoredReport, *, details: bool = False) -> reporting_pb2.Report:
    """The report as the caller may see it: details only on a logged read, the reporter only to roles that
    need to know who reported."""
    return messages.stored_report(stored, reporter=current_principal().can_see_reporter(), details=details)


def _expected_version(
    request: reporting_pb2.ConfirmLinkRequest | reporting_pb2.LinkToNewChildRequest | reporting_pb2.DecideTriageRequest,
) -> int | None:
    # proto3 `optional`: unset means the caller asked for no check (the update still never overwrites blindly).
    return request.expected_version if request.HasField("expected_version") else None


class ReportingServicer(reporting_pb2_grpc.ReportingServiceServicer):
    def __init__(self, service: ReportingService) -> None:
        self._service = service

    def SubmitReport(
        self, request: reporting_pb2.SubmitReportRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.SubmitReportResponse:
        outcome = self._service.submit(messages.submission(request), request.external_reference)
        return reporting_pb2.SubmitReportResponse(report=_shown(outcome.stored), receipt_number=outcome.receipt)

    def GetReport(
        self, request: reporting_pb2.GetReportRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.GetReportResponse:
        if request.purpose:
            return reporting_pb2.GetReportResponse(
                report=_shown(self._service.read(request.report_id, request.purpose), details=True)
            )
        return reporting_pb2.GetReportResponse(report=_shown(self._service.get(request.report_id)))

    def ListReportReads(
        self, request: reporting_pb2.ListReportReadsRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.ListReportReadsResponse:
        reads, next_token = self._service.reads(
            request.report_id, page_size=request.page_size, page_token=request.page_token
        )
        return reporting_pb2.ListReportReadsResponse(
            reads=[messages.report_read(read) for read in reads], next_page_token=next_token
        )

    def ListTriageRuleSets(
        self, request: reporting_pb2.ListTriageRuleSetsRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.ListTriageRuleSetsResponse:
        rule_sets, in_effect = self._service.triage_rule_sets()
        return reporting_pb2.ListTriageRuleSetsResponse(
            rule_sets=[messages.triage_rule_set(s, in_effect=s is in_effect) for s in rule_sets],
            legal_minimum=messages.triage_rule(MANDATORY_REPORTING_FLOOR),
        )

    def ListReports(
        self, request: reporting_pb2.ListReportsRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.ListReportsResponse:
        return reporting_pb2.ListReportsResponse(
            reports=[_shown(stored) for stored in self._service.list_recent(request.page_size)]
        )

    def LookupReceipt(
        self, request: reporting_pb2.LookupReceiptRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.LookupReceiptResponse:
        return messages.receipt_reply(self._service.lookup_receipt(request.receipt_number, _client_key(context)))

    def ListLinkCandidates(
        self, request: reporting_pb2.ListLinkCandidatesRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.ListLinkCandidatesResponse:
        candidates = self._service.list_link_candidates(request.report_id)
        return reporting_pb2.ListLinkCandidatesResponse(candidates=[messages.candidate(c) for c in candidates])

    def ConfirmLink(
        self, request: reporting_pb2.ConfirmLinkRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.ConfirmLinkResponse:
        stored = self._service.confirm_link(request.report_id, request.child_id, _expected_version(request))
        return reporting_pb2.ConfirmLinkResponse(report=_shown(stored))

    def LinkToNewChild(
        self, request: reporting_pb2.LinkToNewChildRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.LinkToNewChildResponse:
        stored = self._service.link_to_new_child(request.report_id, _expected_version(request))
        return reporting_pb2.LinkToNewChildResponse(report=_shown(stored))

    def RecordMilestone(
        self, request: reporting_pb2.RecordMilestoneRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.RecordMilestoneResponse:
        stored = self._service.record_milestone(
            request.report_id,
            messages.milestone(request.milestone),
            messages.optional_time(request.completed_at, request.HasField("completed_at")),
        )
        return reporting_pb2.RecordMilestoneResponse(report=_shown(stored))

    def GiveOutcomeNotice(
        self, request: reporting_pb2.GiveOutcomeNoticeRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.GiveOutcomeNoticeResponse:
        stored = self._service.give_outcome_notice(request.report_id, request.text)
        return reporting_pb2.GiveOutcomeNoticeResponse(report=_shown(stored))

    def CloseReport(
        self, request: reporting_pb2.CloseReportRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.CloseReportResponse:
        return reporting_pb2.CloseReportResponse(report=_shown(self._service.close(request.report_id)))

    def DecideTriage(
        self, request: reporting_pb2.DecideTriageRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.DecideTriageResponse:
        stored = self._service.decide_triage(request.report_id, request.confirmed, _expected_version(request))
        return reporting_pb2.DecideTriageResponse(report=_shown(stored))


def register(service: ReportingService) -> Callable[[grpc.Server], list[str]]:
    def add(server: grpc.Server) -> list[str]:
        reporting_pb2_grpc.add_ReportingServiceServicer_to_server(ReportingServicer(service), server)
        return [SERVICE_NAME]

    return add
