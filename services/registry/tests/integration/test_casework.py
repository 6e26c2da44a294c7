"""Case work over real gRPC on real PostgreSQL: family and derived categories, the case status machine,
assessments and plans, follow-up visits and the overdue check, merges, the change history and its audit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any, TypeVar

import grpc
import pytest
from confluent_kafka import Message
from google.protobuf import message as protobuf
from google.protobuf.field_mask_pb2 import FieldMask
from minorprot.common.v1 import common_pb2
from minorprot.referral.v1 import events_pb2 as referral_events
from minorprot.referral.v1 import referral_pb2
from minorprot.registry.v1 import casework_pb2, casework_pb2_grpc, events_pb2, registry_pb2, registry_pb2_grpc
from sqlalchemy import create_engine, text

from platform_runtime.auth import Role
from platform_runtime.consumer import IdempotentConsumer
from platform_runtime.db import Database
from platform_runtime.events import PendingEvent, to_envelope, unpack
from platform_runtime.pii import BlindIndex, FieldCipher
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, KafkaSettings
from platform_runtime.tenancy import acting_as
from platform_runtime.topics import REFERRAL_REFERRAL
from platform_runtime.vocabulary import china_today
from services.registry import bootstrap
from services.registry.adapters.orm import APPEND_ONLY_TABLES, metadata
from services.registry.domain.rules import add_months
from services.registry.entrypoints.consumers import consumers
from services.registry.service_layer.casework import CaseworkService
from services.registry.service_layer.registry import RegistryService
from services.registry.settings import load_settings
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, Secrets
from tests.support.services import Running, bearer, consumer_under_test, migrated_database, service_env

pytestmark = pytest.mark.integration

TODAY = china_today()
M = TypeVar("M", bound=protobuf.Message)


def day(value: date | None) -> common_pb2.Date:
    return common_pb2.Date(year=value.year, month=value.month, day=value.day) if value else common_pb2.Date()


def ago(days: int) -> common_pb2.Date:
    return day(TODAY - timedelta(days=days))


@pytest.fixture(scope="module")
def registry(postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Running]:
    # The whole process as `serve` builds it, the overdue-visit checker included (every second here).
    db = migrated_database(postgres_url, "registry", APPEND_ONLY_TABLES)
    settings = load_settings(EnvReader(service_env(db, kafka, secrets, VISIT_CHECK_INTERVAL_SECONDS="1")))
    server = build(bootstrap.definition(settings))
    server.start()
    try:
        directory = registry_pb2_grpc.TenantDirectoryServiceStub(grpc.insecure_channel(f"127.0.0.1:{server.port}"))
        for code in (PILOT_TENANT, OTHER_TENANT):
            directory.OnboardTenant(
                registry_pb2.OnboardTenantRequest(code=code, name=f"town {code}", district_code=DISTRICT),
                metadata=bearer(secrets.token(code, Role.SYSTEM)),
            )
        yield Running(server, db)
    finally:
        server.stop(grace=1)


@pytest.fixture(scope="module")
def stubs(
    registry: Running,
) -> Iterator[tuple[registry_pb2_grpc.RegistryServiceStub, casework_pb2_grpc.CaseworkServiceStub]]:
    with registry.channel() as channel:
        yield registry_pb2_grpc.RegistryServiceStub(channel), casework_pb2_grpc.CaseworkServiceStub(channel)


@pytest.fixture(scope="module")
def register(stubs: Any) -> registry_pb2_grpc.RegistryServiceStub:
    stub: registry_pb2_grpc.RegistryServiceStub = stubs[0]
    return stub


@pytest.fixture(scope="module")
def casework(stubs: Any) -> casework_pb2_grpc.CaseworkServiceStub:
    stub: casework_pb2_grpc.CaseworkServiceStub = stubs[1]
    return stub


@pytest.fixture(scope="module")
def as_caseworker(secrets: Secrets) -> tuple[tuple[str, str], ...]:
    return bearer(secrets.token(PILOT_TENANT, Role.CASEWORKER, user="li.sg"))


def new_child(
    register: registry_pb2_grpc.RegistryServiceStub, who: Any, name: str = "王小红", **fields: Any
) -> registry_pb2.Child:
    defaults: dict[str, Any] = {
        "sex": common_pb2.SEX_FEMALE,
        "birth_date": common_pb2.Date(year=2015, month=3, day=10),
        "household_division_code": PILOT_TENANT,
    }
    request = registry_pb2.RegisterChildRequest(legal_name=name, **(defaults | fields))
    child: registry_pb2.Child = register.RegisterChild(request, metadata=who).child
    return child


def case_file(register: registry_pb2_grpc.RegistryServiceStub, who: Any, child_id: str) -> registry_pb2.CaseFile:
    reply = register.GetCaseFile(
        registry_pb2.GetCaseFileRequest(child_id=child_id, purpose="个案跟进查阅"), metadata=who
    )
    found: registry_pb2.CaseFile = reply.case_file
    return found


def sql(registry: Running, query: str, **params: Any) -> list[Any]:
    """Rows read as the owner within the pilot town (the owner is under row-level security too)."""
    engine = create_engine(registry.database.owner_url)
    with engine.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
        rows = list(connection.execute(text(query), params))
    engine.dispose()
    return rows


def events(registry: Running, kind: type[M], child_id: str) -> list[M]:
    found: list[M] = []
    for row in sql(
        registry, "SELECT envelope FROM outbox WHERE message_key = :key ORDER BY id", key=f"{PILOT_TENANT}:{child_id}"
    ):
        envelope = common_pb2.EventEnvelope.FromString(row.envelope)
        if envelope.event_type == kind.DESCRIPTOR.full_name:
            event = unpack(envelope, kind)
            found.append(event)
    return found


def refused(call: Any, request: Any, who: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call(request, metadata=who)
    return error.value


FATHER_IMPRISONED = registry_pb2.FamilyMember(
    name="王大强",
    relationship="father",
    status="imprisoned_or_detained",
    status_since=ago(800),
    evidence="法院判决书（有期徒刑五年）",
    evidence_document="doc://court/2024-123",
)
MOTHER_MISSING = registry_pb2.FamilyMember(
    name="李梅", relationship="mother", status="missing", status_since=ago(400), evidence="派出所失联证明"
)
DFU = "de_facto_unattended_mca_2019"


# --- family, guardians and derived categories -----------------------------------------------------------------


def test_family_facts_derive_categories_and_every_change_is_kept(register, casework, as_caseworker, registry):
    child = new_child(register, as_caseworker)
    grandma = casework.AddFamilyMember(
        casework_pb2.AddFamilyMemberRequest(
            child_id=child.child_id,
            member=registry_pb2.FamilyMember(name="张秀英", relationship="paternal_grandmother", guardian=True),
        ),
        metadata=as_caseworker,
    )
    assert grandma.member.guardian and DFU not in grandma.categories
    casework.AddFamilyMember(
        casework_pb2.AddFamilyMemberRequest(child_id=child.child_id, member=FATHER_IMPRISONED), metadata=as_caseworker
    )
    mother = casework.AddFamilyMember(
        casework_pb2.AddFamilyMemberRequest(child_id=child.child_id, member=MOTHER_MISSING), metadata=as_caseworker
    )
    assert DFU in mother.categories

    entry = next(c for c in case_file(register, as_caseworker, child.child_id).categories if c.category == DFU)
    assert (entry.source, entry.rule_code, entry.current) == ("rule", "DFU-2020-125", True)
    assert "父亲" in entry.reason and "母亲" in entry.reason
    assert register.GetChild(
        registry_pb2.GetChildRequest(child_id=child.child_id), metadata=as_caseworker
    ).child.categories == [DFU]
    (changed,) = events(registry, events_pb2.ChildCategoriesChanged, child.child_id)
    assert list(changed.added) == [DFU] and not changed.removed

    # The mother came back: the rule no longer applies, the category goes, and the event says so.
    back = registry_pb2.FamilyMember()
    back.CopyFrom(mother.member)
    back.status_until.CopyFrom(ago(1))
    updated = casework.UpdateFamilyMember(casework_pb2.UpdateFamilyMemberRequest(member=back), metadata=as_caseworker)
    assert DFU not in updated.categories
    assert list(events(registry, events_pb2.ChildCategoriesChanged, child.child_id)[-1].removed) == [DFU]

    history = casework.ListChanges(
        casework_pb2.ListChangesRequest(child_id=child.child_id, purpose="核对家庭情况变更"), metadata=as_caseworker
    ).changes
    kinds = [(c.entity_type, c.action) for c in history]
    assert kinds[0] == ("child", "created")
    assert kinds.count(("family_member", "created")) == 3
    assert ("category", "derived") in kinds and ("category", "removed") in kinds
    member_update = next(c for c in history if (c.entity_type, c.action) == ("family_member", "updated"))
    assert member_update.actor == "li.sg"
    assert {f.field: (f.before, f.after) for f in member_update.changes} == {
        "status_until": ("null", f'"{(TODAY - timedelta(days=1)).isoformat()}"')
    }


def test_a_member_in_a_situation_needs_its_start_and_evidence(register, casework, as_caseworker):
    child = new_child(register, as_caseworker, "赵小兰")
    bad = registry_pb2.FamilyMember(name="赵刚", relationship="father", status="imprisoned_or_detained")
    error = refused(
        casework.AddFamilyMember,
        casework_pb2.AddFamilyMemberRequest(child_id=child.child_id, member=bad),
        as_caseworker,
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "status_since" in (error.details() or "") and "evidence" in (error.details() or "")
    unknown = registry_pb2.FamilyMember(relationship="uncle")
    error = refused(
        casework.AddFamilyMember,
        casework_pb2.AddFamilyMemberRequest(child_id=child.child_id, member=unknown),
        as_caseworker,
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_a_local_infant_is_derived_at_registration(register, as_caseworker):
    baby = new_child(register, as_caseworker, "刘小宝", birth_date=ago(200))
    assert list(baby.categories) == ["infant_0_3_local"]


def test_staff_type_in_categories_with_evidence_but_never_a_derived_one(register, casework, as_caseworker, registry):
    child = new_child(register, as_caseworker, "孙小梅")
    added = casework.AddCategory(
        casework_pb2.AddCategoryRequest(
            child_id=child.child_id,
            category="poverty",
            source="survey",
            evidence="低保户，面临辍学",
            valid_from=ago(30),
        ),
        metadata=as_caseworker,
    )
    assert added.entry.current and list(added.categories) == ["poverty"]
    also = casework.AddCategory(
        casework_pb2.AddCategoryRequest(
            child_id=child.child_id, category="out_of_school", source="agency", evidence="教委辍学通报"
        ),
        metadata=as_caseworker,
    )
    assert list(also.categories) == ["poverty", "out_of_school"]  # several at once

    derived = refused(
        casework.AddCategory,
        casework_pb2.AddCategoryRequest(child_id=child.child_id, category=DFU, source="survey", evidence="typed"),
        as_caseworker,
    )
    assert derived.code() is grpc.StatusCode.INVALID_ARGUMENT and "derived" in (derived.details() or "")
    twice = refused(
        casework.AddCategory,
        casework_pb2.AddCategoryRequest(child_id=child.child_id, category="poverty", source="report", evidence="again"),
        as_caseworker,
    )
    assert twice.code() is grpc.StatusCode.FAILED_PRECONDITION

    ended = casework.EndCategory(
        casework_pb2.EndCategoryRequest(entry_id=added.entry.entry_id, valid_to=ago(1), reason="已纳入低保，复学"),
        metadata=as_caseworker,
    )
    assert not ended.entry.current and list(ended.categories) == ["out_of_school"]
    changes = events(registry, events_pb2.ChildCategoriesChanged, child.child_id)
    assert [list(c.categories) for c in changes] == [["poverty"], ["poverty", "out_of_school"], ["out_of_school"]]


def test_child_fields_are_validated_and_updated_by_mask(register, as_caseworker):
    bad = refused(
        register.RegisterChild,
        registry_pb2.RegisterChildRequest(
            legal_name="周小雨",
            ethnicity_code="57",
            disability_type="visual",
            contact_person=registry_pb2.ContactPerson(phone="call me"),
        ),
        as_caseworker,
    )
    assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert all(f in (bad.details() or "") for f in ("ethnicity_code", "disability_grade", "contact_person.phone"))

    child = new_child(
        register,
        as_caseworker,
        "周小雨",
        other_names=["雨雨"],
        ethnicity_code="03",
        disability_type="hearing",
        disability_grade="2",
        serious_illness="先天性心脏病",
        contact_person=registry_pb2.ContactPerson(name="周奶奶", relationship="祖母", phone="010-6935 1234"),
    )
    assert (child.ethnicity_code, child.disability_grade, child.contact_person.name) == ("03", "2", "周奶奶")
    updated = register.UpdateChild(
        registry_pb2.UpdateChildRequest(
            child_id=child.child_id,
            school="良乡二小",
            grade="三年级",
            legal_name="ignored",
            update_mask=FieldMask(paths=["school", "grade"]),
        ),
        metadata=as_caseworker,
    ).child
    assert (updated.school, updated.grade, updated.legal_name) == ("良乡二小", "三年级", "周小雨")
    assert updated.serious_illness == "先天性心脏病"  # untouched
    no_mask = refused(
        register.UpdateChild, registry_pb2.UpdateChildRequest(child_id=child.child_id, school="x"), as_caseworker
    )
    assert no_mask.code() is grpc.StatusCode.INVALID_ARGUMENT


# --- case status, assessment, plan, visits --------------------------------------------------------------------


def findings(**scores: int) -> list[registry_pb2.DomainFinding]:
    domains = ("safety", "guardianship", "health", "education", "livelihood", "psychology")
    return [
        registry_pb2.DomainFinding(domain=d, score=scores.get(d, 0), finding="见记录" if scores.get(d) else "")
        for d in domains
    ]


def test_the_case_goes_through_its_status_machine(register, casework, as_caseworker, secrets, registry):
    child = new_child(register, as_caseworker, "陈小军")
    status = casework.ChangeCaseStatus

    def to(target: str, reason: str = "") -> casework_pb2.ChangeCaseStatusResponse:
        reply: casework_pb2.ChangeCaseStatusResponse = status(
            casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status=target, reason=reason),
            metadata=as_caseworker,
        )
        return reply

    skip = refused(
        status, casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="plan_active"), as_caseworker
    )
    assert skip.code() is grpc.StatusCode.FAILED_PRECONDITION
    director = bearer(secrets.token(PILOT_TENANT, Role.CHILD_DIRECTOR))
    denied = refused(
        status, casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="assessing"), director
    )
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    assert to("assessing").next_visit_due.year == 0  # no risk level yet: nothing scheduled

    not_assessed = refused(
        status, casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="plan_active"), as_caseworker
    )
    assert "assessment" in (not_assessed.details() or "")
    assessed = casework.RecordAssessment(
        casework_pb2.RecordAssessmentRequest(
            child_id=child.child_id,
            kind="initial",
            assessed_on=ago(2),
            domains=findings(guardianship=3, education=2),
            summary="监护缺失",
        ),
        metadata=as_caseworker,
    )
    assert assessed.assessment.risk_level == "high"
    assert assessed.next_visit_due == ago(2 - 7)  # high risk: every 7 days
    second_initial = refused(
        casework.RecordAssessment,
        casework_pb2.RecordAssessmentRequest(child_id=child.child_id, kind="initial", domains=findings()),
        as_caseworker,
    )
    assert second_initial.code() is grpc.StatusCode.FAILED_PRECONDITION

    no_plan = refused(
        status, casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="plan_active"), as_caseworker
    )
    assert "no open action" in (no_plan.details() or "")
    goal = casework.AddPlanGoal(
        casework_pb2.AddPlanGoalRequest(child_id=child.child_id, description="落实临时监护"), metadata=as_caseworker
    ).goal
    action = casework.AddPlanAction(
        casework_pb2.AddPlanActionRequest(
            goal_id=goal.goal_id,
            description="联系叔叔承担临时照料",
            owner_kind="person",
            owner="李社工",
            due_on=ago(-14),
        ),
        metadata=as_caseworker,
    ).action
    assert (action.status, action.overdue) == ("planned", False)
    assert to("plan_active").status == "plan_active"
    assert to("monitoring").status == "monitoring"

    re_assessed = casework.RecordAssessment(
        casework_pb2.RecordAssessmentRequest(child_id=child.child_id, kind="re_assessment", domains=findings(health=1)),
        metadata=as_caseworker,
    )
    assert re_assessed.assessment.risk_level == "low" and re_assessed.next_visit_due == ago(-90)
    no_reason = refused(
        status, casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="closed"), as_caseworker
    )
    assert no_reason.code() is grpc.StatusCode.INVALID_ARGUMENT
    closed = to("closed", "监护落实，困境消除")
    assert closed.next_visit_due.year == 0
    late_visit = refused(
        casework.RecordVisit, casework_pb2.RecordVisitRequest(child_id=child.child_id, findings="走访"), as_caseworker
    )
    assert late_visit.code() is grpc.StatusCode.FAILED_PRECONDITION

    file = case_file(register, as_caseworker, child.child_id)
    assert (file.status, file.status_reason, file.risk_level) == ("closed", "监护落实，困境消除", "low")
    assert [a.kind for a in file.assessments] == ["initial", "re_assessment"]
    assert [g.actions[0].owner for g in file.plan] == ["李社工"]
    assert [e.kind for e in file.timeline].count("case_status") == 4
    moves = [(e.from_status, e.to_status) for e in events(registry, events_pb2.CaseStatusChanged, child.child_id)]
    assert moves == [
        ("identified", "assessing"),
        ("assessing", "plan_active"),
        ("plan_active", "monitoring"),
        ("monitoring", "closed"),
    ]


def test_named_staff_are_assigned(register, casework, as_caseworker, registry):
    child = new_child(register, as_caseworker, "黄小飞")
    reply = casework.AssignCase(
        casework_pb2.AssignCaseRequest(
            child_id=child.child_id,
            responsible_person="村委会 王主任",
            social_worker="李社工",
            child_director="张儿童主任",
            responsible_user_id="u-wang",
            social_worker_user_id="u-li",
            child_director_user_id="u-zhang",
        ),
        metadata=as_caseworker,
    )
    assert (reply.responsible_user_id, reply.social_worker_user_id, reply.child_director_user_id) == (
        "u-wang",
        "u-li",
        "u-zhang",
    )
    file = case_file(register, as_caseworker, child.child_id)
    assert (file.responsible_person, file.social_worker, file.child_director) == (
        "村委会 王主任",
        "李社工",
        "张儿童主任",
    )
    assert (file.responsible_user_id, file.social_worker_user_id, file.child_director_user_id) == (
        "u-wang",
        "u-li",
        "u-zhang",
    )
    (assigned,) = events(registry, events_pb2.CaseAssigned, child.child_id)
    assert (assigned.social_worker, assigned.social_worker_user_id, assigned.child_director_user_id) == (
        "李社工",
        "u-li",
        "u-zhang",
    )
    casework.ChangeCaseStatus(
        casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="assessing"), metadata=as_caseworker
    )
    (changed,) = events(registry, events_pb2.CaseStatusChanged, child.child_id)
    assert (changed.responsible_user_id, changed.social_worker_user_id) == ("u-wang", "u-li")
    # Changing only a user id is a change too; an over-long id is refused.
    casework.AssignCase(
        casework_pb2.AssignCaseRequest(child_id=child.child_id, social_worker="李社工", social_worker_user_id="u-li2"),
        metadata=as_caseworker,
    )
    assert len(events(registry, events_pb2.CaseAssigned, child.child_id)) == 2
    error = refused(
        casework.AssignCase,
        casework_pb2.AssignCaseRequest(child_id=child.child_id, social_worker_user_id="x" * 65),
        as_caseworker,
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_register_is_searched_by_village_category_and_case_status(register, casework, as_caseworker):
    village = PILOT_TENANT + "201"
    found_here = new_child(register, as_caseworker, "邹小村", residence_division_code=village)
    elsewhere = new_child(register, as_caseworker, "邹小外")
    for member in (FATHER_IMPRISONED, MOTHER_MISSING):
        casework.AddFamilyMember(
            casework_pb2.AddFamilyMemberRequest(child_id=found_here.child_id, member=member), metadata=as_caseworker
        )
    casework.ChangeCaseStatus(
        casework_pb2.ChangeCaseStatusRequest(child_id=found_here.child_id, status="assessing"), metadata=as_caseworker
    )

    def ids(**filters: str) -> set[str]:
        found: set[str] = set()
        token = ""
        while True:
            request = registry_pb2.ListChildrenRequest(page_size=2, page_token=token)
            for name, value in filters.items():
                setattr(request, name, value)
            reply = register.ListChildren(request, metadata=as_caseworker)
            found |= {c.child_id for c in reply.children}
            token = reply.next_page_token
            if not token:
                return found

    by_village = ids(division_code=village)
    assert found_here.child_id in by_village and elsewhere.child_id not in by_village
    category = next(iter(case_file(register, as_caseworker, found_here.child_id).child.categories))
    by_category = ids(category=category)
    assert found_here.child_id in by_category and elsewhere.child_id not in by_category
    assessing = ids(case_status="assessing", division_code=PILOT_TENANT)
    assert found_here.child_id in assessing and elsewhere.child_id not in assessing
    assert elsewhere.child_id in ids(case_status="identified")
    for field, bad in (("category", "nonsense"), ("case_status", "nope"), ("division_code", "11' OR 1=1")):
        request = registry_pb2.ListChildrenRequest()
        setattr(request, field, bad)
        error = refused(register.ListChildren, request, as_caseworker)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, bad


def test_an_overdue_visit_is_raised_once_for_notify(register, casework, as_caseworker, registry):
    child = new_child(register, as_caseworker, "吴小东")
    casework.ChangeCaseStatus(
        casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="assessing"), metadata=as_caseworker
    )
    casework.AssignCase(
        casework_pb2.AssignCaseRequest(child_id=child.child_id, responsible_person="王专人"), metadata=as_caseworker
    )
    reply = casework.RecordAssessment(
        casework_pb2.RecordAssessmentRequest(
            child_id=child.child_id, kind="initial", assessed_on=ago(20), domains=findings(safety=4)
        ),
        metadata=as_caseworker,
    )
    assert reply.next_visit_due == ago(13)

    deadline = time.monotonic() + 15
    while not events(registry, events_pb2.VisitOverdue, child.child_id) and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(2.5)  # two more rounds of the checker: still raised once
    (overdue,) = events(registry, events_pb2.VisitOverdue, child.child_id)
    assert (overdue.due_on, overdue.days_overdue, overdue.risk_level, overdue.responsible_person) == (
        ago(13),
        13,
        "high",
        "王专人",
    )
    assert [e.kind for e in case_file(register, as_caseworker, child.child_id).timeline].count("visit_overdue") == 1

    visited = casework.RecordVisit(
        casework_pb2.RecordVisitRequest(child_id=child.child_id, visitor="王专人", findings="孩子由祖母照看，情况稳定"),
        metadata=as_caseworker,
    )
    assert visited.next_visit_due == ago(-7)
    time.sleep(1.5)
    assert len(events(registry, events_pb2.VisitOverdue, child.child_id)) == 1


def test_referral_events_move_plan_actions_forward(register, casework, as_caseworker, registry, secrets, kafka):
    child = new_child(register, as_caseworker, "郑小花")
    casework.ChangeCaseStatus(
        casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="assessing"), metadata=as_caseworker
    )
    action = action_through_referral(casework, as_caseworker, child.child_id, "referral42")

    referral = referral_pb2.Referral(
        referral_id="referral42",
        tenant=PILOT_TENANT,
        child_id=child.child_id,
        agency_code="education",
        agency_name="区教委",
    )
    with registry_consumer(registry, secrets, kafka) as consumer:
        referral.status = "accepted"
        consumer.process(kafka_message(referral_events.ReferralAccepted(referral=referral), "ev-accepted"))
        assert plan_action(register, as_caseworker, child.child_id).status == "in_progress"
        referral.status = "completed"
        completed = referral_events.ReferralCompleted(referral=referral, outcome="已入学良乡二小")
        consumer.process(kafka_message(completed, "ev-completed"))
        consumer.process(kafka_message(completed, "ev-completed"))  # redelivered: applied once
    done = plan_action(register, as_caseworker, child.child_id)
    assert (done.action_id, done.status, done.note) == (action.action_id, "done", "已入学良乡二小")
    history = casework.ListChanges(
        casework_pb2.ListChangesRequest(child_id=child.child_id, purpose="核对帮扶进展"), metadata=as_caseworker
    ).changes
    by_consumer = [c for c in history if c.entity_type == "plan_action" and c.action == "updated"]
    assert [c.actor for c in by_consumer] == ["service:registry", "service:registry"]


def test_a_referral_that_moved_before_its_plan_action_existed_moves_the_action(
    register, casework, as_caseworker, registry, secrets, kafka
):
    """The agency accepted and completed (events out of order, too) before the caseworker named the referral on
    a plan action: the action starts where it would have ended had it existed first."""
    child = new_child(register, as_caseworker, "钱小雨")
    casework.ChangeCaseStatus(
        casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="assessing"), metadata=as_caseworker
    )
    referral = referral_pb2.Referral(
        referral_id="referral43", tenant=PILOT_TENANT, child_id=child.child_id, agency_code="education"
    )
    with registry_consumer(registry, secrets, kafka) as consumer:
        referral.status = "completed"
        completed = referral_events.ReferralCompleted(referral=referral, outcome="已入学良乡三小")
        consumer.process(kafka_message(completed, "ev43-completed"))
        referral.status = "accepted"  # overtaken by the completion; must not take it back
        consumer.process(kafka_message(referral_events.ReferralAccepted(referral=referral), "ev43-accepted"))

    added = action_through_referral(casework, as_caseworker, child.child_id, "referral43")
    assert (added.status, added.note) == ("done", "已入学良乡三小")
    stored = plan_action(register, as_caseworker, child.child_id)
    assert (stored.status, stored.note) == ("done", "已入学良乡三小")


def action_through_referral(casework: Any, who: Any, child_id: str, referral_id: str) -> registry_pb2.PlanAction:
    """A new goal of the child's plan with one action carried out through the referral."""
    goal = casework.AddPlanGoal(
        casework_pb2.AddPlanGoalRequest(child_id=child_id, description="复学"), metadata=who
    ).goal
    request = casework_pb2.AddPlanActionRequest(
        goal_id=goal.goal_id,
        description="教委安排就近入学",
        owner_kind="agency",
        owner="education",
        referral_id=referral_id,
    )
    action: registry_pb2.PlanAction = casework.AddPlanAction(request, metadata=who).action
    return action


