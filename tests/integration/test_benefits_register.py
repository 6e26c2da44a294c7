"""Eligibility follows the register, end to end: the real registry over gRPC publishes its events through its
outbox to Kafka, the benefits service consumes them. A category ending suspends an entitlement and its return
resumes it; a merge stops the duplicate's entitlement and insurance; the periodic worker ends what a birthday
ends and insures a baby once old enough; moving out of the district ends entitlements and a case transferred
out suspends them; a corrected birth date decides the insurance and the age limits again; the insurance
roster is linked to the register and follows its facts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from minorprot.benefits.v1 import events_pb2 as benefits_events
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import casework_pb2, casework_pb2_grpc, registry_pb2, registry_pb2_grpc
from minorprot.registry.v1 import events_pb2 as registry_events_pb2

from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database
from platform_runtime.pii import BlindIndex
from platform_runtime.service import build
from platform_runtime.settings import EnvReader, KafkaSettings
from platform_runtime.tenancy import acting_as
from platform_runtime.vocabulary import CHINA_STANDARD_TIME
from services.benefits import bootstrap
from services.benefits.adapters.orm import APPEND_ONLY_TABLES, metadata
from services.benefits.domain.policy import sample_policy
from services.benefits.entrypoints.workers import eligibility_round
from services.benefits.service_layer import eligibility
from services.benefits.service_layer.applications import Applications
from services.benefits.service_layer.register_events import RegisterFollower
from services.benefits.service_layer.services import BenefitsService
from services.benefits.settings import load_settings
from tests.support.events import events_of
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT, Secrets
from tests.support.services import Running, bearer, migrated_database, service_env
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).astimezone(CHINA_STANDARD_TIME).date()
ADMIN = Principal("admin", "admin", Role.DISTRICT_ADMIN, DISTRICT, DISTRICT)
CASEWORKER = Principal("cw", "cw", Role.CASEWORKER, PILOT_TENANT, DISTRICT)
TOWN_ADMIN = Principal("ta", "ta", Role.TOWN_ADMIN, PILOT_TENANT, DISTRICT)
OFFICER = Principal("civil-affairs", "civil-affairs", Role.DISTRICT_OFFICER, DISTRICT, DISTRICT)


class Benefits:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.applications = Applications(database)

    def beneficiary(self, child_id: str) -> tuple[str, str | None] | None:
        """(child id, merged into) once the benefits service knows the child."""
        with self.database.unit_of_work(PILOT_TENANT) as uow:
            found = eligibility.beneficiary(uow, child_id)
            return None if found is None else (found.child_id, found.merged_into)

    def entitlements(self, child_id: str) -> list[tuple[str, date, date | None, str]]:
        with self.database.unit_of_work(PILOT_TENANT) as uow:
            return [
                (r.benefit_code, r.starts_on, r.ends_on, r.stopped_by) for r in eligibility.entitlements(uow, child_id)
            ]

    def drafts(self) -> list[Any]:
        with acting_as(CASEWORKER):
            return self.applications.list(status="draft")[0]

    def changes(self, child_id: str) -> list[tuple[str, str, str]]:
        return [
            (e.benefit_code, e.change, e.reason)
            for e in events_of(self.database, PILOT_TENANT, benefits_events.EntitlementChanged)
            if e.child_id == child_id
        ]


@pytest.fixture(scope="module")
def benefits(registry: Running, postgres_url: str, kafka: KafkaSettings, secrets: Secrets) -> Iterator[Benefits]:
    db = migrated_database(postgres_url, "benefits", APPEND_ONLY_TABLES)
    settings = load_settings(EnvReader(service_env(db, kafka, secrets)))
    server = build(bootstrap.definition(settings, periodic_work=False))
    server.start()
    database = Database.connect(db.app_url, metadata)
    with acting_as(ADMIN):
        bootstrap.build_services(database, BlindIndex(b"k" * 32)).catalogue.save(
            replace(sample_policy(DISTRICT), version=0)
        )
    try:
        yield Benefits(database)
    finally:
        database.dispose()
        server.stop(grace=1)


@pytest.fixture(scope="module")
def stubs(registry: Running) -> Iterator[tuple[Any, Any]]:
    with registry.channel() as channel:
        yield registry_pb2_grpc.RegistryServiceStub(channel), casework_pb2_grpc.CaseworkServiceStub(channel)


def register(stubs: tuple[Any, Any], secrets: Secrets, name: str, born: date, identity_number: str = "") -> str:
    request = registry_pb2.RegisterChildRequest(
        legal_name=name,
        sex=common_pb2.SEX_MALE,
        birth_date=common_pb2.Date(year=born.year, month=born.month, day=born.day),
        household_division_code=PILOT_TENANT + "001",
        residence_division_code=PILOT_TENANT + "001",
        identity_number=identity_number,
    )
    return str(
        stubs[0]
        .RegisterChild(request, metadata=bearer(secrets.token(PILOT_TENANT, audience="registry")))
        .child.child_id
    )


def known(benefits: Benefits, child_id: str) -> tuple[str, str | None]:
    return eventually(lambda: benefits.beneficiary(child_id), what=f"benefits to learn of {child_id}")


def test_a_category_ending_suspends_the_entitlement_and_its_return_resumes_it(benefits, stubs, secrets):
    child = register(stubs, secrets, "赵小军", date(2013, 4, 5))
    known(benefits, child)
    who = bearer(secrets.token(PILOT_TENANT, audience="registry"))
    added = stubs[1].AddCategory(
        casework_pb2.AddCategoryRequest(
            child_id=child,
            category="poverty",
            source="survey",
            evidence="低保户",
            valid_from=_date(TODAY - timedelta(days=30)),
        ),
        metadata=who,
    )
    # the register's category drafts an application; the town and district approve it
    draft = eventually(lambda: [a for a in benefits.drafts() if a.child_id == child], what="a draft")[0]
    assert (draft.benefit_code, draft.status, draft.source.startswith(f"registry:{child}:BLA_POOR")) == (
        "BLA_POOR",
        "draft",
        True,
    )
    apps = benefits.applications
    with acting_as(CASEWORKER):
        apps.update(draft.application_id, documents=["申请书", "户口簿", "监护人身份证明", "低保或低收入证明"])
        apps.submit(draft.application_id)
    with acting_as(TOWN_ADMIN):
        apps.town_review(draft.application_id, approve=True)
    with acting_as(OFFICER):
        apps.district_decide(draft.application_id, approve=True, starts_on=TODAY.replace(day=1))
    assert benefits.entitlements(child) == [("BLA_POOR", TODAY.replace(day=1), None, "")]

    stubs[1].EndCategory(
        casework_pb2.EndCategoryRequest(
            entry_id=added.entry.entry_id, valid_to=_date(TODAY - timedelta(days=1)), reason="收入超过低保线"
        ),
        metadata=who,
    )
    suspended = eventually(
        lambda: [e for e in benefits.entitlements(child) if e[2] is not None], what="the entitlement suspended"
    )
    assert suspended[0][3] == "register"
    stubs[1].AddCategory(
        casework_pb2.AddCategoryRequest(child_id=child, category="poverty", source="home_visit", evidence="再次低保"),
        metadata=who,
    )
    eventually(lambda: len(benefits.entitlements(child)) == 2, what="the entitlement resumed")
    assert [change for _, change, _ in benefits.changes(child)] == ["started", "suspended", "started"]
    assert benefits.changes(child)[1][2] == "its category ended in the register"
    assert benefits.entitlements(child)[-1][2] is None  # open again


def test_a_merged_duplicate_stops_being_paid_and_insured(benefits, stubs, secrets):
    who = bearer(secrets.token(PILOT_TENANT, audience="registry"))
    kept = register(stubs, secrets, "钱小宝", date(2012, 1, 1))
    duplicate = register(stubs, secrets, "钱晓宝", date(2012, 1, 1))
    baby = register(stubs, secrets, "孙小贝", TODAY - timedelta(days=100))
    baby_twin = register(stubs, secrets, "孙晓贝", TODAY - timedelta(days=100))
    for child in (kept, duplicate, baby, baby_twin):
        known(benefits, child)
    start = TODAY.replace(day=1) - timedelta(days=60)
    with benefits.database.unit_of_work(PILOT_TENANT) as uow:  # both records were granted the allowance
        for child in (kept, duplicate):
            eligibility.start(uow, child, "BLA_ORPHAN", start, "approved", at=datetime.now(UTC))
        uow.commit()
    insurance = BenefitsService(benefits.database)

    def insured() -> set[str]:
        with acting_as(CASEWORKER):
            return {e.child_id for e in insurance.list_enrolments()[0]}

    eventually(lambda: {baby, baby_twin} <= insured(), what="both babies insured")

    for survivor, merged in ((kept, duplicate), (baby, baby_twin)):
        request = registry_pb2.MergeChildrenRequest(
            surviving_child_id=survivor, merged_child_id=merged, reason="重复登记"
        )
        stubs[0].MergeChildren(request, metadata=who)
    eventually(lambda: baby_twin not in insured(), what="the merged baby's insurance to end")
    assert baby in insured()
    eventually(lambda: known(benefits, duplicate)[1] == kept, what="the duplicate merged")
    # the duplicate's allowance ends where the surviving record's began: the months paid twice are recovered
    assert benefits.entitlements(duplicate) == [("BLA_ORPHAN", start, start - timedelta(days=1), "merge")]
    assert benefits.entitlements(kept) == [("BLA_ORPHAN", start, None, "")]
    # The staff's reason (重复登记) stays in the registry's change history: it is not on the event.
    assert benefits.changes(duplicate)[-1][1:] == ("ended", f"merged into {kept} in the register")


def test_the_periodic_worker_ends_entitlements_at_eighteen_and_insures_a_baby_once_old_enough(benefits, stubs, secrets):
    turning = TODAY + timedelta(days=20)  # 18 in 20 days; the worker runs 25 days from now
    born = turning.replace(year=turning.year - 18, day=min(turning.day, 28))
    adult = register(stubs, secrets, "李大壮", born)
    newborn = register(stubs, secrets, "李小宝", TODAY - timedelta(days=10))
    known(benefits, adult)
    known(benefits, newborn)
    with benefits.database.unit_of_work(PILOT_TENANT) as uow:
        eligibility.start(uow, adult, "BLA_ORPHAN", date(2020, 1, 1), "approved", at=datetime.now(UTC))
        uow.commit()
    insurance = BenefitsService(benefits.database)
    with acting_as(CASEWORKER):
        eventually(lambda: newborn in _all_decided(benefits), what="the newborn decided")
        assert newborn not in {e.child_id for e in insurance.list_enrolments()[0]}  # too young at registration

    later = datetime.now(UTC) + timedelta(days=25)
    applications = Applications(benefits.database, now=lambda: later)
    eligibility_round(
        BenefitsService(benefits.database, now=lambda: later),
        RegisterFollower(benefits.database, applications, now=lambda: later),
    )
    assert benefits.entitlements(adult) == [
        ("BLA_ORPHAN", date(2020, 1, 1), _birthday(born) - timedelta(days=1), "age")
    ]
    assert benefits.changes(adult)[-1][1:] == ("ended", "turned 18")
    with acting_as(CASEWORKER):
        assert newborn in {e.child_id for e in insurance.list_enrolments()[0]}


def _date(day: date) -> common_pb2.Date:
    return common_pb2.Date(year=day.year, month=day.month, day=day.day)


def _birthday(born: date) -> date:
    from services.benefits.domain.insurance import anniversary

    return anniversary(born, 18)


def _all_decided(benefits: Benefits) -> list[str]:
    from sqlalchemy import select

    from services.benefits.adapters.orm import InsuranceEnrolmentRecord

    with benefits.database.unit_of_work(PILOT_TENANT) as uow:
        return list(uow.session.scalars(select(InsuranceEnrolmentRecord.child_id)))


# -- moving out, corrected birth dates, the roster linked to the register, reviews ----------------------------

ELSEWHERE = "130102001001"  # a village in another province


def update(stubs: tuple[Any, Any], secrets: Secrets, child_id: str, **values: Any) -> None:
    request = registry_pb2.UpdateChildRequest(child_id=child_id, **values)
    request.update_mask.paths.extend(values)
    stubs[0].UpdateChild(request, metadata=bearer(secrets.token(PILOT_TENANT, audience="registry")))


def grant(benefits: Benefits, child_id: str, starts_on: date, code: str = "BLA_ORPHAN") -> None:
    with benefits.database.unit_of_work(PILOT_TENANT) as uow:
        eligibility.start(uow, child_id, code, starts_on, "approved", at=datetime.now(UTC))
        uow.commit()


def insured(benefits: Benefits) -> dict[str, date | None]:
    with acting_as(CASEWORKER):
        return {e.child_id: e.covered_until for e in BenefitsService(benefits.database).list_enrolments()[0]}


def registry_events(registry: Running, kind: Any) -> list[Any]:
    from services.registry.adapters.orm import metadata as registry_metadata

    database = Database.connect(registry.database.app_url, registry_metadata)
    try:
        return events_of(database, PILOT_TENANT, kind)
    finally:
        database.dispose()


def test_moving_out_of_the_district_ends_the_entitlements_from_the_day(benefits, stubs, secrets, registry):
    child = register(stubs, secrets, "周小明", date(2014, 3, 3))
    stays = register(stubs, secrets, "周小亮", date(2014, 3, 3))
    for each in (child, stays):
        known(benefits, each)
        grant(benefits, each, TODAY.replace(day=1) - timedelta(days=90))
    update(stubs, secrets, stays, residence_division_code=OTHER_TENANT + "001")  # within the district: nothing ends
    update(stubs, secrets, child, residence_division_code=ELSEWHERE)

    ended = eventually(lambda: [e for e in benefits.entitlements(child) if e[2] is not None], what="the end")
    assert ended == [("BLA_ORPHAN", TODAY.replace(day=1) - timedelta(days=90), TODAY - timedelta(days=1), "moved")]
    assert benefits.changes(child)[-1][1:] == ("ended", f"moved out of the district (residence now {ELSEWHERE})")
    assert benefits.entitlements(stays)[0][2] is None
    # the registry's event carries codes and the day, nothing that names the child
    moved = [e for e in registry_events(registry, registry_events_pb2.ChildMoved) if e.child_id == child]
    assert [(e.from_residence_division_code, e.to_residence_division_code) for e in moved] == [
        (PILOT_TENANT + "001", ELSEWHERE)
    ]
    assert (moved[0].effective_on.year, moved[0].effective_on.month, moved[0].effective_on.day) == (
        TODAY.year,
        TODAY.month,
        TODAY.day,
    )
    assert "周小明" not in str(moved[0])


def test_a_case_transferred_out_suspends_the_entitlements_pending_the_transfer(benefits, stubs, secrets):
    child = register(stubs, secrets, "吴小燕", date(2015, 5, 5))
    known(benefits, child)
    grant(benefits, child, TODAY.replace(day=1))
    stubs[1].ChangeCaseStatus(
        casework_pb2.ChangeCaseStatusRequest(child_id=child, status="transferred", reason="随父母迁往外区"),
        metadata=bearer(secrets.token(PILOT_TENANT, audience="registry")),
    )
    eventually(lambda: benefits.entitlements(child)[0][2] is not None, what="the suspension")
    assert benefits.entitlements(child)[0][3] == "transfer"
    assert benefits.changes(child)[-1][1:] == (
        "suspended",
        "case transferred out, pending the transfer",  # the case's free-text reason is not passed on
    )


def test_a_corrected_birth_date_decides_the_insurance_and_the_age_limits_again(benefits, stubs, secrets, registry):
    baby = register(stubs, secrets, "郑小宝", TODAY - timedelta(days=10))  # too young when registered
    toddler = register(stubs, secrets, "郑小贝", TODAY - timedelta(days=400))
    teen = register(stubs, secrets, "郑小龙", TODAY.replace(year=TODAY.year - 16, day=1))
    for child in (baby, toddler, teen):
        known(benefits, child)
    eventually(lambda: toddler in insured(benefits), what="the toddler insured")
    assert baby not in insured(benefits)
    grant(benefits, teen, date(2020, 1, 1))

    update(stubs, secrets, baby, birth_date=_date(TODAY - timedelta(days=45)))
    eventually(lambda: baby in insured(benefits), what="the baby insured from the corrected date")
    assert insured(benefits)[baby] == _birthday_at(TODAY - timedelta(days=45), 3) - timedelta(days=1)
    update(stubs, secrets, toddler, birth_date=_date(TODAY.replace(year=TODAY.year - 4, day=1)))
    eventually(lambda: toddler not in insured(benefits), what="the toddler, 4 in truth, no longer insured")

    # the teenager turned 18 two months ago in truth: the allowance ends the day before, back in the past
    born = _months_before(TODAY.replace(day=1), 12 * 18 + 2)
    update(stubs, secrets, teen, birth_date=_date(born))
    eventually(lambda: benefits.entitlements(teen)[0][2] is not None, what="the allowance ended at 18")
    assert benefits.entitlements(teen) == [("BLA_ORPHAN", date(2020, 1, 1), _birthday(born) - timedelta(days=1), "age")]
    assert benefits.changes(teen)[-1][1:] == ("ended", "turned 18 (birth date corrected)")
    # corrected again, back to 16: the allowance starts again where the wrong date had ended it
    update(stubs, secrets, teen, birth_date=_date(TODAY.replace(year=TODAY.year - 16, day=1)))
    eventually(lambda: len(benefits.entitlements(teen)) == 2, what="the allowance resumed")
    assert benefits.entitlements(teen)[1] == ("BLA_ORPHAN", _birthday(born), None, "")
    corrected = registry_events(registry, registry_events_pb2.ChildBirthDateCorrected)
    assert [e.child_id for e in corrected].count(teen) == 2
    assert set(corrected[0].DESCRIPTOR.fields_by_name) == {"child_id", "birth_date"}


def test_the_roster_is_linked_to_the_register_and_follows_its_facts(benefits, stubs, secrets):
    from stdnum.cn import ric

    from platform_runtime.settings import decode_key
    from services.benefits.service_layer.insurance_roster import InsuranceRoster

    def identity(born: date, sequence: str) -> str:
        first17 = f"{DISTRICT}{born:%Y%m%d}{sequence}"
        return first17 + ric.calc_check_digit(first17 + "0")

    roster = InsuranceRoster(benefits.database, BlindIndex(decode_key(secrets.blind_index_key)))
    first_born, second_born = TODAY - timedelta(days=200), TODAY - timedelta(days=300)
    first_number, second_number = identity(first_born, "135"), identity(second_born, "157")
    third_number = identity(second_born, "179")
    first = register(stubs, secrets, "冯小一", first_born, first_number)  # registered before the list comes
    third = register(stubs, secrets, "冯小三", second_born)  # registered without a number
    known(benefits, first)
    known(benefits, third)
    listing = "公民身份号码,户籍地区划代码\n" + "".join(
        f"{number},{PILOT_TENANT}001\n" for number in (first_number, second_number, third_number)
    )
    with acting_as(CASEWORKER):
        assert roster.import_list(listing.encode(), "list.csv").accepted == 3
    second = register(stubs, secrets, "冯小二", second_born, second_number)  # registered after it
    eventually(lambda: _roster(benefits).get(second), what="the second linked")
    update(stubs, secrets, third, identity_number=third_number)  # the number given later
    eventually(lambda: _roster(benefits).get(third), what="the third linked")
    assert set(_roster(benefits)) == {first, second, third}
    with acting_as(TOWN_ADMIN):
        roster.enrol_year(TODAY.year)

    # a corrected birth date (the identity number with it): the linked entry's cover is computed again
    corrected = first_born - timedelta(days=20)
    update(stubs, secrets, first, birth_date=_date(corrected), identity_number=identity(corrected, "135"))
    eventually(lambda: _roster(benefits)[first][0] == corrected, what="the roster's date corrected")
    cover = _cover(benefits, first)
    assert cover[0] == max(date(TODAY.year, 1, 1), corrected + timedelta(days=30))
    # a household registration moved out of the district takes the child off the roster and the year's cover
    update(stubs, secrets, second, household_division_code=ELSEWHERE)
    eventually(lambda: _roster(benefits)[second][1] == "left", what="the second off the roster")
    assert _cover(benefits, second)[2] == "removed"
    eventually(lambda: second not in insured(benefits), what="the second's insurance ended")
    # a merge: the duplicate's entry follows the surviving record
    survivor = register(stubs, secrets, "冯晓一", corrected)
    known(benefits, survivor)
    stubs[0].MergeChildren(
        registry_pb2.MergeChildrenRequest(surviving_child_id=survivor, merged_child_id=first, reason="重复登记"),
        metadata=bearer(secrets.token(PILOT_TENANT, audience="registry")),
    )
    eventually(lambda: survivor in _roster(benefits), what="the entry linked to the surviving record")
    assert _roster(benefits)[survivor][1] == "active"


def _roster(benefits: Benefits) -> dict[str, tuple[date, str]]:
    """Linked child -> (birth date, status) of the roster's entries."""
    from sqlalchemy import select

    from services.benefits.adapters.orm import RosterRecord

    with benefits.database.unit_of_work(PILOT_TENANT) as uow:
        rows = uow.session.scalars(select(RosterRecord).where(RosterRecord.child_id.is_not(None)))
        return {row.child_id: (row.birth_date, row.status) for row in rows if row.child_id}


def _cover(benefits: Benefits, child_id: str) -> tuple[date, date, str]:
    from sqlalchemy import select

    from services.benefits.adapters.orm import InsuranceYearRecord, RosterRecord

    with benefits.database.unit_of_work(PILOT_TENANT) as uow:
        row = uow.session.execute(
            select(InsuranceYearRecord)
            .join(RosterRecord, RosterRecord.person_key == InsuranceYearRecord.person_key)
            .where(RosterRecord.child_id == child_id, InsuranceYearRecord.year == TODAY.year)
        ).scalar_one()
        return row.covered_from, row.covered_until, row.status


def _birthday_at(born: date, years: int) -> date:
    from services.benefits.domain.insurance import anniversary

    return anniversary(born, years)


def _months_before(day: date, months: int) -> date:
    from services.benefits.domain.policy import add_months

    return add_months(day, -months)
