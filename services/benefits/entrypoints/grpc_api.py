"""gRPC servicers: translate protobuf to commands, call the service layer, translate back. Nothing else."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from minorprot.benefits.v1 import benefits_pb2, benefits_pb2_grpc

from services.benefits.adapters import messages
from services.benefits.service_layer.services import BenefitsService


class BenefitsServicer(benefits_pb2_grpc.BenefitsServiceServicer):
    def __init__(self, service: BenefitsService) -> None:
        self._service = service

    def ListInsuranceEnrolments(
        self, request: benefits_pb2.ListInsuranceEnrolmentsRequest, context: grpc.ServicerContext
    ) -> benefits_pb2.ListInsuranceEnrolmentsResponse:
        views = self._service.list_enrolments(request.child_id)
        return benefits_pb2.ListInsuranceEnrolmentsResponse(enrolments=[messages.enrolment(view) for view in views])


def register(service: BenefitsService) -> Callable[[grpc.Server], list[str]]:
    def add(server: grpc.Server) -> list[str]:
        benefits_pb2_grpc.add_BenefitsServiceServicer_to_server(BenefitsServicer(service), server)
        return [benefits_pb2.DESCRIPTOR.services_by_name["BenefitsService"].full_name]

    return add