@contextmanager
def registry_consumer(registry: Running, secrets: Secrets, kafka: KafkaSettings) -> Iterator[IdempotentConsumer]:
    """The registry's consumer on the running registry's database, driven message by message."""
    settings = load_settings(EnvReader(service_env(registry.database, kafka, secrets)))
    database = Database.connect(registry.database.app_url, metadata)
    services = bootstrap.build_services(settings, database)
    (spec,) = consumers(services.registry, services.casework)
    try:
        with consumer_under_test(spec, database, kafka) as consumer:
            yield consumer
    finally:
        database.dispose()


def kafka_message(payload: protobuf.Message, event_id: str) -> Message:
    event = PendingEvent(REFERRAL_REFERRAL, PILOT_TENANT, "referral", "referral42", payload)
    return Message(
        topic=event.topic,
        partition=0,
        offset=0,
        key=event.key.encode(),
        value=to_envelope(event, event_id).SerializeToString(),
        headers=[("event_id", event_id.encode()), ("tenant", PILOT_TENANT.encode())],
    )


def plan_action(register: Any, who: Any, child_id: str) -> registry_pb2.PlanAction:
    (goal,) = case_file(register, who, child_id).plan
    (action,) = goal.actions
    found: registry_pb2.PlanAction = action
    return found


