"""No lost updates in the register: two people editing one child or one case file at the same time, over
real gRPC on real PostgreSQL. The loser gets ABORTED (or FAILED_PRECONDITION when the winner's change makes
theirs impossible), never a silent overwrite."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import casework_pb2, casework_pb2_grpc, registry_pb2, registry_pb2_grpc
from sqlalchemy import create_engine, text

from platform_runtime.auth import Role
from platform_runtime.settings import KafkaSettings
from tests.support.infra import DISTRICT, PILOT_TENANT, Secrets
from tests.support.race import race
from tests.support.services import Running, bearer, running_registry

pytestmark = pytest.mark.integration
Who = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module")
def registry(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Running]:
    with running_registry(postgres_url, kafka, secrets) as running, running.channel() as channel:
        registry_pb2_grpc.TenantDirectoryServiceStub(channel).OnboardTenant(
            registry_pb2.OnboardTenantRequest(code=PILOT_TENANT, name="良乡镇", district_code=DISTRICT),
            metadata=bearer(secrets.token(PILOT_TENANT, Role.SYSTEM)),
        )
        yield running


@pytest.fixture(scope="module")
def channel(registry: Running) -> Iterator[grpc.Channel]:
    with registry.channel() as channel:
        yield channel


@pytest.fixture(scope="module")
def who(secrets: Secrets) -> Who:
    return bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER, user="li.sg"))


def new_child(channel: grpc.Channel, who: Who, name: str) -> registry_pb2.Child:
    request = registry_pb2.RegisterChildRequest(
        legal_name=name,
        sex=common_pb2.SEX_MALE,
        birth_date=common_pb2.Date(year=2014, month=5, day=1),
        household_division_code=PILOT_TENANT,
    )
    child: registry_pb2.Child = (
        registry_pb2_grpc.RegistryServiceStub(channel).RegisterChild(request, metadata=who).child
    )
    return child


def case_version(channel: grpc.Channel, who: Who, child_id: str) -> int:
    request = registry_pb2.GetCaseFileRequest(child_id=child_id, purpose="并发测试 concurrency test")
    return int(registry_pb2_grpc.RegistryServiceStub(channel).GetCaseFile(request, metadata=who).case_file.version)


def status_changes(registry: Running, case_id: str) -> int:
    """How many status changes the change history kept for the case file (as the owner, in the pilot town)."""
    engine = create_engine(registry.database.owner_url)
    with engine.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
        rows = connection.execute(
            text("SELECT changes FROM change_history WHERE entity_type = 'case_file' AND entity_id = :id"),
            {"id": case_id},
        ).all()
    engine.dispose()
    return sum(1 for row in rows if "status" in (row.changes if isinstance(row.changes, dict) else {}))


def test_a_stale_expected_version_is_aborted_and_changes_nothing(channel, who):
    register, casework = registry_pb2_grpc.RegistryServiceStub(channel), casework_pb2_grpc.CaseworkServiceStub(channel)
    child = new_child(channel, who, "赵小明")
    read = case_version(channel, who, child.child_id)
    assert read >= 1

    moved = casework.ChangeCaseStatus(
        casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="assessing", expected_version=read),
        metadata=who,
    )
    assert moved.version == read + 1 == case_version(channel, who, child.child_id)

    with pytest.raises(grpc.RpcError) as stale:
        casework.AssignCase(
            casework_pb2.AssignCaseRequest(child_id=child.child_id, social_worker="周社工", expected_version=read),
            metadata=who,
        )
    assert stale.value.code() is grpc.StatusCode.ABORTED
    assert "reload" in (stale.value.details() or "")
    assigned = casework.AssignCase(
        casework_pb2.AssignCaseRequest(child_id=child.child_id, social_worker="周社工", expected_version=moved.version),
        metadata=who,
    )
    assert assigned.version == moved.version + 1

    update = registry_pb2.UpdateChildRequest(
        child_id=child.child_id, school="良乡中心小学", update_mask=FieldMask(paths=["school"])
    )
    update.expected_version = child.version + 1  # a version nobody read
    with pytest.raises(grpc.RpcError) as stale_child:
        register.UpdateChild(update, metadata=who)
    assert stale_child.value.code() is grpc.StatusCode.ABORTED
    update.expected_version = child.version
    updated = register.UpdateChild(update, metadata=who).child
    assert (updated.school, updated.version) == ("良乡中心小学", child.version + 1)


def test_two_status_changes_from_one_version_race_and_exactly_one_wins(channel, who, registry):
    casework = casework_pb2_grpc.CaseworkServiceStub(channel)
    for round_ in range(3):
        child = new_child(channel, who, f"钱小{'一二三'[round_]}")
        read = case_version(channel, who, child.child_id)

        def change(status: str, reason: str = "", child_id: str = child.child_id, read: int = read) -> Any:
            request = casework_pb2.ChangeCaseStatusRequest(
                child_id=child_id, status=status, reason=reason, expected_version=read
            )
            return casework.ChangeCaseStatus(request, metadata=who)

        # Two people who read the same version: one starts the assessment, the other closes the case.
        codes = race(lambda: change("assessing"), lambda: change("closed", "重复登记 registered twice"))
        assert sorted(codes, key=lambda c: c.name) == [grpc.StatusCode.ABORTED, grpc.StatusCode.OK], codes
        assert case_version(channel, who, child.child_id) == read + 1


def test_concurrent_changes_without_expected_version_never_both_apply(channel, who, registry):
    """The issue's case: two people move one case at once, neither sending a version. Before, both passed."""
    register = registry_pb2_grpc.RegistryServiceStub(channel)
    casework = casework_pb2_grpc.CaseworkServiceStub(channel)
    for round_ in range(3):
        child = new_child(channel, who, f"孙小{'一二三'[round_]}")
        case_id = register.GetCaseFile(
            registry_pb2.GetCaseFileRequest(child_id=child.child_id, purpose="并发测试"), metadata=who
        ).case_file.case_id
        request = casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="assessing")
        change = partial(casework.ChangeCaseStatus, request, metadata=who)
        codes = race(change, change)
        assert codes.count(grpc.StatusCode.OK) == 1, codes
        assert set(codes) - {grpc.StatusCode.OK} <= {grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION}
        assert status_changes(registry, case_id) == 1


