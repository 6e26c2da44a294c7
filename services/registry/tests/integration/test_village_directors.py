"""A village child director sees the children of their own villages only (real gRPC, real PostgreSQL; issue 15).

Two children of one town, one in village A and one in village B: the director of A reads, lists, exports,
counts and visits the first, and the second is absent for them (NotFound, as another town's child); a
caseworker of the town still sees both. A survey import by the director takes their villages' rows only.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date

import grpc
import pytest
from minorprot.registry.v1 import (
    casework_pb2,
    casework_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    survey_pb2,
    survey_pb2_grpc,
)
from openpyxl import load_workbook

from platform_runtime.auth import Role
from platform_runtime.settings import KafkaSettings
from services.registry.domain.identity import make_identity_number
from services.registry.tests.integration.test_survey_batches import csv_of, import_all
from tests.support.infra import DISTRICT, PILOT_TENANT, Secrets
from tests.support.services import Running, bearer, running_registry

pytestmark = pytest.mark.integration

VILLAGE_A, VILLAGE_B = PILOT_TENANT + "211", PILOT_TENANT + "212"
Metadata = tuple[tuple[str, str], ...]
Outcome = survey_pb2.SurveyRowOutcome
ACCEPTED, UNCHANGED = Outcome.SURVEY_ROW_OUTCOME_ACCEPTED, Outcome.SURVEY_ROW_OUTCOME_UNCHANGED
REJECTED, POSSIBLE_DUPLICATE = Outcome.SURVEY_ROW_OUTCOME_REJECTED, Outcome.SURVEY_ROW_OUTCOME_POSSIBLE_DUPLICATE


@pytest.fixture(scope="module")
def registry(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Running]:
    with running_registry(postgres_url, kafka, secrets) as running:
        registry_pb2_grpc.TenantDirectoryServiceStub(running.channel()).OnboardTenant(
            registry_pb2.OnboardTenantRequest(code=PILOT_TENANT, name="town", district_code=DISTRICT),
            metadata=bearer(secrets.token(PILOT_TENANT, Role.SYSTEM)),
        )
        yield running


@pytest.fixture(scope="module")
def channel(registry: Running) -> Iterator[grpc.Channel]:
    with registry.channel() as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> registry_pb2_grpc.RegistryServiceStub:
    return registry_pb2_grpc.RegistryServiceStub(channel)


@pytest.fixture(scope="module")
def caseworker(secrets: Secrets) -> Metadata:
    return bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER))


@pytest.fixture(scope="module")
def director_of_a(secrets: Secrets) -> Metadata:
    return bearer(secrets.token(PILOT_TENANT, Role.CHILD_DIRECTOR, "director.a", villages=(VILLAGE_A,)))


@pytest.fixture(scope="module")
def children(stub: registry_pb2_grpc.RegistryServiceStub, caseworker: Metadata) -> dict[str, str]:
    """Village -> the id of a child living there (the register may hold other tests' children)."""
    found = {}
    for village, name in ((VILLAGE_A, "甲村小明"), (VILLAGE_B, "乙村小红")):
        reply = stub.RegisterChild(
            registry_pb2.RegisterChildRequest(
                legal_name=name, residence_division_code=village, household_division_code=village
            ),
            metadata=caseworker,
        )
        found[village] = reply.child.child_id
    return found


def absent(call: object) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND, raised.value.details()


def listed(stub: registry_pb2_grpc.RegistryServiceStub, caller: Metadata) -> set[str]:
    ids: set[str] = set()
    token = ""
    while True:
        reply = stub.ListChildren(registry_pb2.ListChildrenRequest(page_size=500, page_token=token), metadata=caller)
        ids |= {child.child_id for child in reply.children}
        token = reply.next_page_token
        if not token:
            return ids


def exported_villages(channel: grpc.Channel, caller: Metadata) -> set[str]:
    survey = survey_pb2_grpc.SurveyServiceStub(channel)
    chunks = survey.ExportRegister(survey_pb2.ExportRegisterRequest(purpose="村级台账核对"), metadata=caller)
    workbook = load_workbook(io.BytesIO(b"".join(chunk.content for chunk in chunks)), read_only=True)
    return {str(row[1]) for row in list(workbook["分类台账"].iter_rows(values_only=True))[1:]}


def village_counts(stub: registry_pb2_grpc.RegistryServiceStub, caller: Metadata) -> tuple[int, dict[str, int]]:
    reply = stub.GetRegisterStatistics(registry_pb2.GetRegisterStatisticsRequest(), metadata=caller)
    return reply.children, {count.key: count.count for count in reply.by_village}


def test_a_director_reads_their_village_only(
    stub: registry_pb2_grpc.RegistryServiceStub, director_of_a: Metadata, children: dict[str, str]
) -> None:
    own, other = children[VILLAGE_A], children[VILLAGE_B]
    assert stub.GetChild(registry_pb2.GetChildRequest(child_id=own), metadata=director_of_a).child.child_id == own
    case = stub.GetCaseFile(registry_pb2.GetCaseFileRequest(child_id=own, purpose="入户走访"), metadata=director_of_a)
    assert case.case_file.child.child_id == own
    absent(lambda: stub.GetChild(registry_pb2.GetChildRequest(child_id=other), metadata=director_of_a))
    absent(
        lambda: stub.GetCaseFile(
            registry_pb2.GetCaseFileRequest(child_id=other, purpose="入户走访"), metadata=director_of_a
        )
    )


def test_a_director_lists_exports_and_counts_their_village_only(
    stub: registry_pb2_grpc.RegistryServiceStub,
    channel: grpc.Channel,
    director_of_a: Metadata,
    caseworker: Metadata,
    children: dict[str, str],
) -> None:
    assert children[VILLAGE_A] in listed(stub, director_of_a)
    assert children[VILLAGE_B] not in listed(stub, director_of_a)
    assert exported_villages(channel, director_of_a) == {VILLAGE_A}
    total, by_village = village_counts(stub, director_of_a)
    assert set(by_village) == {VILLAGE_A} and total == by_village[VILLAGE_A]

    # The town's caseworker still sees the whole town.
    assert set(children.values()) <= listed(stub, caseworker)
    assert {VILLAGE_A, VILLAGE_B} <= exported_villages(channel, caseworker)
    total, by_village = village_counts(stub, caseworker)
    assert {VILLAGE_A, VILLAGE_B} <= set(by_village) and total >= by_village[VILLAGE_A] + by_village[VILLAGE_B]


def test_a_director_visits_and_registers_in_their_village_only(
    stub: registry_pb2_grpc.RegistryServiceStub,
    channel: grpc.Channel,
    director_of_a: Metadata,
    children: dict[str, str],
) -> None:
    casework = casework_pb2_grpc.CaseworkServiceStub(channel)

    def visit(child_id: str) -> casework_pb2.RecordVisitResponse:
        request = casework_pb2.RecordVisitRequest(child_id=child_id, visitor="王主任", findings="在家")
        reply: casework_pb2.RecordVisitResponse = casework.RecordVisit(request, metadata=director_of_a)
        return reply

    assert visit(children[VILLAGE_A]).visit.visit_id
    absent(lambda: visit(children[VILLAGE_B]))

    with pytest.raises(grpc.RpcError) as raised:
        stub.RegisterChild(
            registry_pb2.RegisterChildRequest(legal_name="乙村小刚", residence_division_code=VILLAGE_B),
            metadata=director_of_a,
        )
    assert raised.value.code() is grpc.StatusCode.PERMISSION_DENIED
    mine = stub.RegisterChild(
        registry_pb2.RegisterChildRequest(legal_name="甲村小刚", residence_division_code=VILLAGE_A),
        metadata=director_of_a,
    )
    assert mine.child.residence_division_code == VILLAGE_A


def test_a_director_without_a_village_sees_no_child(
    stub: registry_pb2_grpc.RegistryServiceStub, secrets: Secrets, children: dict[str, str]
) -> None:
    unassigned = bearer(secrets.token(PILOT_TENANT, Role.CHILD_DIRECTOR, "director.none"))
    assert listed(stub, unassigned) == set()
    absent(lambda: stub.GetChild(registry_pb2.GetChildRequest(child_id=children[VILLAGE_A]), metadata=unassigned))


def test_a_director_imports_and_sees_the_survey_rows_of_their_villages_only(
    channel: grpc.Channel, caseworker: Metadata, director_of_a: Metadata
) -> None:
    """A survey row elsewhere is refused row by row, as RegisterChild refuses it; a number registered in
    another village is 'already in the register' without the child; a resemblance to another village's child
    is not reported; the director's history holds their own imports only."""
    survey = survey_pb2_grpc.SurveyServiceStub(channel)
    in_b, moved = (make_identity_number(DISTRICT, date(2015, 4, 3), sequence) for sequence in (517, 519))
    twin = {"legal_name": "乙村小燕", "sex": "女", "birth_date": "2016-05-12", "mother_name": "乙村李梅"}
    town_rows, town_summary = import_all(
        survey,
        caseworker,
        csv_of(
            [
                {"legal_name": "乙村小林", "identity_number": in_b, "residence_division_code": VILLAGE_B},
                twin | {"residence_division_code": VILLAGE_B},
                {"legal_name": "乙村小森", "identity_number": moved, "residence_division_code": VILLAGE_B},
            ]
        ),
    )
    assert {row.outcome for row in town_rows.values()} == {ACCEPTED}

    directors_file = csv_of(
        [
            {"legal_name": "甲村小华", "sex": "男", "birth_date": "2017-01-09", "residence_division_code": VILLAGE_A},
            {"legal_name": "乙村小丽", "sex": "女", "birth_date": "2014-08-21", "residence_division_code": VILLAGE_B},
            {"legal_name": "乙村小林", "identity_number": in_b, "residence_division_code": VILLAGE_B},
            {"legal_name": "乙村小森", "identity_number": moved, "residence_division_code": VILLAGE_A},
            twin | {"residence_division_code": VILLAGE_A},
        ]
    )
    # For the town's caseworker the same file meets the register's children of village B.
    seen_by_town, _ = import_all(survey, caseworker, directors_file, dry_run=True)
    assert seen_by_town[4].outcome == UNCHANGED and seen_by_town[4].child_id == town_rows[2].child_id
    assert seen_by_town[6].outcome == POSSIBLE_DUPLICATE and seen_by_town[6].child_id == town_rows[3].child_id

    rows, summary = import_all(survey, director_of_a, directors_file)
    assert rows[2].outcome == ACCEPTED and rows[2].child_id
    for outside in (3, 4):
        assert rows[outside].outcome == REJECTED and not rows[outside].child_id
        assert [(p.field, p.reason) for p in rows[outside].problems] == [
            ("residence_division_code", "a village child director records the children of their own villages only")
        ]
    assert rows[5].outcome == UNCHANGED and rows[5].note == "already in the register" and not rows[5].child_id
    assert rows[6].outcome == ACCEPTED and town_rows[3].child_id not in rows[6].note
    assert (summary.accepted, summary.rejected, summary.unchanged) == (2, 2, 1)

    theirs = survey.ListSurveyImports(survey_pb2.ListSurveyImportsRequest(), metadata=director_of_a).imports
    assert [listed.import_id for listed in theirs] == [summary.import_id]
    assert {listed.imported_by for listed in theirs} == {"director.a"}
    absent(
        lambda: survey.ListSurveyImportRows(
            survey_pb2.ListSurveyImportRowsRequest(import_id=town_summary.import_id), metadata=director_of_a
        )
    )
    own = survey.ListSurveyImportRows(
        survey_pb2.ListSurveyImportRowsRequest(import_id=summary.import_id), metadata=director_of_a
    )
    assert [row.outcome for row in own.rows] == [rows[n].outcome for n in sorted(rows)]
    # The town's staff still see every import of the town.
    town_imports = survey.ListSurveyImports(survey_pb2.ListSurveyImportsRequest(), metadata=caseworker).imports
    assert {town_summary.import_id, summary.import_id} <= {listed.import_id for listed in town_imports}
