"""gRPC servicers: translate protobuf to commands, call the service layer, translate back. Nothing else."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from minorprot.referral.v1 import referral_pb2, referral_pb2_grpc

from services.referral.adapters import messages
from services.referral.service_layer.services import ReferralService


def _expected_version(
    request: referral_pb2.AcceptReferralRequest | referral_pb2.CompleteReferralRequest,
) -> int | None:
    # proto3 `optional`: unset means the caller asked for no check (the row lock still orders two changes).
    return request.expected_version if request.HasField("expected_version") else None


class ReferralServicer(referral_pb2_grpc.ReferralServiceServicer):
    def __init__(self, service: ReferralService) -> None:
        self._service = service

    def ListReferrals(
        self, request: referral_pb2.ListReferralsRequest, context: grpc.ServicerContext
    ) -> referral_pb2.ListReferralsResponse:
        views = self._service.list_referrals(request.child_id, request.report_id)
        return referral_pb2.ListReferralsResponse(referrals=[messages.referral(view) for view in views])

    def GetReferral(
        self, request: referral_pb2.GetReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.GetReferralResponse:
        return referral_pb2.GetReferralResponse(
            referral=messages.referral(self._service.get_referral(request.referral_id))
        )


class AgencyServicer(referral_pb2_grpc.AgencyServiceServicer):
    def __init__(self, service: ReferralService) -> None:
        self._service = service

    def AcceptReferral(
        self, request: referral_pb2.AcceptReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.AcceptReferralResponse:
        view = self._service.accept(request.referral_id, request.note, _expected_version(request))
        return referral_pb2.AcceptReferralResponse(referral=messages.referral(view))

    def CompleteReferral(
        self, request: referral_pb2.CompleteReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.CompleteReferralResponse:
        view = self._service.complete(request.referral_id, request.outcome, _expected_version(request))
        return referral_pb2.CompleteReferralResponse(referral=messages.referral(view))


def register(service: ReferralService) -> Callable[[grpc.Server], list[str]]:
    def add(server: grpc.Server) -> list[str]:
        referral_pb2_grpc.add_ReferralServiceServicer_to_server(ReferralServicer(service), server)
        referral_pb2_grpc.add_AgencyServiceServicer_to_server(AgencyServicer(service), server)
        return [
            referral_pb2.DESCRIPTOR.services_by_name["ReferralService"].full_name,
            referral_pb2.DESCRIPTOR.services_by_name["AgencyService"].full_name,
        ]

    return add
