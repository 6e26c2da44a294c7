"""gRPC servicers: translate protobuf to commands, call the service layer, translate back. Nothing else."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from minorprot.reporting.v1 import reporting_pb2, reporting_pb2_grpc

from platform_runtime.tenancy import current_principal
from services.reporting.adapters import messages
from services.reporting.service_layer.services import ReportingService

SERVICE_NAME = reporting_pb2.DESCRIPTOR.services_by_name["ReportingService"].full_name
# The receipt lookup is the one call a member of the public makes without any token.
PUBLIC_METHODS = frozenset({f"/{SERVICE_NAME}/LookupReceipt"})


def _client_key(context: grpc.ServicerContext) -> str:
    # The gateway is the only way in from outside (NetworkPolicy) and forwards the browser's address.
    for key, value in context.invocation_metadata():
        if key == "x-forwarded-for" and isinstance(value, str):
            return value.split(",")[0].strip()
    return str(context.peer())


class ReportingServicer(reporting_pb2_grpc.ReportingServiceServicer):
    def __init__(self, service: ReportingService) -> None:
        self._service = service

    def SubmitReport(
        self, request: reporting_pb2.SubmitReportRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.SubmitReportResponse:
        outcome = self._service.submit(messages.submission(request), request.external_reference)
        show_reporter = current_principal().can_see_reporter()
        return reporting_pb2.SubmitReportResponse(
            report=messages.report(outcome.report, outcome.reasons, outcome.crisis, reporter=show_reporter),
            receipt_number=outcome.receipt,
        )

    def GetReport(
        self, request: reporting_pb2.GetReportRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.GetReportResponse:
        stored = self._service.get(request.report_id)
        show_reporter = current_principal().can_see_reporter()
        return reporting_pb2.GetReportResponse(
            report=messages.report(stored.report, stored.reasons, stored.crisis, reporter=show_reporter)
        )

    def ListReports(
        self, request: reporting_pb2.ListReportsRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.ListReportsResponse:
        show_reporter = current_principal().can_see_reporter()
        return reporting_pb2.ListReportsResponse(
            reports=[
                messages.report(stored.report, stored.reasons, stored.crisis, reporter=show_reporter)
                for stored in self._service.list_recent(request.page_size)
            ]
        )

    def LookupReceipt(
        self, request: reporting_pb2.LookupReceiptRequest, context: grpc.ServicerContext
    ) -> reporting_pb2.LookupReceiptResponse:
        return messages.receipt_reply(self._service.lookup_receipt(request.receipt_number, _client_key(context)))


def register(service: ReportingService) -> Callable[[grpc.Server], list[str]]:
    def add(server: grpc.Server) -> list[str]:
        reporting_pb2_grpc.add_ReportingServiceServicer_to_server(ReportingServicer(service), server)
        return [SERVICE_NAME]

    return add
