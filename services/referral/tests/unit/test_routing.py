from datetime import date, timedelta

import pytest

from platform_runtime.errors import InvalidInput
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
    explain,
    route,
    rule_from_dict,
    rule_to_dict,
    rules_from_list,
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


def test_the_directory_holds_the_sixteen_member_units_of_the_plan_and_the_receiving_places():
    assert len([agency for agency in AGENCIES if agency.member]) == 16
    assert {agency.code for agency in AGENCIES if not agency.member} == {
        "relief_station",
        "city_minor_rescue_centre",
        "city_second_minor_rescue_centre",
    }
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


def test_schooling_goes_to_the_education_commission():
    found = routes("out_of_school")
    assert set(found) == {"education"}
    assert found["education"].rule_code == "SCHOOLING_EDUCATION"


def test_poverty_goes_to_civil_affairs_for_a_benefit_application_and_to_education():
    found = routes("poverty_dropout_risk")
    assert set(found) == {"education", "civil_affairs"}
    assert found["civil_affairs"].benefit_codes == ("basic_living",)


def test_improper_guardianship_goes_to_the_womens_federation_and_the_town():
    found = routes("improperly_guarded")
    assert set(found) == {"womens_federation", "town_government"}
    assert found["womens_federation"].rule_code == "VIOLENCE_WOMENS_FEDERATION"
    assert found["town_government"].rule_code == "GUARDIANSHIP_TOWN"


def test_violence_goes_to_the_womens_federation_the_town_the_police_and_the_court():
    found = routes("violence_injury_signs", urgency=Urgency.URGENT)
    assert set(found) == {"womens_federation", "town_government", "police", "court"}


def test_intellectual_or_mental_goes_to_the_disabled_persons_federation():
    found = routes("intellectual_or_mental")
    assert set(found) == {"disabled_persons_federation"}


@pytest.mark.parametrize("situations", [(), ("no_effective_guardian",), ("not_a_known_code",)])
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


def test_two_rules_for_one_unit_make_one_referral_led_by_the_more_pressing_with_both_tasks():
    found = routes("unknown_origin_missing_trafficked", "organised_begging")
    police = found["police"]
    assert police.rule_code == "MANDATORY_REPORT_POLICE"
    assert police.due_in == timedelta(hours=1)
    assert "DNA" in police.reason and "身份甄别" in police.reason


@pytest.mark.parametrize(
    ("age", "facts", "centre", "escort"),
    [
        (8, ("child_alone",), "city_minor_rescue_centre", "ESCORT_RESCUE_CENTRE"),
        (5, ("child_alone", "minor_offences"), "city_minor_rescue_centre", "ESCORT_RESCUE_CENTRE"),
        (None, ("child_alone", "minor_offences"), "city_minor_rescue_centre", "ESCORT_RESCUE_CENTRE"),
        (6, ("child_alone", "minor_offences"), "city_second_minor_rescue_centre", "ESCORT_SECOND_CENTRE"),
        (9, ("child_alone", "begging_with_adults"), "relief_station", "ESCORT_BEGGING_RELIEF_STATION"),
    ],
)
def test_the_escort_rules_choose_one_destination(age, facts, centre, escort):
    report = ReportFacts(frozenset({"wandering"}), frozenset(facts), age=age)
    found = {r.agency_code: r for r in route(report, DAY, ROUTING_RULES)}
    assert found["police"].rule_code == escort
    receiving = {"relief_station", "city_minor_rescue_centre", "city_second_minor_rescue_centre"} & set(found)
    assert receiving == {centre}


def test_a_working_age_street_minor_goes_to_human_resources():
    assert "human_resources" in {
        r.agency_code for r in route(ReportFacts(frozenset({"wandering"}), age=16), DAY, ROUTING_RULES)
    }
    assert "human_resources" not in {
        r.agency_code for r in route(ReportFacts(frozenset({"wandering"}), age=15), DAY, ROUTING_RULES)
    }


def test_the_preview_says_why_each_rule_applied_or_not():
    preview = explain(ReportFacts(frozenset({"wandering"}), frozenset({"child_alone"}), age=7), DAY, ROUTING_RULES)
    verdicts = {v.rule_code: v for v in preview.verdicts}
    assert verdicts["ESCORT_RESCUE_CENTRE"].applied
    assert not verdicts["ESCORT_SECOND_CENTRE"].applied
    assert "minor_offences" in verdicts["ESCORT_SECOND_CENTRE"].why
    assert verdicts["MANDATORY_REPORT_POLICE"].why.startswith("none of the situations")
    assert verdicts["DEFAULT_TOWN_ASSESSMENT"].why == "another rule routed the report"
    assert len(preview.verdicts) == len(ROUTING_RULES)


@pytest.mark.parametrize("rule", ROUTING_RULES, ids=lambda rule: rule.code)
def test_every_plan_rule_survives_its_stored_form_and_can_be_tried_alone(rule):
    again = rule_from_dict(rule_to_dict(rule), rule.effective_from, DIRECTORY)
    assert again == rule
    alone = explain(
        ReportFacts(
            rule.any_of_situations, rule.all_of_facts | rule.any_of_facts, crisis=rule.crisis_only, age=rule.min_age
        ),
        DAY,
        (again,),
    )
    assert [r.agency_code for r in alone.routes] == [rule.agency_code]


def test_a_stored_rule_with_mistakes_names_each_field():
    with pytest.raises(InvalidInput) as invalid:
        rules_from_list(
            [{"code": "X", "agency_code": "ministry_of_magic", "reason": "", "due_in_minutes": 0, "min_age": 30}],
            DAY,
            DIRECTORY,
        )
    fields = {violation.field for violation in invalid.value.violations}
    assert fields == {"rules.X.agency_code", "rules.X.reason", "rules.X.due_in_minutes", "rules.X.min_age"}
    with pytest.raises(InvalidInput, match="at least one rule"):
        rules_from_list([], DAY, DIRECTORY)


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


def test_the_quick_decision_and_the_explained_one_agree():
    from bench.referral_routing import reports

    for report in reports(2000):
        assert route(report, DAY, ROUTING_RULES) == explain(report, DAY, ROUTING_RULES).routes
        for rule in ROUTING_RULES:
            assert rule.matches(report) == (not rule.why_not(report))
