"""gRPC servicer of a crisis report's escalation steps (the report's timeline in the portal)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from google.protobuf import timestamp_pb2
from minorprot.reporting.v1 import crisis_steps_pb2, crisis_steps_pb2_grpc

from services.reporting.service_layer.crisis_steps import CrisisStep, CrisisStepService

SERVICE_NAME = crisis_steps_pb2.DESCRIPTOR.services_by_name["CrisisStepService"].full_name


def _step(value: CrisisStep) -> crisis_steps_pb2.CrisisStep:
    at = timestamp_pb2.Timestamp()
    at.FromDatetime(value.at)
    return crisis_steps_pb2.CrisisStep(
        crisis_id=value.crisis_id,
        kind=value.kind,
        step=value.step,
        level=value.level,
        people=[crisis_steps_pb2.StepPerson(recipient=recipient, name=name) for recipient, name in value.people],
        via=value.via,
        at=at,
    )


class CrisisStepServicer(crisis_steps_pb2_grpc.CrisisStepServiceServicer):
    def __init__(self, service: CrisisStepService) -> None:
        self._service = service

    def ListCrisisSteps(
        self, request: crisis_steps_pb2.ListCrisisStepsRequest, context: grpc.ServicerContext
    ) -> crisis_steps_pb2.ListCrisisStepsResponse:
        return crisis_steps_pb2.ListCrisisStepsResponse(
            steps=[_step(step) for step in self._service.list_steps(request.report_id)]
        )


def register(service: CrisisStepService) -> Callable[[grpc.Server], list[str]]:
    def add(server: grpc.Server) -> list[str]:
        crisis_steps_pb2_grpc.add_CrisisStepServiceServicer_to_server(CrisisStepServicer(service), server)
        return [SERVICE_NAME]

    return add
