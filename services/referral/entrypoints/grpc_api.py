"""gRPC servicers: translate protobuf to commands, call the service layer, translate back. Nothing else."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import grpc
from minorprot.referral.v1 import referral_pb2, referral_pb2_grpc, routing_pb2, routing_pb2_grpc

from platform_runtime import errors
from platform_runtime.auth import Principal
from platform_runtime.db import utcnow
from platform_runtime.tenancy import current_principal
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.referral.adapters import messages, routing_messages
from services.referral.domain.lifecycle import Action
from services.referral.domain.routing import ReportFacts, Urgency
from services.referral.service_layer.credentials import AgencyCredentials
from services.referral.service_layer.routing_config import RoutingConfig
from services.referral.service_layer.services import ReferralService

# How long an idle stream waits before it looks again (changes committed here wake it at once).
STREAM_POLL_SECONDS = 0.1

_Versioned = (
    referral_pb2.AcceptReferralRequest
    | referral_pb2.RejectReferralRequest
    | referral_pb2.ReturnReferralRequest
    | referral_pb2.AddProgressRequest
    | referral_pb2.CompleteReferralRequest
    | referral_pb2.AnswerReferralRequest
    | referral_pb2.CancelReferralRequest
    | referral_pb2.ReassignReferralRequest
)


def _expected_version(request: _Versioned) -> int | None:
    # proto3 `optional`: unset means the caller asked for no check (the row lock still orders two changes).
    return request.expected_version if request.HasField("expected_version") else None


class ReferralServicer(referral_pb2_grpc.ReferralServiceServicer):
    def __init__(self, service: ReferralService) -> None:
        self._service = service

    def ListReferrals(
        self, request: referral_pb2.ListReferralsRequest, context: grpc.ServicerContext
    ) -> referral_pb2.ListReferralsResponse:
        page = self._service.list_referrals(
            request.child_id, request.report_id, page_size=request.page_size, page_token=request.page_token
        )
        return referral_pb2.ListReferralsResponse(
            referrals=[messages.referral(view) for view in page.referrals], next_page_token=page.next_page_token
        )

    def GetReferral(
        self, request: referral_pb2.GetReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.GetReferralResponse:
        detail = self._service.referral_detail(request.referral_id)
        return referral_pb2.GetReferralResponse(
            referral=messages.referral(detail.referral), entries=[messages.entry(entry) for entry in detail.entries]
        )

    def ListDistrictReferrals(
        self, request: referral_pb2.ListDistrictReferralsRequest, context: grpc.ServicerContext
    ) -> referral_pb2.ListDistrictReferralsResponse:
        page = self._service.list_district(
            status=request.status,
            agency_code=request.agency_code,
            overdue_only=request.overdue_only,
            escalated_only=request.escalated_only,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return referral_pb2.ListDistrictReferralsResponse(
            referrals=[messages.referral(view) for view in page.referrals], next_page_token=page.next_page_token
        )

    def AnswerReferral(
        self, request: referral_pb2.AnswerReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.AnswerReferralResponse:
        view = self._service.act_as_referrer(
            Action.ANSWER, request.referral_id, request.answer, expected_version=_expected_version(request)
        )
        return referral_pb2.AnswerReferralResponse(referral=messages.referral(view))

    def CancelReferral(
        self, request: referral_pb2.CancelReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.CancelReferralResponse:
        view = self._service.act_as_referrer(
            Action.CANCEL, request.referral_id, request.reason, expected_version=_expected_version(request)
        )
        return referral_pb2.CancelReferralResponse(referral=messages.referral(view))

    def ReassignReferral(
        self, request: referral_pb2.ReassignReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.ReassignReferralResponse:
        view = self._service.act_as_referrer(
            Action.REASSIGN,
            request.referral_id,
            request.reason,
            expected_version=_expected_version(request),
            agency_code=request.agency_code,
        )
        return referral_pb2.ReassignReferralResponse(referral=messages.referral(view))

    def OpenPlanReferral(
        self, request: referral_pb2.OpenPlanReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.OpenPlanReferralResponse:
        view = self._service.open_for_plan(
            request.child_id, request.agency_code, request.reason, request.due_in_days or 5
        )
        return referral_pb2.OpenPlanReferralResponse(referral=messages.referral(view))


class AgencyServicer(referral_pb2_grpc.AgencyServiceServicer):
    """For the agency officers in the portal (gateway tokens, internal server) and the agencies' own systems
    (agency credentials, the agency edge), who pass `still_valid` so an open stream ends once revoked."""

    def __init__(
        self,
        service: ReferralService,
        *,
        still_valid: Callable[[Principal], bool] | None = None,
        poll_seconds: float = STREAM_POLL_SECONDS,
    ) -> None:
        self._service = service
        self._still_valid = still_valid
        self._poll = poll_seconds

    def StreamReferralChanges(
        self, request: referral_pb2.StreamReferralChangesRequest, context: grpc.ServicerContext
    ) -> Iterator[referral_pb2.StreamReferralChangesResponse]:
        cursor = _cursor(request.after_cursor)
        caller = current_principal()
        while context.is_active():
            changes = self._service.changes_for_agency(cursor)
            for change in changes:
                yield referral_pb2.StreamReferralChangesResponse(
                    cursor=str(change.seq),
                    referral=referral_pb2.Referral.FromString(change.snapshot),
                    gone=change.gone,
                )
                cursor = change.seq
            if self._still_valid is not None and not self._still_valid(caller):
                raise errors.Unauthenticated("this credential was revoked")
            if not changes:
                self._service.wait_for_changes(self._poll)

    def ListAgencyReferrals(
        self, request: referral_pb2.ListAgencyReferralsRequest, context: grpc.ServicerContext
    ) -> referral_pb2.ListAgencyReferralsResponse:
        page = self._service.list_for_agency(
            status=request.status, due=request.due, page_size=request.page_size, page_token=request.page_token
        )
        return referral_pb2.ListAgencyReferralsResponse(
            referrals=[messages.referral(view) for view in page.referrals], next_page_token=page.next_page_token
        )

    def _act(self, action: Action, request: _Versioned, referral_id: str, text: str, key: str) -> referral_pb2.Referral:
        view = self._service.act_as_agency(
            action, referral_id, text, expected_version=_expected_version(request), idempotency_key=key
        )
        return messages.referral(view)

    def AcceptReferral(
        self, request: referral_pb2.AcceptReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.AcceptReferralResponse:
        referral = self._act(Action.ACCEPT, request, request.referral_id, request.note, request.idempotency_key)
        return referral_pb2.AcceptReferralResponse(referral=referral)

    def RejectReferral(
        self, request: referral_pb2.RejectReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.RejectReferralResponse:
        referral = self._act(Action.REJECT, request, request.referral_id, request.reason, request.idempotency_key)
        return referral_pb2.RejectReferralResponse(referral=referral)

    def ReturnReferral(
        self, request: referral_pb2.ReturnReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.ReturnReferralResponse:
        referral = self._act(Action.RETURN, request, request.referral_id, request.question, request.idempotency_key)
        return referral_pb2.ReturnReferralResponse(referral=referral)

    def AddProgress(
        self, request: referral_pb2.AddProgressRequest, context: grpc.ServicerContext
    ) -> referral_pb2.AddProgressResponse:
        referral = self._act(Action.PROGRESS, request, request.referral_id, request.note, request.idempotency_key)
        return referral_pb2.AddProgressResponse(referral=referral)

    def CompleteReferral(
        self, request: referral_pb2.CompleteReferralRequest, context: grpc.ServicerContext
    ) -> referral_pb2.CompleteReferralResponse:
        referral = self._act(Action.COMPLETE, request, request.referral_id, request.outcome, request.idempotency_key)
        return referral_pb2.CompleteReferralResponse(referral=referral)


class CredentialServicer(referral_pb2_grpc.AgencyCredentialServiceServicer):
    def __init__(self, credentials: AgencyCredentials | None) -> None:
        self._credentials = credentials

    def _issuer(self) -> AgencyCredentials:
        if self._credentials is None:
            raise errors.Conflict("this deployment has no agency API (no AGENCY_TOKEN_PRIVATE_KEY)")
        return self._credentials

    def IssueCredential(
        self, request: referral_pb2.IssueCredentialRequest, context: grpc.ServicerContext
    ) -> referral_pb2.IssueCredentialResponse:
        issued = self._issuer().issue(request.agency_code, request.name, request.valid_days or 365)
        return referral_pb2.IssueCredentialResponse(
            credential=messages.credential(issued.credential), token=issued.token
        )

    def ListCredentials(
        self, request: referral_pb2.ListCredentialsRequest, context: grpc.ServicerContext
    ) -> referral_pb2.ListCredentialsResponse:
        return referral_pb2.ListCredentialsResponse(
            credentials=[messages.credential(view) for view in self._issuer().list()]
        )

    def RevokeCredential(
        self, request: referral_pb2.RevokeCredentialRequest, context: grpc.ServicerContext
    ) -> referral_pb2.RevokeCredentialResponse:
        revoked = self._issuer().revoke(request.credential_id)
        return referral_pb2.RevokeCredentialResponse(credential=messages.credential(revoked))


class RoutingAdminServicer(routing_pb2_grpc.RoutingAdminServiceServicer):
    def __init__(self, config: RoutingConfig, today: Callable[[], date]) -> None:
        self._config = config
        self._today = today

    def ListAgencies(
        self, request: routing_pb2.ListAgenciesRequest, context: grpc.ServicerContext
    ) -> routing_pb2.ListAgenciesResponse:
        return routing_pb2.ListAgenciesResponse(
            agencies=[routing_messages.agency(agency) for agency in self._config.list_agencies()]
        )

    def SaveAgency(
        self, request: routing_pb2.SaveAgencyRequest, context: grpc.ServicerContext
    ) -> routing_pb2.SaveAgencyResponse:
        saved = self._config.save_agency(routing_messages.agency_from(request.agency))
        return routing_pb2.SaveAgencyResponse(agency=routing_messages.agency(saved))

    def ListRuleSets(
        self, request: routing_pb2.ListRuleSetsRequest, context: grpc.ServicerContext
    ) -> routing_pb2.ListRuleSetsResponse:
        return routing_pb2.ListRuleSetsResponse(
            rule_sets=[routing_messages.rule_set(rule_set) for rule_set in self._config.list_rule_sets()]
        )

    def AddRuleSet(
        self, request: routing_pb2.AddRuleSetRequest, context: grpc.ServicerContext
    ) -> routing_pb2.AddRuleSetResponse:
        effective_from = routing_messages.day(request.effective_from, "effective_from", self._today())
        saved = self._config.add_rule_set(
            [routing_messages.rule_data(rule) for rule in request.rules], effective_from, request.note
        )
        return routing_pb2.AddRuleSetResponse(rule_set=routing_messages.rule_set(saved))

    def PreviewRouting(
        self, request: routing_pb2.PreviewRoutingRequest, context: grpc.ServicerContext
    ) -> routing_pb2.PreviewRoutingResponse:
        facts = ReportFacts(
            situations=frozenset(request.situation_types),
            facts=frozenset(request.facts),
            urgency=Urgency.URGENT if request.urgent else Urgency.NORMAL,
            crisis=request.crisis,
            age=request.approximate_age or None,
        )
        version, preview = self._config.preview(
            facts,
            routing_messages.day(request.day, "day", self._today()),
            version=request.version if request.HasField("version") else None,
            rules=[routing_messages.rule_data(rule) for rule in request.draft_rules] or None,
        )
        return routing_messages.preview(version, preview)


def register(
    service: ReferralService, credentials: AgencyCredentials | None = None
) -> Callable[[grpc.Server], list[str]]:
    """The internal server: town staff, the office, administrators and agency officers (gateway tokens)."""

    def today() -> date:
        return utcnow().astimezone(CHINA_STANDARD_TIME).date()

    def add(server: grpc.Server) -> list[str]:
        referral_pb2_grpc.add_ReferralServiceServicer_to_server(ReferralServicer(service), server)
        referral_pb2_grpc.add_AgencyServiceServicer_to_server(AgencyServicer(service), server)
        routing_pb2_grpc.add_RoutingAdminServiceServicer_to_server(RoutingAdminServicer(service.config, today), server)
        referral_pb2_grpc.add_AgencyCredentialServiceServicer_to_server(CredentialServicer(credentials), server)
        return [
            referral_pb2.DESCRIPTOR.services_by_name["ReferralService"].full_name,
            referral_pb2.DESCRIPTOR.services_by_name["AgencyService"].full_name,
            routing_pb2.DESCRIPTOR.services_by_name["RoutingAdminService"].full_name,
            referral_pb2.DESCRIPTOR.services_by_name["AgencyCredentialService"].full_name,
        ]

    return add


def register_agency_edge(
    service: ReferralService, credentials: AgencyCredentials, poll_seconds: float = STREAM_POLL_SECONDS
) -> Callable[[grpc.Server], list[str]]:
    """The agency edge: the agency API alone, for agency credentials."""

    def add(server: grpc.Server) -> list[str]:
        servicer = AgencyServicer(service, still_valid=credentials.still_valid, poll_seconds=poll_seconds)
        referral_pb2_grpc.add_AgencyServiceServicer_to_server(servicer, server)
        return [referral_pb2.DESCRIPTOR.services_by_name["AgencyService"].full_name]

    return add


def _cursor(text: str) -> int:
    if not text:
        return 0
    if not text.isdigit() or len(text) > 19:
        raise errors.InvalidInput.single("after_cursor", "is not a cursor this stream gave")
    return int(text)