# --- merges ----------------------------------------------------------------------------------------------------


def test_a_duplicate_is_merged_reversibly_and_its_old_id_still_resolves(
    register, casework, as_caseworker, secrets, registry
):
    kept = new_child(register, as_caseworker, "马小龙", school="良乡中心小学")
    duplicate = new_child(register, as_caseworker, "马晓龙", school="良乡中心小学")
    request = registry_pb2.MergeChildrenRequest(
        surviving_child_id=kept.child_id, merged_child_id=duplicate.child_id, reason="同一儿童，两次排查重复登记"
    )
    system = refused(register.MergeChildren, request, bearer(secrets.token(PILOT_TENANT, Role.SYSTEM)))
    assert system.code() is grpc.StatusCode.PERMISSION_DENIED  # a person decides a merge

    merged = register.MergeChildren(request, metadata=as_caseworker)
    assert merged.surviving.child_id == kept.child_id
    again = refused(register.MergeChildren, request, as_caseworker)
    assert again.code() is grpc.StatusCode.FAILED_PRECONDITION

    resolved = register.GetChild(registry_pb2.GetChildRequest(child_id=duplicate.child_id), metadata=as_caseworker)
    assert (resolved.child.child_id, resolved.merged_into) == (kept.child_id, kept.child_id)
    file = register.GetCaseFile(
        registry_pb2.GetCaseFileRequest(child_id=duplicate.child_id, purpose="核对合并记录"), metadata=as_caseworker
    )
    assert file.merged_into == kept.child_id and list(file.case_file.merged_child_ids) == [duplicate.child_id]
    assert [e.reference_id for e in file.case_file.timeline if e.kind == "registered"] == [
        kept.child_id,
        duplicate.child_id,
    ]
    # Work recorded against the old id lands on the surviving record.
    visit = casework.RecordVisit(
        casework_pb2.RecordVisitRequest(child_id=duplicate.child_id, findings="入户走访"), metadata=as_caseworker
    )
    assert visit.visit.child_id == kept.child_id
    listed = {
        c.child_id
        for c in register.ListChildren(registry_pb2.ListChildrenRequest(page_size=500), metadata=as_caseworker).children
    }
    assert kept.child_id in listed and duplicate.child_id not in listed
    matches = register.MatchChild(
        registry_pb2.MatchChildRequest(name="马晓龙", school="良乡中心小学"), metadata=as_caseworker
    )
    assert duplicate.child_id not in {c.child.child_id for c in matches.candidates}
    (event,) = events(registry, events_pb2.ChildrenMerged, duplicate.child_id)
    assert (event.surviving_child_id, event.merged_by) == (kept.child_id, "li.sg")
    audit = sql(registry, "SELECT action, purpose FROM audit_log WHERE subject_id = :id", id=duplicate.child_id)
    assert [(a.action, a.purpose) for a in audit] == [("merge_children", "同一儿童，两次排查重复登记")]

    restored = register.UnmergeChildren(
        registry_pb2.UnmergeChildrenRequest(merged_child_id=duplicate.child_id, reason="核实为双胞胎，并非同一人"),
        metadata=as_caseworker,
    ).restored
    assert restored.child_id == duplicate.child_id
    alone = register.GetChild(registry_pb2.GetChildRequest(child_id=duplicate.child_id), metadata=as_caseworker)
    assert (alone.child.child_id, alone.merged_into) == (duplicate.child_id, "")
    matches = register.MatchChild(
        registry_pb2.MatchChildRequest(name="马晓龙", school="良乡中心小学"), metadata=as_caseworker
    )
    assert duplicate.child_id in {c.child.child_id for c in matches.candidates}
    assert len(events(registry, events_pb2.ChildrenUnmerged, duplicate.child_id)) == 1