def merged_into(registry: Running, *child_ids: str) -> dict[str, str | None]:
    """Where each record points now (as the owner, in the pilot town)."""
    engine = create_engine(registry.database.owner_url)
    with engine.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
        rows = connection.execute(
            text("SELECT id, merged_into FROM children WHERE id = ANY(:ids)"), {"ids": list(child_ids)}
        ).all()
    engine.dispose()
    return {row.id: row.merged_into for row in rows}


def test_two_merges_of_one_pair_in_opposite_directions_never_both_apply(channel, who, registry):
    """A into B and B into A at the same moment: one wins, the other is told to reload (ABORTED) or that the
    record is merged already (FAILED_PRECONDITION), never an internal error (a deadlock); no merge loop."""
    register = registry_pb2_grpc.RegistryServiceStub(channel)

    def merge(surviving: str, merged: str) -> Any:
        request = registry_pb2.MergeChildrenRequest(
            surviving_child_id=surviving, merged_child_id=merged, reason="重复登记 registered twice"
        )
        return register.MergeChildren(request, metadata=who)

    for round_ in range(4):
        a, b = (new_child(channel, who, f"周小{'一二三四'[round_]}{n}").child_id for n in "甲乙")
        codes = race(partial(merge, b, a), partial(merge, a, b))
        assert codes.count(grpc.StatusCode.OK) == 1, codes
        assert set(codes) - {grpc.StatusCode.OK} <= {grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION}
        pointers = merged_into(registry, a, b)
        assert pointers in ({a: b, b: None}, {a: None, b: a}), pointers  # exactly the winner's merge

        # Undoing the merge while the other direction is asked for: each applies in turn or is refused.
        duplicate, survivor = (a, b) if pointers[a] else (b, a)
        unmerge = registry_pb2.UnmergeChildrenRequest(merged_child_id=duplicate, reason="核实为两人 two children")
        codes = race(partial(register.UnmergeChildren, unmerge, metadata=who), partial(merge, duplicate, survivor))
        assert codes[0] is grpc.StatusCode.OK, codes
        assert codes[1] in {grpc.StatusCode.OK, grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION}, codes
        after = {survivor: duplicate, duplicate: None} if codes[1] is grpc.StatusCode.OK else {a: None, b: None}
        assert merged_into(registry, a, b) == after
