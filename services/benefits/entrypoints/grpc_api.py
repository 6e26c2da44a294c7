"""gRPC servicers: translate protobuf to commands, call the service layer, translate back. Nothing else.

The interceptor has verified the caller and set the principal; the service layer checks roles and scope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

import grpc
from minorprot.benefits.v1 import benefits_pb2, benefits_pb2_grpc

from platform_runtime import paging
from platform_runtime.errors import InvalidInput
from services.benefits.adapters import messages

if TYPE_CHECKING:
    from services.benefits.bootstrap import Services

Context: TypeAlias = grpc.ServicerContext


class BenefitsServicer(benefits_pb2_grpc.BenefitsServiceServicer):
    def __init__(self, services: Services) -> None:
        self._s = services

    def ListInsuranceEnrolments(
        self, request: benefits_pb2.ListInsuranceEnrolmentsRequest, context: Context
    ) -> benefits_pb2.ListInsuranceEnrolmentsResponse:
        views, next_token = self._s.insurance.list_enrolments(
            request.child_id, page_size=request.page_size, page_token=request.page_token
        )
        return benefits_pb2.ListInsuranceEnrolmentsResponse(
            enrolments=[messages.enrolment(view) for view in views], next_page_token=next_token
        )

    # -- policies ------------------------------------------------------------------------------------------

    def ListPolicyVersions(
        self, request: benefits_pb2.ListPolicyVersionsRequest, context: Context
    ) -> benefits_pb2.ListPolicyVersionsResponse:
        return benefits_pb2.ListPolicyVersionsResponse(
            versions=[messages.policy_message(view) for view in self._s.catalogue.versions()]
        )

    def SavePolicyVersion(
        self, request: benefits_pb2.SavePolicyVersionRequest, context: Context
    ) -> benefits_pb2.SavePolicyVersionResponse:
        view = self._s.catalogue.save(messages.policy_from(request.version))
        return benefits_pb2.SavePolicyVersionResponse(version=messages.policy_message(view))

    def LoadSamplePolicy(
        self, request: benefits_pb2.LoadSamplePolicyRequest, context: Context
    ) -> benefits_pb2.LoadSamplePolicyResponse:
        view = self._s.catalogue.seed_sample()
        reply = benefits_pb2.LoadSamplePolicyResponse()
        if view is not None:
            reply.version.CopyFrom(messages.policy_message(view))
        return reply

    # -- applications --------------------------------------------------------------------------------------

    def CreateApplication(
        self, request: benefits_pb2.CreateApplicationRequest, context: Context
    ) -> benefits_pb2.CreateApplicationResponse:
        view = self._s.applications.create(
            request.child_id,
            request.benefit_code,
            documents=list(request.documents),
            reason=request.reason,
            starts_on=messages.optional_date(request.starts_on, "starts_on"),
            account_ref=request.account_ref,
        )
        return benefits_pb2.CreateApplicationResponse(application=messages.application_message(view))

    def UpdateApplication(
        self, request: benefits_pb2.UpdateApplicationRequest, context: Context
    ) -> benefits_pb2.UpdateApplicationResponse:
        view = self._s.applications.update(
            request.application_id,
            documents=list(request.documents),
            starts_on=messages.optional_date(request.starts_on, "starts_on"),
            child_id=request.child_id,
            benefit_code=request.benefit_code,
            account_ref=request.account_ref,
        )
        return benefits_pb2.UpdateApplicationResponse(application=messages.application_message(view))

    def SubmitApplication(
        self, request: benefits_pb2.SubmitApplicationRequest, context: Context
    ) -> benefits_pb2.SubmitApplicationResponse:
        view = self._s.applications.submit(request.application_id)
        return benefits_pb2.SubmitApplicationResponse(application=messages.application_message(view))

    def ReviewApplication(
        self, request: benefits_pb2.ReviewApplicationRequest, context: Context
    ) -> benefits_pb2.ReviewApplicationResponse:
        view = self._s.applications.town_review(request.application_id, approve=request.approve, reason=request.reason)
        return benefits_pb2.ReviewApplicationResponse(application=messages.application_message(view))

    def DecideApplication(
        self, request: benefits_pb2.DecideApplicationRequest, context: Context
    ) -> benefits_pb2.DecideApplicationResponse:
        view = self._s.applications.district_decide(
            request.application_id,
            approve=request.approve,
            reason=request.reason,
            starts_on=messages.optional_date(request.starts_on, "starts_on"),
        )
        return benefits_pb2.DecideApplicationResponse(application=messages.application_message(view))

    def ReapplyApplication(
        self, request: benefits_pb2.ReapplyApplicationRequest, context: Context
    ) -> benefits_pb2.ReapplyApplicationResponse:
        view = self._s.applications.reapply(request.application_id)
        return benefits_pb2.ReapplyApplicationResponse(application=messages.application_message(view))

    def WithdrawApplication(
        self, request: benefits_pb2.WithdrawApplicationRequest, context: Context
    ) -> benefits_pb2.WithdrawApplicationResponse:
        view = self._s.applications.withdraw(request.application_id)
        return benefits_pb2.WithdrawApplicationResponse(application=messages.application_message(view))

    def RecordReview(
        self, request: benefits_pb2.RecordReviewRequest, context: Context
    ) -> benefits_pb2.RecordReviewResponse:
        view = self._s.applications.record_review(request.application_id)
        return benefits_pb2.RecordReviewResponse(application=messages.application_message(view))

    def GetApplication(
        self, request: benefits_pb2.GetApplicationRequest, context: Context
    ) -> benefits_pb2.GetApplicationResponse:
        view = self._s.applications.get(request.application_id)
        return benefits_pb2.GetApplicationResponse(application=messages.application_message(view))

    def ListApplications(
        self, request: benefits_pb2.ListApplicationsRequest, context: Context
    ) -> benefits_pb2.ListApplicationsResponse:
        views, next_token = self._s.applications.list(
            status=request.status, child_id=request.child_id, page_size=request.page_size, page_token=request.page_token
        )
        return benefits_pb2.ListApplicationsResponse(
            applications=[messages.application_message(v) for v in views], next_page_token=next_token
        )

    # -- runs ----------------------------------------------------------------------------------------------

    def OpenRun(self, request: benefits_pb2.OpenRunRequest, context: Context) -> benefits_pb2.OpenRunResponse:
        period = messages.optional_date(request.period, "period")
        if period is None:
            raise InvalidInput.single("period", "required")
        return benefits_pb2.OpenRunResponse(run=messages.run_message(self._s.runs.open_run(period)))

    def AdvanceRun(self, request: benefits_pb2.AdvanceRunRequest, context: Context) -> benefits_pb2.AdvanceRunResponse:
        runs, run_id, chunks = self._s.runs, request.run_id, max(request.max_chunks, 0)
        steps = {
            "compute": lambda: runs.compute(run_id, chunks),
            "check": lambda: runs.check(run_id),
            "approve": lambda: runs.approve(run_id),
            "pay": lambda: runs.pay(run_id, chunks),
            "close": lambda: runs.close(run_id),
        }
        step = steps.get(request.step)
        if step is None:
            raise InvalidInput.single("step", f"one of {', '.join(steps)}")
        return benefits_pb2.AdvanceRunResponse(run=messages.run_message(step()))

    def GetRun(self, request: benefits_pb2.GetRunRequest, context: Context) -> benefits_pb2.GetRunResponse:
        return benefits_pb2.GetRunResponse(run=messages.run_message(self._s.runs.run(request.run_id)))

    def ListRuns(self, request: benefits_pb2.ListRunsRequest, context: Context) -> benefits_pb2.ListRunsResponse:
        runs, next_token = self._s.runs.runs(page_size=request.page_size, page_token=request.page_token)
        return benefits_pb2.ListRunsResponse(
            runs=[messages.run_message(run) for run in runs], next_page_token=next_token
        )

    def ListRunLines(
        self, request: benefits_pb2.ListRunLinesRequest, context: Context
    ) -> benefits_pb2.ListRunLinesResponse:
        lines, next_token = self._s.runs.lines(
            request.run_id,
            child_id=request.child_id,
            status=request.payment_status,
            # `limit` is the page size callers sent before page_size existed.
            page_size=request.page_size or min(request.limit, paging.PAGE_SIZE_MAX),
            page_token=request.page_token,
        )
        return benefits_pb2.ListRunLinesResponse(
            lines=[messages.line_message(line) for line in lines], next_page_token=next_token
        )

    def GetPaymentFile(
        self, request: benefits_pb2.GetPaymentFileRequest, context: Context
    ) -> benefits_pb2.GetPaymentFileResponse:
        file = self._s.runs.payment_file(request.run_id, request.batch or 1)
        return benefits_pb2.GetPaymentFileResponse(
            name=file.name, content=file.content, count=file.count, total_fen=file.total_fen
        )

    def ReconcileRun(
        self, request: benefits_pb2.ReconcileRunRequest, context: Context
    ) -> benefits_pb2.ReconcileRunResponse:
        result = self._s.runs.reconcile(request.run_id, request.content)
        return benefits_pb2.ReconcileRunResponse(
            paid=result.paid, failed=result.failed, unchanged=result.unchanged, outstanding=result.outstanding
        )

    def ReissuePayments(
        self, request: benefits_pb2.ReissuePaymentsRequest, context: Context
    ) -> benefits_pb2.ReissuePaymentsResponse:
        return benefits_pb2.ReissuePaymentsResponse(batch=self._s.runs.reissue(request.run_id, dict(request.accounts)))

    def ListBalances(
        self, request: benefits_pb2.ListBalancesRequest, context: Context
    ) -> benefits_pb2.ListBalancesResponse:
        balances = self._s.runs.balances(messages.optional_date(request.period, "period"))
        return benefits_pb2.ListBalancesResponse(balances=[messages.balance_message(b) for b in balances])

    # -- the 0-3 insurance roster --------------------------------------------------------------------------

    def ImportInsuranceRoster(
        self, request: benefits_pb2.ImportInsuranceRosterRequest, context: Context
    ) -> benefits_pb2.ImportInsuranceRosterResponse:
        report = self._s.roster.import_list(request.content, request.file_name)
        return benefits_pb2.ImportInsuranceRosterResponse(
            accepted=report.accepted,
            added=report.added,
            left=report.left,
            errors=[benefits_pb2.RosterRowError(row=e.row, column=e.column, message=e.message) for e in report.errors],
        )

    def EnrolInsuranceYear(
        self, request: benefits_pb2.EnrolInsuranceYearRequest, context: Context
    ) -> benefits_pb2.EnrolInsuranceYearResponse:
        year = self._s.roster.enrol_year(request.year)
        return benefits_pb2.EnrolInsuranceYearResponse(
            year=year.year,
            insured=year.insured,
            added=year.added,
            removed=year.removed,
            premium_total_fen=year.premium_total_fen,
        )

    def GetInsurerFile(
        self, request: benefits_pb2.GetInsurerFileRequest, context: Context
    ) -> benefits_pb2.GetInsurerFileResponse:
        content = self._s.roster.insurer_file(request.year)
        return benefits_pb2.GetInsurerFileResponse(name=f"insurance-{request.year}.csv", content=content)


def register(services: Services) -> Callable[[grpc.Server], list[str]]:
    def add(server: grpc.Server) -> list[str]:
        benefits_pb2_grpc.add_BenefitsServiceServicer_to_server(BenefitsServicer(services), server)
        return [benefits_pb2.DESCRIPTOR.services_by_name["BenefitsService"].full_name]

    return add
