from datetime import date, timedelta

import pytest

from services.referral.domain.agencies import AGENCIES, DIRECTORY
from services.referral.domain.routing import (
    MANDATORY_REPORTING_SITUATIONS,
    PILOT_START,
    ROUTING_RULES,
    URGENT_REPORT_DUE_IN,
    ReportFacts,
    Route,
    RoutingRule,
    Urgency,
    route,
)

DAY = date(2024, 5, 6)


def routes(
    *situations: str,
    urgency: Urgency = Urgency.NORMAL,
    crisis: bool = False,
    facts: tuple[str, ...] = (),
    day: date = DAY,
    rules: tuple[RoutingRule, ...] = ROUTING_RULES,
) -> dict[str, Route]:
    report = ReportFacts(frozenset(situations), frozenset(facts), urgency, crisis)
    return {r.agency_code: r for r in route(report, day, rules)}


# --- the directory ------------------------------------------------------------------------------------


def test_the_directory_holds_the_sixteen_member_units_of_the_plan():
    assert len(AGENCIES) == 16
    assert len(DIRECTORY) == 16
    assert DIRECTORY["education"].name_zh == "区教委"
    assert DIRECTORY["civil_affairs"].name_zh == "区民政局"
    assert all(agency.duties for agency in AGENCIES)


def test_every_rule_names_an_agency_of_the_directory():
    assert {rule.agency_code for rule in ROUTING_RULES} <= set(DIRECTORY)


# --- the first rules, case by case --------------------------------------------------------------------


def test_a_crisis_goes_to_the_relief_station_urgently():
    found = routes("out_of_school", urgency=Urgency.CRISIS, crisis=True)
    relief = found["civil_affairs"]
    assert relief.rule_code == "CRISIS_RELIEF_STATION"
    assert relief.urgent
    assert relief.due_in == timedelta(hours=2)
    assert "救助管理站" in relief.reason
    assert "police" not in found


@pytest.mark.parametrize("situation", sorted(MANDATORY_REPORTING_SITUATIONS))
def test_a_crisis_with_a_mandatory_reporting_situation_also_goes_to_the_police(situation):
    found = routes(situation, urgency=Urgency.CRISIS, crisis=True)
    assert found["civil_affairs"].rule_code == "CRISIS_RELIEF_STATION"
    assert found["police"].rule_code == "MANDATORY_REPORT_POLICE"
    assert found["police"].urgent
    assert found["police"].due_in == timedelta(hours=1)


def test_a_mandatory_reporting_situation_goes_to_the_police_even_without_a_crisis():
    # The 2020 rules oblige an immediate police report for each of the nine situations, crisis or not.
    found = routes("abnormal_injury_or_death", urgency=Urgency.URGENT)
    assert set(found) == {"police"}
    assert found["police"].urgent


def test_wandering_goes_to_civil_affairs():
    found = routes("wandering")
    assert set(found) == {"civil_affairs"}
    assert found["civil_affairs"].rule_code == "WANDERING_CIVIL_AFFAIRS"
    assert found["civil_affairs"].due_in == timedelta(days=5)
    assert not found["civil_affairs"].urgent


def test_a_crisis_and_wandering_make_one_civil_affairs_referral_the_crisis_one():
    found = routes("wandering", urgency=Urgency.CRISIS, crisis=True)
    assert list(found) == ["civil_affairs"]
    assert found["civil_affairs"].rule_code == "CRISIS_RELIEF_STATION"


@pytest.mark.parametrize("situation", ["out_of_school", "poverty_dropout_risk"])
def test_schooling_goes_to_the_education_commission(situation):
    found = routes(situation)
    assert set(found) == {"education"}
    assert found["education"].rule_code == "SCHOOLING_EDUCATION"


def test_improper_guardianship_goes_to_the_womens_federation_and_the_town():
    found = routes("improperly_guarded")
    assert set(found) == {"womens_federation", "town_government"}
    assert found["womens_federation"].rule_code == "GUARDIANSHIP_WOMENS_FEDERATION"
    assert found["town_government"].rule_code == "GUARDIANSHIP_TOWN"


def test_violence_goes_to_the_womens_federation_the_town_and_the_police():
    found = routes("violence_injury_signs", urgency=Urgency.URGENT)
    assert set(found) == {"womens_federation", "town_government", "police"}


def test_intellectual_or_mental_goes_to_the_disabled_persons_federation():
    found = routes("intellectual_or_mental")
    assert set(found) == {"disabled_persons_federation"}


@pytest.mark.parametrize("situations", [(), ("de_facto_unattended",), ("not_a_known_code",)])
def test_anything_else_goes_to_the_town_for_assessment(situations):
    found = routes(*situations)
    assert set(found) == {"town_government"}
    assert found["town_government"].rule_code == "DEFAULT_TOWN_ASSESSMENT"
    assert not found["town_government"].urgent


def test_the_default_is_not_added_when_another_rule_routed_the_report():
    assert "town_government" not in routes("out_of_school")


def test_several_situations_route_to_every_agency_once_in_rule_order():
    found = route(ReportFacts(frozenset({"intellectual_or_mental", "wandering", "out_of_school"})), DAY, ROUTING_RULES)
    assert [r.agency_code for r in found] == ["civil_affairs", "education", "disabled_persons_federation"]


# --- urgency and due times ----------------------------------------------------------------------------


def test_an_urgent_report_makes_every_referral_urgent_and_due_within_a_day():
    found = routes("out_of_school", urgency=Urgency.URGENT)
    assert found["education"].urgent
    assert found["education"].due_in == URGENT_REPORT_DUE_IN


def test_a_shorter_due_time_is_not_lengthened_by_the_urgent_cap():
    found = routes("organised_begging", urgency=Urgency.CRISIS, crisis=True)
    assert found["police"].due_in == timedelta(hours=1)


# --- effective dates ----------------------------------------------------------------------------------


def test_rules_apply_from_their_first_day_to_their_last():
    old = RoutingRule(
        "OLD", "civil_affairs", "old", timedelta(days=3), date(2020, 1, 1), effective_until=date(2023, 12, 31)
    )
    new = RoutingRule("NEW", "town_government", "new", timedelta(days=3), date(2024, 1, 1))
    rules = (old, new)
    assert set(routes(day=date(2023, 12, 31), rules=rules)) == {"civil_affairs"}
    assert set(routes(day=date(2024, 1, 1), rules=rules)) == {"town_government"}
    assert routes(day=date(2019, 12, 31), rules=rules) == {}


def test_nothing_is_routed_before_the_pilot_started():
    assert routes("wandering", day=PILOT_START - timedelta(days=1)) == {}


def test_facts_can_condition_a_rule():
    alone = RoutingRule(
        "ALONE", "police", "child alone", timedelta(hours=1), PILOT_START, all_of_facts=frozenset({"child_alone"})
    )
    assert set(routes(facts=("child_alone", "injured"), rules=(alone,))) == {"police"}
    assert routes(facts=("injured",), rules=(alone,)) == {}


def test_a_rule_naming_an_unknown_agency_is_refused():
    bad = RoutingRule("BAD", "ministry_of_magic", "?", timedelta(days=1), PILOT_START)
    with pytest.raises(ValueError, match="unknown agency"):
        routes(rules=(bad,))
