"""gRPC servicers: translate protobuf to commands, call the service layer, translate back. Nothing else."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from minorprot.registry.v1 import casework_pb2, casework_pb2_grpc, registry_pb2, registry_pb2_grpc

from services.registry.adapters import messages
from services.registry.service_layer.audit_log import AuditQuery
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.children import ChildFilters
from services.registry.service_layer.registry import RegistryService


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
        view, merged_into = self._service.get_child(request.child_id)
        return registry_pb2.GetChildResponse(child=messages.child(view), merged_into=merged_into)

    def ListChildren(
        self, request: registry_pb2.ListChildrenRequest, context: grpc.ServicerContext
    ) -> registry_pb2.ListChildrenResponse:
        filters = ChildFilters(request.division_code, request.category, request.case_status, request.visit_overdue)
        children, token = self._service.list_children(request.page_size, request.page_token, filters)
        return registry_pb2.ListChildrenResponse(children=[messages.child(c) for c in children], next_page_token=token)

    def MatchChild(
        self, request: registry_pb2.MatchChildRequest, context: grpc.ServicerContext
    ) -> registry_pb2.MatchChildResponse:
        candidates = self._service.match_child(messages.match_probe(request), request.limit)
        return registry_pb2.MatchChildResponse(candidates=[messages.candidate(c) for c in candidates])

    def GetCaseFile(
        self, request: registry_pb2.GetCaseFileRequest, context: grpc.ServicerContext
    ) -> registry_pb2.GetCaseFileResponse:
        view, merged_into = self._service.get_case_file(request.child_id, request.purpose)
        return registry_pb2.GetCaseFileResponse(case_file=messages.case_file(view), merged_into=merged_into)

    def UpdateChild(
        self, request: registry_pb2.UpdateChildRequest, context: grpc.ServicerContext
    ) -> registry_pb2.UpdateChildResponse:
        view = self._service.update_child(messages.update_command(request))
        return registry_pb2.UpdateChildResponse(child=messages.child(view))

    def GetRegisterStatistics(
        self, request: registry_pb2.GetRegisterStatisticsRequest, context: grpc.ServicerContext
    ) -> registry_pb2.GetRegisterStatisticsResponse:
        found = self._service.register_statistics(request.town_code)

        def pairs(counts: tuple[tuple[str, int], ...]) -> list[registry_pb2.KeyCount]:
            return [registry_pb2.KeyCount(key=key, count=count) for key, count in counts]

        return registry_pb2.GetRegisterStatisticsResponse(
            town_code=found.town_code,
            children=found.children,
            by_category=pairs(found.by_category),
            by_village=pairs(found.by_village),
            by_case_status=pairs(found.by_case_status),
            by_risk_level=pairs(found.by_risk_level),
            overdue_visits=found.overdue_visits,
            overdue_plan_actions=found.overdue_plan_actions,
        )

    def ListAuditEntries(
        self, request: registry_pb2.ListAuditEntriesRequest, context: grpc.ServicerContext
    ) -> registry_pb2.ListAuditEntriesResponse:
        query = AuditQuery(
            request.child_id, request.actor, request.purposeful_only, request.page_size, request.page_token
        )
        entries, token = self._service.list_audit_entries(query)
        return registry_pb2.ListAuditEntriesResponse(
            entries=[
                registry_pb2.AuditEntry(
                    at=messages.timestamp(e.at),
                    actor=e.actor,
                    role=e.role,
                    action=e.action,
                    subject_type=e.subject_type,
                    subject_id=e.subject_id,
                    purpose=e.purpose,
                )
                for e in entries
            ],
            next_page_token=token,
        )

    def MergeChildren(
        self, request: registry_pb2.MergeChildrenRequest, context: grpc.ServicerContext
    ) -> registry_pb2.MergeChildrenResponse:
        view = self._service.merge_children(request.surviving_child_id, request.merged_child_id, request.reason)
        return registry_pb2.MergeChildrenResponse(surviving=messages.child(view))

    def UnmergeChildren(
        self, request: registry_pb2.UnmergeChildrenRequest, context: grpc.ServicerContext
    ) -> registry_pb2.UnmergeChildrenResponse:
        view = self._service.unmerge_children(request.merged_child_id, request.reason)
        return registry_pb2.UnmergeChildrenResponse(restored=messages.child(view))


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

    def SetVillages(
        self, request: registry_pb2.SetVillagesRequest, context: grpc.ServicerContext
    ) -> registry_pb2.SetVillagesResponse:
        result = self._service.set_villages([messages.village_of(v) for v in request.villages])
        return registry_pb2.SetVillagesResponse(
            villages=[messages.village(v) for v in result.villages],
            added=result.added,
            renamed=result.renamed,
            retired=result.retired,
        )

    def ListVillages(
        self, request: registry_pb2.ListVillagesRequest, context: grpc.ServicerContext
    ) -> registry_pb2.ListVillagesResponse:
        listed = self._service.list_villages(include_retired=request.include_retired)
        return registry_pb2.ListVillagesResponse(villages=[messages.village(v) for v in listed])


class CaseworkServicer(casework_pb2_grpc.CaseworkServiceServicer):
    def __init__(self, service: CaseworkService) -> None:
        self._service = service

    def AddFamilyMember(
        self, request: casework_pb2.AddFamilyMemberRequest, context: grpc.ServicerContext
    ) -> casework_pb2.AddFamilyMemberResponse:
        view, categories = self._service.add_family_member(request.child_id, messages.member_facts(request.member))
        return casework_pb2.AddFamilyMemberResponse(member=messages.family_member(view), categories=list(categories))

    def UpdateFamilyMember(
        self, request: casework_pb2.UpdateFamilyMemberRequest, context: grpc.ServicerContext
    ) -> casework_pb2.UpdateFamilyMemberResponse:
        view, categories = self._service.update_family_member(
            request.member.member_id, messages.member_facts(request.member)
        )
        return casework_pb2.UpdateFamilyMemberResponse(member=messages.family_member(view), categories=list(categories))

    def RemoveFamilyMember(
        self, request: casework_pb2.RemoveFamilyMemberRequest, context: grpc.ServicerContext
    ) -> casework_pb2.RemoveFamilyMemberResponse:
        categories = self._service.remove_family_member(request.member_id, request.reason)
        return casework_pb2.RemoveFamilyMemberResponse(categories=list(categories))

    def AddCategory(
        self, request: casework_pb2.AddCategoryRequest, context: grpc.ServicerContext
    ) -> casework_pb2.AddCategoryResponse:
        view, categories = self._service.add_category(messages.new_category(request))
        return casework_pb2.AddCategoryResponse(entry=messages.category_entry(view), categories=list(categories))

    def EndCategory(
        self, request: casework_pb2.EndCategoryRequest, context: grpc.ServicerContext
    ) -> casework_pb2.EndCategoryResponse:
        view, categories = self._service.end_category(
            request.entry_id, messages.to_date(request.valid_to, "valid_to"), request.reason
        )
        return casework_pb2.EndCategoryResponse(entry=messages.category_entry(view), categories=list(categories))

    def AssignCase(
        self, request: casework_pb2.AssignCaseRequest, context: grpc.ServicerContext
    ) -> casework_pb2.AssignCaseResponse:
        case_id, staff, version = self._service.assign_case(
            request.child_id, messages.case_staff(request), messages.expected_version(request)
        )
        return casework_pb2.AssignCaseResponse(case_id=case_id, version=version, **messages.staff_fields(staff))

    def ChangeCaseStatus(
        self, request: casework_pb2.ChangeCaseStatusRequest, context: grpc.ServicerContext
    ) -> casework_pb2.ChangeCaseStatusResponse:
        view = self._service.change_case_status(
            request.child_id, request.status, request.reason, messages.expected_version(request)
        )
        return casework_pb2.ChangeCaseStatusResponse(
            case_id=view.case_id,
            status=view.status.value,
            next_visit_due=messages.from_date(view.next_visit_due),
            version=view.version,
        )

    def RecordAssessment(
        self, request: casework_pb2.RecordAssessmentRequest, context: grpc.ServicerContext
    ) -> casework_pb2.RecordAssessmentResponse:
        view, due = self._service.record_assessment(messages.new_assessment(request))
        return casework_pb2.RecordAssessmentResponse(
            assessment=messages.assessment(view), next_visit_due=messages.from_date(due)
        )

    def AddPlanGoal(
        self, request: casework_pb2.AddPlanGoalRequest, context: grpc.ServicerContext
    ) -> casework_pb2.AddPlanGoalResponse:
        view = self._service.add_plan_goal(request.child_id, request.description)
        return casework_pb2.AddPlanGoalResponse(goal=messages.plan_goal(view))

    def UpdatePlanGoal(
        self, request: casework_pb2.UpdatePlanGoalRequest, context: grpc.ServicerContext
    ) -> casework_pb2.UpdatePlanGoalResponse:
        view = self._service.update_plan_goal(request.goal_id, request.description, request.status)
        return casework_pb2.UpdatePlanGoalResponse(goal=messages.plan_goal(view))

    def AddPlanAction(
        self, request: casework_pb2.AddPlanActionRequest, context: grpc.ServicerContext
    ) -> casework_pb2.AddPlanActionResponse:
        view = self._service.add_plan_action(messages.new_plan_action(request))
        return casework_pb2.AddPlanActionResponse(action=messages.plan_action(view))

    def UpdatePlanAction(
        self, request: casework_pb2.UpdatePlanActionRequest, context: grpc.ServicerContext
    ) -> casework_pb2.UpdatePlanActionResponse:
        view = self._service.update_plan_action(messages.plan_action_change(request))
        return casework_pb2.UpdatePlanActionResponse(action=messages.plan_action(view))

    def RecordVisit(
        self, request: casework_pb2.RecordVisitRequest, context: grpc.ServicerContext
    ) -> casework_pb2.RecordVisitResponse:
        view, due = self._service.record_visit(messages.new_visit(request))
        return casework_pb2.RecordVisitResponse(visit=messages.visit(view), next_visit_due=messages.from_date(due))

    def ListChanges(
        self, request: casework_pb2.ListChangesRequest, context: grpc.ServicerContext
    ) -> casework_pb2.ListChangesResponse:
        changes, token = self._service.list_changes(
            request.child_id, request.purpose, request.page_size, request.page_token
        )
        return casework_pb2.ListChangesResponse(
            changes=[messages.change_entry(c) for c in changes], next_page_token=token
        )


def register(service: RegistryService, casework: CaseworkService) -> Callable[[grpc.Server], list[str]]:
    def add(server: grpc.Server) -> list[str]:
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(service), server)
        registry_pb2_grpc.add_TenantDirectoryServiceServicer_to_server(TenantDirectoryServicer(service), server)
        casework_pb2_grpc.add_CaseworkServiceServicer_to_server(CaseworkServicer(casework), server)
        return [
            registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name,
            registry_pb2.DESCRIPTOR.services_by_name["TenantDirectoryService"].full_name,
            casework_pb2.DESCRIPTOR.services_by_name["CaseworkService"].full_name,
        ]

    return add
