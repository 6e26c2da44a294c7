"""Applications (申报) on PostgreSQL: documents checklist, town review and district approval with their time
limits, rejection and re-application, referral's drafts, and the approved entitlement paid with arrears."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from minorprot.benefits.v1 import events_pb2 as benefits_events
from minorprot.referral.v1 import events_pb2 as referral_events

from platform_runtime import errors
from platform_runtime.auth import Principal, Role
from platform_runtime.events import PendingEvent
from platform_runtime.tenancy import acting_as
from platform_runtime.topics import REFERRAL_REFERRAL
from services.benefits.bootstrap import Services
from services.benefits.domain.policy import sample_policy
from services.benefits.service_layer import eligibility
from services.benefits.service_layer.applications import Applications
from tests.support.events import events_of, message
from tests.support.infra import DISTRICT, OTHER_TENANT, PILOT_TENANT

pytestmark = pytest.mark.integration

# Friday 3 May 2024, 10:00 in Beijing
NOW = datetime(2024, 5, 3, 2, 0, tzinfo=UTC)
DOCUMENTS = ["申请书", "户口簿", "监护人身份证明", "低保或低收入证明"]


def person(user: str, role: Role, tenant: str = PILOT_TENANT) -> Principal:
    return Principal(user_id=user, display_name=user, role=role, tenant=tenant, district=tenant[:6])


CASEWORKER = person("cw", Role.CASEWORKER)
TOWN_ADMIN = person("ta", Role.TOWN_ADMIN)
OFFICER = person("civil-affairs", Role.DISTRICT_OFFICER, DISTRICT)
ADMIN = person("admin", Role.DISTRICT_ADMIN, DISTRICT)


@pytest.fixture
def applications(database, services: Services) -> Applications:
    with acting_as(ADMIN):
        services.catalogue.save(replace(sample_policy(DISTRICT), version=0))
    with database.unit_of_work(PILOT_TENANT) as uow:
        eligibility.record_child(
            uow, "child1", birth_date=date(2015, 1, 1), household_division_code="110111008001", at=NOW
        )
        uow.commit()
    return Applications(database, now=lambda: NOW)


def test_an_application_goes_through_both_reviews_and_starts_an_entitlement(database, services, applications):
    with acting_as(CASEWORKER):
        draft = applications.create("child1", "BLA_POOR", documents=["申请书"], reason="family on dibao")
        assert draft.status == "draft"
        assert draft.missing_documents == ("户口簿", "监护人身份证明", "低保或低收入证明")
        with pytest.raises(errors.InvalidInput) as missing:
            applications.submit(draft.application_id)
        assert {v.message for v in missing.value.violations} == {
            "missing: 户口簿",
            "missing: 监护人身份证明",
            "missing: 低保或低收入证明",
        }
        with pytest.raises(errors.Conflict):
            applications.create("child1", "BLA_POOR")  # one open application per benefit
        applications.update(draft.application_id, documents=DOCUMENTS, starts_on=date(2024, 3, 1))
        submitted = applications.submit(draft.application_id)
    # 15 working days after Friday 3 May: Friday 24 May
    assert (submitted.status, submitted.submitted_on, submitted.town_due_on) == (
        "submitted",
        date(2024, 5, 3),
        date(2024, 5, 24),
    )
    with acting_as(CASEWORKER), pytest.raises(errors.PermissionDenied):
        applications.town_review(draft.application_id, approve=True)  # the town's review is the admin's
    with acting_as(TOWN_ADMIN):
        reviewed = applications.town_review(draft.application_id, approve=True)
    assert (reviewed.status, reviewed.district_due_on) == ("town_approved", date(2024, 5, 24))
    with acting_as(person("stranger", Role.DISTRICT_OFFICER, "110112")), pytest.raises(errors.NotFound):
        applications.district_decide(draft.application_id, approve=True)
    with acting_as(OFFICER):
        assert [a.application_id for a in applications.list(status="town_approved")[0]] == [draft.application_id]
        approved = applications.district_decide(draft.application_id, approve=True)
    assert (approved.status, approved.starts_on, approved.decided_by) == ("approved", date(2024, 3, 1), "civil-affairs")

    (started,) = events_of(database, PILOT_TENANT, benefits_events.EntitlementChanged)
    assert (started.child_id, started.benefit_code, started.change, started.monthly_amount_fen) == (
        "child1",
        "BLA_POOR",
        "started",
        80_000,
    )
    assert (started.effective_on.year, started.effective_on.month, started.effective_on.day) == (2024, 3, 1)

    # the next run pays March and April as arrears with May (a first run looks back)
    with acting_as(person("maker", Role.DISTRICT_OFFICER, DISTRICT)):
        run = services.runs.open_run(date(2024, 5, 1))
        computed = services.runs.compute(run.run_id)
        lines = [(line.service_month.month, line.kind, line.amount_fen) for line in services.runs.lines(run.run_id)[0]]
    assert lines == [(3, "arrears", 80_000), (4, "arrears", 80_000), (5, "due", 80_000)]
    assert computed.total_fen == 240_000


def test_rejection_needs_a_reason_and_a_rejected_application_can_be_made_again(applications):
    with acting_as(CASEWORKER):
        first = applications.create("child1", "BLA_POOR", documents=DOCUMENTS)
        applications.submit(first.application_id)
    with acting_as(TOWN_ADMIN):
        with pytest.raises(errors.InvalidInput):
            applications.town_review(first.application_id, approve=False, reason="  ")
        rejected = applications.town_review(first.application_id, approve=False, reason="income above the line")
    assert (rejected.status, rejected.rejection_reason) == ("rejected", "ta: income above the line")
    with acting_as(CASEWORKER):
        with pytest.raises(errors.Conflict):
            applications.submit(first.application_id)
        again = applications.reapply(first.application_id)
        assert (again.status, again.previous_id, again.documents) == (
            "draft",
            first.application_id,
            tuple(sorted(DOCUMENTS)),
        )
        with pytest.raises(errors.Conflict):
            applications.reapply(first.application_id)  # once
        applications.submit(again.application_id)
    with acting_as(TOWN_ADMIN):
        applications.town_review(again.application_id, approve=True)
    with acting_as(OFFICER):
        with pytest.raises(errors.InvalidInput):
            applications.district_decide(again.application_id, approve=False)
        final = applications.district_decide(again.application_id, approve=False, reason="not poor enough")
    assert final.status == "rejected"


def test_another_town_sees_none_of_it_and_bad_input_is_refused(applications):
    with acting_as(CASEWORKER):
        draft = applications.create("child1", "BLA_POOR")
        for code in ("NOPE", "INFANT_INSURANCE_0_3"):
            with pytest.raises(errors.InvalidInput):
                applications.create("child1", code)
        with pytest.raises(errors.NotFound):
            applications.create("no-such-child", "BLA_ORPHAN")
    other = person("cw2", Role.CASEWORKER, OTHER_TENANT)
    with acting_as(other):
        assert applications.list()[0] == []
        with pytest.raises(errors.NotFound):
            applications.get(draft.application_id)
        with pytest.raises(errors.NotFound):
            applications.submit(draft.application_id)
    for role in (Role.AGENCY_OFFICER, Role.PUBLIC, Role.MANDATED_REPORTER):
        with acting_as(person("x", role)), pytest.raises(errors.PermissionDenied):
            applications.list()[0]


def requested(referral_id: str, child_id: str, hint: str = "basic_living") -> PendingEvent:
    return PendingEvent(
        REFERRAL_REFERRAL,
        PILOT_TENANT,
        "referral",
        referral_id,
        referral_events.BenefitApplicationRequested(
            referral_id=referral_id,
            report_id="report1",
            child_id=child_id,
            benefit_code=hint,
            reason="family poverty",
            agency_code="civil_affairs",
        ),
    )


def test_referral_family_poverty_route_makes_a_draft_once(consumer, applications):
    consumer.process(message(requested("ref1", "child1", "BLA_POOR"), "e1"))
    consumer.process(message(requested("ref1", "child1", "BLA_POOR"), "e2"))  # sent again under another id
    consumer.process(message(requested("ref2", ""), "e3"))  # the report is not linked to a child yet
    with acting_as(CASEWORKER):
        drafts = {a.source: a for a in applications.list()[0]}
        assert set(drafts) == {"referral:ref1", "referral:ref2"}
        assert (drafts["referral:ref1"].child_id, drafts["referral:ref1"].benefit_code) == ("child1", "BLA_POOR")
        pending = drafts["referral:ref2"]
        assert (pending.child_id, pending.benefit_code, pending.status) == ("", "", "draft")
        assert "hint basic_living" in pending.reason
        with pytest.raises(errors.InvalidInput):
            applications.submit(pending.application_id)
        completed = applications.update(
            pending.application_id,
            documents=["申请书", "户口簿", "监护人身份证明", "父母死亡证明"],
            child_id="child1",
            benefit_code="BLA_ORPHAN",
        )
        assert applications.submit(completed.application_id).status == "submitted"