# --- reads audited, history append-only, tenants and roles ------------------------------------------------------


def test_reading_the_change_history_is_audited_and_it_cannot_be_rewritten(register, casework, as_caseworker, registry):
    child = new_child(register, as_caseworker, "钱小伟")
    no_purpose = refused(casework.ListChanges, casework_pb2.ListChangesRequest(child_id=child.child_id), as_caseworker)
    assert no_purpose.code() is grpc.StatusCode.INVALID_ARGUMENT
    casework.ListChanges(
        casework_pb2.ListChangesRequest(child_id=child.child_id, purpose="季度督查抽查"), metadata=as_caseworker
    )
    case_id = case_file(register, as_caseworker, child.child_id).case_id
    audit = sql(registry, "SELECT actor, action, purpose FROM audit_log WHERE subject_id = :id ORDER BY id", id=case_id)
    assert [(a.action, a.purpose) for a in audit] == [
        ("read_change_history", "季度督查抽查"),
        ("read_case_file", "个案跟进查阅"),
    ]

    app = create_engine(registry.database.app_url)
    with pytest.raises(Exception, match="permission denied"), app.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": PILOT_TENANT})
        connection.execute(text("UPDATE change_history SET actor = 'someone else'"))
    app.dispose()


def test_another_town_sees_nothing_and_roles_without_need_do_nothing(register, casework, as_caseworker, secrets):
    child = new_child(register, as_caseworker, "冯小雪")
    other_town = bearer(secrets.token(OTHER_TENANT, Role.CASEWORKER))
    for call, request in (
        (casework.AddFamilyMember, casework_pb2.AddFamilyMemberRequest(child_id=child.child_id, member=MOTHER_MISSING)),
        (casework.RecordVisit, casework_pb2.RecordVisitRequest(child_id=child.child_id, findings="x")),
        (casework.ListChanges, casework_pb2.ListChangesRequest(child_id=child.child_id, purpose="looking around")),
    ):
        assert refused(call, request, other_town).code() is grpc.StatusCode.NOT_FOUND
    auditor = bearer(secrets.token(PILOT_TENANT, Role.FINANCE_AUDITOR))
    for call, request in (
        (casework.AddFamilyMember, casework_pb2.AddFamilyMemberRequest(child_id=child.child_id, member=MOTHER_MISSING)),
        (casework.ListChanges, casework_pb2.ListChangesRequest(child_id=child.child_id, purpose="looking around")),
    ):
        assert refused(call, request, auditor).code() is grpc.StatusCode.PERMISSION_DENIED
    reporter = bearer(secrets.token(PILOT_TENANT, Role.MANDATED_REPORTER))
    merge = registry_pb2.MergeChildrenRequest(surviving_child_id=child.child_id, merged_child_id="x", reason="r")
    assert refused(register.MergeChildren, merge, reporter).code() is grpc.StatusCode.PERMISSION_DENIED


