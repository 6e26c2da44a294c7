"""Each town's villages and communities over real gRPC on real PostgreSQL: the list the town keeps, and a
child recorded in the town only at one of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc

from platform_runtime.auth import Role
from platform_runtime.settings import KafkaSettings
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, Secrets
from tests.support.services import Running, bearer, running_registry

pytestmark = pytest.mark.integration

LISTED = [("201", "南关村"), ("202", "北关村"), ("001", "苏庄社区")]


@pytest.fixture(scope="module")
def registry(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Running]:
    with running_registry(postgres_url, kafka, secrets) as running:
        directory = registry_pb2_grpc.TenantDirectoryServiceStub(running.channel())
        for code in (PILOT_TENANT, OTHER_TENANT):
            directory.OnboardTenant(
                registry_pb2.OnboardTenantRequest(code=code, name=f"town {code}", district_code=DISTRICT),
                metadata=bearer(secrets.token(code, Role.SYSTEM)),
            )
        yield running


@pytest.fixture(scope="module")
def directory(registry: Running) -> Iterator[registry_pb2_grpc.TenantDirectoryServiceStub]:
    with registry.channel() as channel:
        yield registry_pb2_grpc.TenantDirectoryServiceStub(channel)


@pytest.fixture(scope="module")
def stub(registry: Running) -> Iterator[registry_pb2_grpc.RegistryServiceStub]:
    with registry.channel() as channel:
        yield registry_pb2_grpc.RegistryServiceStub(channel)


def villages(*numbered: tuple[str, str]) -> list[registry_pb2.Village]:
    return [registry_pb2.Village(code=PILOT_TENANT + number, name=name) for number, name in numbered]


def error_of(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def register(stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets, residence: str) -> registry_pb2.Child:
    reply = stub.RegisterChild(
        registry_pb2.RegisterChildRequest(legal_name="刘小雨", residence_division_code=residence),
        metadata=bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER)),
    )
    child: registry_pb2.Child = reply.child
    return child


def test_a_town_keeps_its_village_list_and_children_are_recorded_at_its_villages(
    directory: registry_pb2_grpc.TenantDirectoryServiceStub,
    stub: registry_pb2_grpc.RegistryServiceStub,
    secrets: Secrets,
) -> None:
    admin = bearer(secrets.token(PILOT_TENANT, Role.TOWN_ADMIN))
    # Before the town records its list, a code of the town is checked for its form only.
    before = register(stub, secrets, PILOT_TENANT + "299")

    first = directory.SetVillages(registry_pb2.SetVillagesRequest(villages=villages(*LISTED)), metadata=admin)
    assert (first.added, first.renamed, first.retired) == (3, 0, 0)
    assert [v.code[9:] for v in first.villages] == ["001", "201", "202"]

    refused = error_of(lambda: register(stub, secrets, PILOT_TENANT + "299"))
    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "residence_division_code" in (refused.details() or "") and "unknown division code" in (
        refused.details() or ""
    )
    assert register(stub, secrets, PILOT_TENANT + "201").residence_division_code == PILOT_TENANT + "201"
    assert register(stub, secrets, PILOT_TENANT).residence_division_code == PILOT_TENANT  # the town itself
    assert register(stub, secrets, "110105001201").residence_division_code == "110105001201"  # another district

    # 北关村 merges into 南关村 (撤村并居), 苏庄社区 is renamed: the new list retires one and renames one.
    second = directory.SetVillages(
        registry_pb2.SetVillagesRequest(villages=villages(("201", "南关村"), ("001", "苏庄新区社区"))), metadata=admin
    )
    assert (second.added, second.renamed, second.retired) == (0, 1, 1)
    caseworker = bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER))
    current = directory.ListVillages(registry_pb2.ListVillagesRequest(), metadata=caseworker).villages
    assert [(v.code[9:], v.name) for v in current] == [("001", "苏庄新区社区"), ("201", "南关村")]
    everything = directory.ListVillages(registry_pb2.ListVillagesRequest(include_retired=True), metadata=caseworker)
    assert [(v.code[9:], v.retired) for v in everything.villages] == [("001", False), ("201", False), ("202", True)]
    assert error_of(lambda: register(stub, secrets, PILOT_TENANT + "202")).code() is grpc.StatusCode.INVALID_ARGUMENT

    # A child recorded before keeps a code the town no longer lists while other fields change...
    changed = stub.UpdateChild(
        registry_pb2.UpdateChildRequest(
            child_id=before.child_id, school="南关小学", update_mask=FieldMask(paths=["school"])
        ),
        metadata=caseworker,
    ).child
    assert changed.school == "南关小学" and changed.residence_division_code == PILOT_TENANT + "299"
    # ...but a move is to a village the town lists.
    moving = registry_pb2.UpdateChildRequest(
        child_id=before.child_id,
        residence_division_code=PILOT_TENANT + "202",
        update_mask=FieldMask(paths=["residence_division_code"]),
    )
    assert error_of(lambda: stub.UpdateChild(moving, metadata=caseworker)).code() is grpc.StatusCode.INVALID_ARGUMENT


def test_village_lists_are_the_towns_own(
    directory: registry_pb2_grpc.TenantDirectoryServiceStub, secrets: Secrets
) -> None:
    other_admin = bearer(secrets.token(OTHER_TENANT, Role.TOWN_ADMIN))
    # A town cannot list another town's villages as its own...
    foreign = registry_pb2.SetVillagesRequest(villages=villages(("203", "西关村")))
    refused = error_of(lambda: directory.SetVillages(foreign, metadata=other_admin))
    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT and "villages[0].code" in (refused.details() or "")
    # ...and sees none of them.
    listed = directory.ListVillages(registry_pb2.ListVillagesRequest(include_retired=True), metadata=other_admin)
    assert all(v.code.startswith(OTHER_TENANT) for v in listed.villages)


@pytest.mark.parametrize(
    ("numbered", "field"),
    [
        ([("2O1", "南关村")], "villages[0].code"),  # a letter O for a zero
        ([("000", "城关镇")], "villages[0].code"),  # the town itself
        ([("201", "南关村"), ("201", "南关二村")], "villages[1].code"),
        ([("201", "")], "villages[0].name"),
    ],
)
def test_a_bad_list_is_refused_whole_with_each_reason(
    directory: registry_pb2_grpc.TenantDirectoryServiceStub,
    secrets: Secrets,
    numbered: list[tuple[str, str]],
    field: str,
) -> None:
    request = registry_pb2.SetVillagesRequest(villages=villages(*numbered))
    refused = error_of(
        lambda: directory.SetVillages(request, metadata=bearer(secrets.token(PILOT_TENANT, Role.TOWN_ADMIN)))
    )
    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT and field in (refused.details() or "")


@pytest.mark.parametrize("role", [Role.CASEWORKER, Role.CHILD_DIRECTOR, Role.PUBLIC, Role.FINANCE_AUDITOR])
def test_only_the_town_administration_sets_the_list(
    directory: registry_pb2_grpc.TenantDirectoryServiceStub, secrets: Secrets, role: Role
) -> None:
    request = registry_pb2.SetVillagesRequest(villages=villages(("201", "南关村")))
    refused = error_of(lambda: directory.SetVillages(request, metadata=bearer(secrets.token(PILOT_TENANT, role))))
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
