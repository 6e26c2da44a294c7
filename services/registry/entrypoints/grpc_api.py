"""gRPC servicers: translate protobuf to commands, call the service layer, translate back. Nothing else."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc

from services.registry.adapters import messages
from services.registry.service_layer.services import RegistryService


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, service: RegistryService) -> None:
        self._service = service

    def RegisterChild(
        self, request: registry_pb2.RegisterChildRequest, context: grpc.ServicerContext
    ) -> registry_pb2.RegisterChildResponse:
        view = self._service.register_child(messages.register_command(request))
        return registry_pb2.RegisterChildResponse(child=messages.child(view))

    def GetChild(
        self, request: registry_pb2.GetChildRequest, context: grpc.ServicerContext
    ) -> registry_pb2.GetChildResponse:
        return registry_pb2.GetChildResponse(child=messages.child(self._service.get_child(request.child_id)))

    def ListChildren(
        self, request: registry_pb2.ListChildrenRequest, context: grpc.ServicerContext
    ) -> registry_pb2.ListChildrenResponse:
        children, token = self._service.list_children(request.page_size, request.page_token)
        return registry_pb2.ListChildrenResponse(children=[messages.child(c) for c in children], next_page_token=token)

    def MatchChild(
        self, request: registry_pb2.MatchChildRequest, context: grpc.ServicerContext
    ) -> registry_pb2.MatchChildResponse:
        candidates = self._service.match_child(messages.match_probe(request), request.limit)
        return registry_pb2.MatchChildResponse(candidates=[messages.candidate(c) for c in candidates])

    def GetCaseFile(
        self, request: registry_pb2.GetCaseFileRequest, context: grpc.ServicerContext
    ) -> registry_pb2.GetCaseFileResponse:
        view = self._service.get_case_file(request.child_id, request.purpose)
        return registry_pb2.GetCaseFileResponse(case_file=messages.case_file(view))


class TenantDirectoryServicer(registry_pb2_grpc.TenantDirectoryServiceServicer):
    def __init__(self, service: RegistryService) -> None:
        self._service = service

    def OnboardTenant(
        self, request: registry_pb2.OnboardTenantRequest, context: grpc.ServicerContext
    ) -> registry_pb2.OnboardTenantResponse:
        view, created = self._service.onboard_tenant(request.code, request.name, request.district_code)
        return registry_pb2.OnboardTenantResponse(tenant=messages.tenant(view), created=created)

    def ListTenants(
        self, request: registry_pb2.ListTenantsRequest, context: grpc.ServicerContext
    ) -> registry_pb2.ListTenantsResponse:
        tenants = self._service.list_tenants(request.district_code)
        return registry_pb2.ListTenantsResponse(tenants=[messages.tenant(t) for t in tenants])


def register(service: RegistryService) -> Callable[[grpc.Server], list[str]]:
    def add(server: grpc.Server) -> list[str]:
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(service), server)
        registry_pb2_grpc.add_TenantDirectoryServiceServicer_to_server(TenantDirectoryServicer(service), server)
        return [
            registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name,
            registry_pb2.DESCRIPTOR.services_by_name["TenantDirectoryService"].full_name,
        ]

    return add
