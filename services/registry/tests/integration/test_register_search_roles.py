"""Reporters, agencies and the public cannot search the register (real gRPC, real PostgreSQL).

Not even through MatchChild: a report is linked to a child by the reporting service on its own account (a
workload token signed with reporting's key), never with the reporter's identity.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import grpc
import pytest
from google.protobuf.message import Message
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc

from platform_runtime.auth import Role, TokenIssuer, workload_principal
from platform_runtime.settings import KafkaSettings
from services.registry.domain.identity import make_identity_number
from tests.support.infra import DISTRICT, PILOT_TENANT, Secrets
from tests.support.services import Running, bearer, running_registry

pytestmark = pytest.mark.integration

NUMBER = make_identity_number("110111", date(2015, 3, 9), 246)
REPORTERS = [Role.MANDATED_REPORTER, Role.AGENCY_OFFICER, Role.AGENCY_SYSTEM]
PROBE = registry_pb2.MatchChildRequest(
    name="李小红", identity_number=NUMBER, birth_date=common_pb2.Date(year=2015, month=3, day=9)
)


@pytest.fixture(scope="module")
def registry(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Running]:
    with running_registry(postgres_url, kafka, secrets) as running:
        registry_pb2_grpc.TenantDirectoryServiceStub(running.channel()).OnboardTenant(
            registry_pb2.OnboardTenantRequest(code=PILOT_TENANT, name="town", district_code=DISTRICT),
            metadata=bearer(secrets.token(PILOT_TENANT, Role.SYSTEM)),
        )
        yield running


@pytest.fixture(scope="module")
def stub(registry: Running) -> Iterator[registry_pb2_grpc.RegistryServiceStub]:
    with registry.channel() as channel:
        yield registry_pb2_grpc.RegistryServiceStub(channel)


@pytest.fixture(scope="module")
def child_id(stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets) -> str:
    reply = stub.RegisterChild(
        registry_pb2.RegisterChildRequest(
            legal_name="李小红",
            sex=common_pb2.SEX_FEMALE,
            birth_date=common_pb2.Date(year=2015, month=3, day=9),
            identity_number=NUMBER,
            household_division_code=PILOT_TENANT,
            residence_division_code=PILOT_TENANT + "201",
            school="良乡中心小学",
        ),
        metadata=bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER)),
    )
    return str(reply.child.child_id)


def _token(secrets: Secrets, role: Role) -> tuple[tuple[str, str], ...]:
    return bearer(secrets.token(PILOT_TENANT, role, agency="police" if role.name.startswith("AGENCY") else ""))


def test_staff_match_sees_the_child(
    stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets, child_id: str
) -> None:
    reply = stub.MatchChild(PROBE, metadata=_token(secrets, Role.CASEWORKER))
    [found] = reply.candidates
    assert found.child.child_id == child_id and found.child.legal_name == "李小红" and found.reasons
    assert found.child.identity_number_masked == "*" * 17 + NUMBER[-1]


def test_the_reporting_service_matches_and_registers_as_itself(
    stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets, child_id: str
) -> None:
    reporting = TokenIssuer(secrets.workload_keys["reporting"])
    metadata = bearer(reporting.issue(workload_principal("reporting", PILOT_TENANT), "registry"))
    [found] = stub.MatchChild(PROBE, metadata=metadata).candidates
    assert found.child.child_id == child_id and found.score > 0
    provisional = registry_pb2.RegisterChildRequest(
        legal_name="赵小童", provisional=True, household_division_code=PILOT_TENANT
    )
    assert stub.RegisterChild(provisional, metadata=metadata).child.provisional


@pytest.mark.parametrize("role", [*REPORTERS, Role.PUBLIC])
def test_reporters_agencies_and_the_public_cannot_list_or_read_children(
    stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets, child_id: str, role: Role
) -> None:
    metadata = _token(secrets, role)
    calls: list[tuple[str, Message]] = [
        ("ListChildren", registry_pb2.ListChildrenRequest()),
        ("ListChildren", registry_pb2.ListChildrenRequest(division_code=PILOT_TENANT)),
        ("GetChild", registry_pb2.GetChildRequest(child_id=child_id)),
    ]
    for method, request in calls:
        with pytest.raises(grpc.RpcError) as denied:
            getattr(stub, method)(request, metadata=metadata)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("role", [*REPORTERS, Role.PUBLIC])
def test_reporters_agencies_and_the_public_cannot_match_nor_register(
    stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets, child_id: str, role: Role
) -> None:
    provisional = registry_pb2.RegisterChildRequest(
        legal_name="赵小童", provisional=True, household_division_code=PILOT_TENANT
    )
    for method, request in (("MatchChild", PROBE), ("RegisterChild", provisional)):
        with pytest.raises(grpc.RpcError) as denied:
            getattr(stub, method)(request, metadata=_token(secrets, role))
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
