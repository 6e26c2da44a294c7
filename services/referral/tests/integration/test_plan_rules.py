"""Each of the plan's routing rules, situation by situation: a report submitted through the reporting events the
consumer reads, and the referrals (and requests) it opens. The district has saved no rules of its own, so the
plan's rules (version 0) route it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from minorprot.referral.v1 import events_pb2 as referral_events
from minorprot.reporting.v1 import reporting_pb2

from platform_runtime.auth import Role
from platform_runtime.tenancy import acting_as
from services.referral.service_layer.views import ReferralView
from services.referral.tests.integration.builders import PILOT_TENANT, RECEIVED, caller, submitted
from tests.support.events import events_of, message

pytestmark = pytest.mark.integration


@pytest.fixture
def submit(consumer, service):
    count = iter(range(1000))

    def submit_report(situations: list[str], **options: object) -> dict[str, ReferralView]:
        number = next(count)
        report_id = f"plan-{number}"
        consumer.process(message(submitted(report_id, situations, **options), f"event-plan-{number}"))  # type: ignore[arg-type]
        with acting_as(caller(Role.CASEWORKER)):
            return {r.agency_code: r for r in service.list_referrals(report_id=report_id).referrals}

    return submit_report


def test_a_child_wandering_alone_is_escorted_by_the_police_to_the_city_rescue_centre(submit):
    found = submit(["wandering"], facts=("child_alone",), age=8)
    assert found["police"].rule_code == "ESCORT_RESCUE_CENTRE"
    assert "市未成年人救助保护中心" in found["police"].reason
    assert found["city_minor_rescue_centre"].rule_code == "RECEIVE_RESCUE_CENTRE"
    assert "city_second_minor_rescue_centre" not in found
    assert found["civil_affairs"].rule_code == "WANDERING_CIVIL_AFFAIRS"


def test_six_or_over_with_minor_offences_goes_to_the_second_centre(submit):
    found = submit(["wandering"], facts=("child_alone", "minor_offences"), age=6)
    assert found["police"].rule_code == "ESCORT_SECOND_CENTRE"
    assert "city_second_minor_rescue_centre" in found
    assert "city_minor_rescue_centre" not in found


def test_begging_with_adults_goes_to_the_district_relief_station_for_identity_verification(submit):
    found = submit(["wandering"], facts=("begging_with_adults",), age=9)
    assert found["police"].rule_code == "ESCORT_BEGGING_RELIEF_STATION"
    assert found["relief_station"].agency_name == "区民政局救助管理站"
    assert "身份甄别" in found["relief_station"].reason


def test_a_child_of_unknown_origin_gets_a_police_dna_sampling_task(submit):
    found = submit(["unknown_origin_missing_trafficked"])
    assert "DNA" in found["police"].reason
    assert found["police"].urgent  # a mandatory-reporting situation too: the police at once


@pytest.mark.parametrize("situation", ["out_of_school"])
def test_dropout_and_truancy_go_to_education_which_tells_the_guardian_and_village(submit, situation):
    found = submit([situation])
    assert set(found) == {"education"}
    assert "监护人" in found["education"].reason and "村(居)委会" in found["education"].reason


def test_medical_need_goes_to_the_health_bureau_treatment_first(submit):
    found = submit(["no_effective_guardian"], facts=("injured",))
    assert found["health"].agency_name == "区卫生局"
    assert "先救治后救助" in found["health"].reason
    assert found["health"].urgent


@pytest.mark.parametrize("situation", ["de_facto_unattended", "trafficked_or_illegally_employed"])
def test_legal_aid_and_a_prisoner_s_child_go_to_the_justice_bureau(submit, situation):
    assert submit([situation])["justice"].rule_code == "LEGAL_AID_JUSTICE"


def test_violence_goes_to_the_police_the_women_s_federation_and_the_court(submit):
    found = submit(["violence_injury_signs"])
    assert {"police", "womens_federation", "court"} <= set(found)
    assert "保护令" in found["court"].reason


def test_disability_goes_to_the_disabled_persons_federation(submit):
    assert set(submit(["intellectual_or_mental"])) == {"disabled_persons_federation"}


def test_a_working_age_street_minor_goes_to_human_resources_for_training(submit):
    found = submit(["wandering"], age=16)
    assert "技能培训" in found["human_resources"].reason
    assert "human_resources" not in submit(["wandering"], age=15)


def test_family_poverty_goes_to_civil_affairs_which_asks_benefits_for_an_application(submit, database):
    found = submit(["poverty_dropout_risk"])
    civil = found["civil_affairs"]
    assert civil.rule_code == "POVERTY_CIVIL_AFFAIRS"
    (request,) = events_of(database, PILOT_TENANT, referral_events.BenefitApplicationRequested)
    assert (request.referral_id, request.benefit_code, request.agency_code) == (
        civil.referral_id,
        "basic_living",
        "civil_affairs",
    )
    assert request.report_id == civil.report_id


@pytest.mark.parametrize(
    "situation",
    [
        "private_parts_injury",
        "girl_under_14_sexual_assault",
        "girl_14_plus_pregnant_by_assault",
        "violence_injury_signs",
        "abnormal_injury_or_death",
        "abandoned_or_uncared",
        "unknown_origin_missing_trafficked",
        "organised_begging",
        "other_serious_harm",
    ],
)
def test_mandatory_reporting_situations_go_to_the_police_at_once(submit, situation):
    police = submit([situation], urgency=reporting_pb2.URGENCY_URGENT)["police"]
    assert police.urgent
    assert police.due_at == RECEIVED + timedelta(hours=1)