def test_categories_that_move_with_the_calendar_are_derived_again(register, registry, secrets, kafka):
    # In the other town, so that moving its calendar touches no other test's children.
    town = bearer(secrets.token(OTHER_TENANT, Role.CASEWORKER))
    born = add_months(TODAY, -36) + timedelta(days=10)  # turns 3 in ten days
    baby = register.RegisterChild(
        registry_pb2.RegisterChildRequest(
            legal_name="何小宝", birth_date=day(born), household_division_code=OTHER_TENANT
        ),
        metadata=town,
    ).child
    assert list(baby.categories) == ["infant_0_3_local"]

    settings = load_settings(EnvReader(service_env(registry.database, kafka, secrets)))
    database = Database.connect(registry.database.app_url, metadata)
    later = TODAY + timedelta(days=30)
    blind_index = BlindIndex(settings.blind_index_key)
    casework = CaseworkService(database, blind_index, today=lambda: later)
    reader = RegistryService(database, FieldCipher(settings.pii_keys), blind_index, today=lambda: later)
    try:
        after = casework.rederive_categories(OTHER_TENANT)
        while after:
            after = casework.rederive_categories(OTHER_TENANT, after)
        with acting_as(secrets.principal(OTHER_TENANT, Role.CASEWORKER)):
            child, _ = reader.get_child(baby.child_id)
    finally:
        database.dispose()
    assert child.categories == ()
    engine = create_engine(registry.database.owner_url)
    with engine.begin() as connection:
        connection.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": OTHER_TENANT})
        envelopes = connection.execute(
            text(
                "SELECT envelope FROM outbox WHERE message_key = :key AND event_type LIKE '%ChildCategoriesChanged' ORDER BY id"
            ),
            {"key": f"{OTHER_TENANT}:{baby.child_id}"},
        ).all()
    engine.dispose()
    (changed,) = [
        unpack(common_pb2.EventEnvelope.FromString(e.envelope), events_pb2.ChildCategoriesChanged)
        for e in envelopes[1:]
    ]
    assert isinstance(changed, events_pb2.ChildCategoriesChanged)
    assert list(changed.removed) == ["infant_0_3_local"]


