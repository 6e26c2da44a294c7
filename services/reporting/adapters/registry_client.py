"""The registry, reached over gRPC as the reporting service itself (its workload identity), for the caller's town.

Reporters and agencies may not search the register; reporting links their reports on its own account and
tells them nothing of what the register answered (docs/data-protection.md)."""

from __future__ import annotations

from datetime import date

import grpc
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc

from platform_runtime.auth import ServiceTokens
from platform_runtime.grpc_client import workload_channel
from platform_runtime.settings import GrpcTls
from platform_runtime.vocabulary_messages import known_sex_from_proto, sex_to_proto
from services.reporting.domain.model import ChildInfo, Place
from services.reporting.service_layer.ports import ChildCandidate, ChildDirectoryUnavailable

TIMEOUT_SECONDS = 5.0


def _date(child: ChildInfo) -> common_pb2.Date:
    born = child.birth_date
    return common_pb2.Date(year=born.year, month=born.month, day=born.day) if born else common_pb2.Date()


def _from_date(value: common_pb2.Date) -> date | None:
    return date(value.year, value.month, value.day) if value.year else None


def _candidate(found: registry_pb2.MatchCandidate) -> ChildCandidate:
    child = found.child
    return ChildCandidate(
        child_id=child.child_id,
        score=found.score,
        reasons=tuple(found.reasons),
        name=child.legal_name,
        sex=known_sex_from_proto(child.sex),
        birth_date=_from_date(child.birth_date),
        identity_number_masked=child.identity_number_masked,
        residence_division_code=child.residence_division_code,
        school=child.school,
        provisional=child.provisional,
    )


class GrpcChildDirectory:
    def __init__(self, target: str, tokens: ServiceTokens, tls: GrpcTls | None = None) -> None:
        channel = workload_channel(target, tokens, "reporting", "registry", tls)
        self._stub = registry_pb2_grpc.RegistryServiceStub(channel)

    def match(self, child: ChildInfo, place: Place) -> list[ChildCandidate]:
        request = registry_pb2.MatchChildRequest(
            name=child.name or "",
            identity_number=child.identity_number or "",
            birth_date=_date(child),
            approximate_age=child.approximate_age or 0,
            sex=sex_to_proto(child.sex),
            guardian_names=list(child.guardian_names),
            division_code=place.division_code,
            school=child.school or "",
        )
        try:
            reply = self._stub.MatchChild(request, timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            raise ChildDirectoryUnavailable(f"registry MatchChild failed: {exc.code().name}") from exc
        return [_candidate(c) for c in reply.candidates]

    def register_provisional(self, child: ChildInfo, place: Place) -> str:
        request = registry_pb2.RegisterChildRequest(
            legal_name=child.name or "",
            sex=sex_to_proto(child.sex),
            birth_date=_date(child),
            identity_number=child.identity_number or "",
            residence_division_code=place.division_code,
            residence_address=place.text,
            school=child.school or "",
            provisional=True,
            description=child.description or "",
        )
        try:
            reply = self._stub.RegisterChild(request, timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            raise ChildDirectoryUnavailable(f"registry RegisterChild failed: {exc.code().name}") from exc
        return str(reply.child.child_id)

    def current_id(self, child_id: str) -> str | None:
        try:
            reply = self._stub.GetChild(registry_pb2.GetChildRequest(child_id=child_id), timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise ChildDirectoryUnavailable(f"registry GetChild failed: {exc.code().name}") from exc
        # A merged record answers with the record that survives it.
        return str(reply.child.child_id)
