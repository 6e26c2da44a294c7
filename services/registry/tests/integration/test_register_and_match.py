"""The register over real gRPC on real PostgreSQL: identity numbers protected, matching, audited reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import grpc
import pytest
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc
from sqlalchemy import create_engine, text

from platform_runtime.auth import Role
from platform_runtime.settings import KafkaSettings
from services.registry.domain.identity import make_identity_number
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, Secrets
from tests.support.services import Running, bearer, running_registry

pytestmark = pytest.mark.integration

NUMBER = make_identity_number("110111", date(2016, 5, 12), 123)  # odd sequence: a boy


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
def stub(registry: Running) -> Iterator[registry_pb2_grpc.RegistryServiceStub]:
    with registry.channel() as channel:
        yield registry_pb2_grpc.RegistryServiceStub(channel)


@pytest.fixture(scope="module")
def registered(stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets) -> registry_pb2.Child:
    reply = stub.RegisterChild(
        registry_pb2.RegisterChildRequest(
            legal_name="王小明",
            sex=common_pb2.SEX_MALE,
            birth_date=common_pb2.Date(year=2016, month=5, day=12),
            identity_number=NUMBER,
            household_division_code=PILOT_TENANT,
            residence_division_code=PILOT_TENANT + "201",
            school="良乡中心小学",
        ),
        metadata=bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER)),
    )
    child: registry_pb2.Child = reply.child
    return child


def test_the_identity_number_is_encrypted_at_rest_and_shown_masked(
    registered: registry_pb2.Child, registry: Running
) -> None:
    assert registered.identity_number_masked == "*" * 17 + NUMBER[-1]
    engine = create_engine(registry.database.owner_url)
    with engine.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
        row = connection.execute(text("SELECT * FROM children WHERE id = :id"), {"id": registered.child_id}).one()
        keys = connection.execute(
            text("SELECT match_key FROM child_match_keys WHERE child_id = :id"), {"id": registered.child_id}
        ).all()
    engine.dispose()
    stored = " ".join(str(value) for value in row)
    assert NUMBER not in stored and NUMBER[6:14] not in row.identity_number_cipher
    # Blocking keys are keyed hashes too: no pinyin, no birth date in clear.
    assert keys and all(len(k.match_key) == 64 and "wang" not in k.match_key for k in keys)


def test_bad_numbers_are_refused_with_the_reason(stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets) -> None:
    wrong_check = NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1")
    with pytest.raises(grpc.RpcError) as refused:
        stub.RegisterChild(
            registry_pb2.RegisterChildRequest(legal_name="李四", identity_number=wrong_check, sex=common_pb2.SEX_MALE),
            metadata=bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER)),
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "check character" in (refused.value.details() or "")
    with pytest.raises(grpc.RpcError) as contradicts:
        stub.RegisterChild(
            registry_pb2.RegisterChildRequest(legal_name="李四", identity_number=NUMBER, sex=common_pb2.SEX_FEMALE),
            metadata=bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER)),
        )
    assert contradicts.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "sex" in (contradicts.value.details() or "")


def test_the_same_number_cannot_be_registered_twice(
    stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets, registered: registry_pb2.Child
) -> None:
    with pytest.raises(grpc.RpcError) as duplicate:
        stub.RegisterChild(
            registry_pb2.RegisterChildRequest(legal_name="王小明", identity_number=NUMBER, sex=common_pb2.SEX_MALE),
            metadata=bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER)),
        )
    assert duplicate.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_children_without_an_identity_number_are_recordable(
    stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets
) -> None:
    reply = stub.RegisterChild(
        registry_pb2.RegisterChildRequest(description="约五岁女孩，自称小红，不知家住何处", provisional=True),
        metadata=bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER)),
    )
    assert reply.child.provisional and not reply.child.identity_number_masked


@pytest.mark.parametrize(
    ("probe", "reason"),
    [
        (registry_pb2.MatchChildRequest(identity_number=NUMBER), "identity"),
        (
            registry_pb2.MatchChildRequest(name="王晓明", birth_date=common_pb2.Date(year=2016, month=5, day=12)),
            "homophone",
        ),
        (
            registry_pb2.MatchChildRequest(name="小明王", birth_date=common_pb2.Date(year=2016, month=5, day=12)),
            "swapped",
        ),
    ],
)
def test_match_child_finds_the_registered_child(
    stub: registry_pb2_grpc.RegistryServiceStub,
    secrets: Secrets,
    registered: registry_pb2.Child,
    probe: registry_pb2.MatchChildRequest,
    reason: str,
) -> None:
    reply = stub.MatchChild(probe, metadata=bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER)))
    assert reply.candidates and reply.candidates[0].child.child_id == registered.child_id
    assert any(reason in r for r in reply.candidates[0].reasons), reply.candidates[0].reasons
    other_town = stub.MatchChild(probe, metadata=bearer(secrets.token(OTHER_TENANT, Role.CASEWORKER)))
    assert registered.child_id not in {c.child.child_id for c in other_town.candidates}


def test_reading_a_case_file_needs_a_purpose_and_is_audited(
    stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets, registered: registry_pb2.Child, registry: Running
) -> None:
    caseworker = bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER, user="wang.sg"))
    with pytest.raises(grpc.RpcError) as no_purpose:
        stub.GetCaseFile(registry_pb2.GetCaseFileRequest(child_id=registered.child_id), metadata=caseworker)
    assert no_purpose.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    case = stub.GetCaseFile(
        registry_pb2.GetCaseFileRequest(child_id=registered.child_id, purpose="首次入户评估前查阅"), metadata=caseworker
    ).case_file
    assert case.status == "identified" and case.timeline[0].kind == "registered"

    engine = create_engine(registry.database.owner_url)
    with engine.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
        audit = connection.execute(
            text("SELECT actor, action, purpose FROM audit_log WHERE subject_id = :id"), {"id": case.case_id}
        ).all()
    engine.dispose()
    assert [(a.actor, a.action, a.purpose) for a in audit] == [("wang.sg", "read_case_file", "首次入户评估前查阅")]

    app = create_engine(registry.database.app_url)
    with pytest.raises(Exception, match="permission denied"), app.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
        connection.execute(text("DELETE FROM audit_log"))  # the audit trail is append-only for the service
    app.dispose()


def test_every_read_of_a_childs_record_is_audited(
    stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets, registered: registry_pb2.Child, registry: Running
) -> None:
    """The child's record carries health facts (disability, serious illness): GetChild, ListChildren and the
    candidates MatchChild shows are recorded like case-file reads, one row per child shown."""
    reader = bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER, user="li.reader"))
    stub.GetChild(registry_pb2.GetChildRequest(child_id=registered.child_id), metadata=reader)
    listed = stub.ListChildren(registry_pb2.ListChildrenRequest(page_size=500), metadata=reader).children
    matched = stub.MatchChild(
        registry_pb2.MatchChildRequest(name="王小明", birth_date=common_pb2.Date(year=2016, month=5, day=12)),
        metadata=reader,
    ).candidates
    assert registered.child_id in {c.child_id for c in listed}
    assert registered.child_id in {c.child.child_id for c in matched}

    engine = create_engine(registry.database.owner_url)
    with engine.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
        audit = connection.execute(
            text("SELECT action, subject_type, subject_id FROM audit_log WHERE actor = 'li.reader' ORDER BY id")
        ).all()
    engine.dispose()
    by_action: dict[str, set[str]] = {}
    for row in audit:
        assert row.subject_type == "child"
        by_action.setdefault(row.action, set()).add(row.subject_id)
    assert by_action == {
        "read_child": {registered.child_id},
        "list_children": {c.child_id for c in listed},
        "match_child": {c.child.child_id for c in matched},
    }
    assert len(audit) == 1 + len(listed) + len(matched)


@pytest.mark.parametrize("role", [Role.FINANCE_AUDITOR, Role.PUBLIC, Role.MANDATED_REPORTER])
def test_roles_without_need_cannot_read_case_files(
    stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets, registered: registry_pb2.Child, role: Role
) -> None:
    with pytest.raises(grpc.RpcError) as denied:
        stub.GetCaseFile(
            registry_pb2.GetCaseFileRequest(child_id=registered.child_id, purpose="looking around"),
            metadata=bearer(secrets.token(PILOT_TENANT, role)),
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_the_public_cannot_search_the_register(stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets) -> None:
    with pytest.raises(grpc.RpcError) as denied:
        stub.MatchChild(
            registry_pb2.MatchChildRequest(name="王小明"), metadata=bearer(secrets.token(PILOT_TENANT, Role.PUBLIC))
        )
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