def test_the_register_in_numbers_for_the_dashboard(register, casework, as_caseworker, secrets):
    def statistics(who: Any, town: str = "") -> registry_pb2.GetRegisterStatisticsResponse:
        reply: registry_pb2.GetRegisterStatisticsResponse = register.GetRegisterStatistics(
            registry_pb2.GetRegisterStatisticsRequest(town_code=town), metadata=who
        )
        return reply

    before = statistics(as_caseworker)
    village = PILOT_TENANT + "203"
    child = new_child(register, as_caseworker, "钱小统", residence_division_code=village)
    for member in (FATHER_IMPRISONED, MOTHER_MISSING):
        casework.AddFamilyMember(
            casework_pb2.AddFamilyMemberRequest(child_id=child.child_id, member=member), metadata=as_caseworker
        )
    casework.ChangeCaseStatus(
        casework_pb2.ChangeCaseStatusRequest(child_id=child.child_id, status="assessing"), metadata=as_caseworker
    )
    casework.RecordAssessment(
        casework_pb2.RecordAssessmentRequest(
            child_id=child.child_id, kind="initial", assessed_on=ago(30), domains=findings(safety=4)
        ),
        metadata=as_caseworker,
    )
    goal = casework.AddPlanGoal(
        casework_pb2.AddPlanGoalRequest(child_id=child.child_id, description="落实委托照护"), metadata=as_caseworker
    ).goal
    casework.AddPlanAction(
        casework_pb2.AddPlanActionRequest(
            goal_id=goal.goal_id, description="联系祖母", owner_kind="person", owner="李社工", due_on=ago(3)
        ),
        metadata=as_caseworker,
    )
    after = statistics(as_caseworker)

    def counted(pairs: Any) -> dict[str, int]:
        return {pair.key: pair.count for pair in pairs}

    assert after.town_code == PILOT_TENANT and after.children == before.children + 1
    assert counted(after.by_village)[village] == 1
    assert counted(after.by_category).get(DFU, 0) == counted(before.by_category).get(DFU, 0) + 1
    assert counted(after.by_risk_level)["high"] >= 1
    assert counted(after.by_case_status)["assessing"] >= 1
    assert after.overdue_visits >= before.overdue_visits + 1
    overdue = register.ListChildren(
        registry_pb2.ListChildrenRequest(visit_overdue=True, division_code=village, page_size=500),
        metadata=as_caseworker,
    )
    assert [c.child_id for c in overdue.children] == [child.child_id], "the children behind the overdue count"
    assert after.overdue_plan_actions == before.overdue_plan_actions + 1

    # The district officer may look at each town of the district; a town's staff only at their own.
    officer = bearer(secrets.token(PILOT_TENANT, Role.DISTRICT_OFFICER, user="district"))
    assert statistics(officer, OTHER_TENANT).town_code == OTHER_TENANT
    error = refused(
        register.GetRegisterStatistics, registry_pb2.GetRegisterStatisticsRequest(town_code=OTHER_TENANT), as_caseworker
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    elsewhere = refused(
        register.GetRegisterStatistics, registry_pb2.GetRegisterStatisticsRequest(town_code="120101001"), officer
    )
    assert elsewhere.code() == grpc.StatusCode.NOT_FOUND


def test_the_town_administrator_reads_who_opened_which_case_file_and_why(register, as_caseworker, secrets):
    child = new_child(register, as_caseworker, "冯小审")
    register.GetCaseFile(
        registry_pb2.GetCaseFileRequest(child_id=child.child_id, purpose="家访前了解情况"), metadata=as_caseworker
    )
    register.GetChild(registry_pb2.GetChildRequest(child_id=child.child_id), metadata=as_caseworker)
    admin = bearer(secrets.token(PILOT_TENANT, Role.TOWN_ADMIN, user="admin.li"))
    reply = register.ListAuditEntries(
        registry_pb2.ListAuditEntriesRequest(child_id=child.child_id, purposeful_only=True), metadata=admin
    )
    (entry,) = reply.entries
    assert (entry.actor, entry.role, entry.action, entry.purpose) == (
        "li.sg",
        "caseworker",
        "read_case_file",
        "家访前了解情况",
    )
    everything = register.ListAuditEntries(
        registry_pb2.ListAuditEntriesRequest(child_id=child.child_id, page_size=1), metadata=admin
    )
    assert len(everything.entries) == 1 and everything.next_page_token
    rest = register.ListAuditEntries(
        registry_pb2.ListAuditEntriesRequest(child_id=child.child_id, page_token=everything.next_page_token),
        metadata=admin,
    )
    assert rest.entries and all(e.at.seconds <= everything.entries[0].at.seconds for e in rest.entries)
    # Reading the log is recorded too; caseworkers do not read it; another town's log is not this one.
    mine = register.ListAuditEntries(registry_pb2.ListAuditEntriesRequest(actor="admin.li"), metadata=admin)
    assert mine.entries[0].action == "list_audit_entries"
    error = refused(register.ListAuditEntries, registry_pb2.ListAuditEntriesRequest(), as_caseworker)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    other_admin = bearer(secrets.token(OTHER_TENANT, Role.TOWN_ADMIN, user="admin.zhou"))
    other = register.ListAuditEntries(
        registry_pb2.ListAuditEntriesRequest(child_id=child.child_id), metadata=other_admin
    )
    assert not other.entries
    bad = refused(register.ListAuditEntries, registry_pb2.ListAuditEntriesRequest(page_token="x' or 1=1"), admin)
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
