from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from services.reporting.domain.errors import InvalidInput
from services.reporting.domain.model import (
    CHINA_STANDARD_TIME,
    MANDATORY_REPORTING_SITUATIONS,
    PLAN_CATEGORIES,
    AgencyKind,
    Channel,
    CrisisAction,
    EscortDestination,
    Fact,
    SituationType,
    Submission,
    Urgency,
)
from services.reporting.domain.triage import (
    DEFAULT_RULE_SET,
    DEFAULT_TENANT,
    TriageRule,
    TriageRuleSet,
    escort_for,
    rule_set_from_dict,
    rule_set_to_dict,
    select_rule_set,
    triage,
)
from services.reporting.tests.unit.builders import LIANGXIANG, NOW, POLICE_OFFICER, child, submission

S = SituationType


def decide(*situations: SituationType, facts=(), age=None, rule_set=DEFAULT_RULE_SET):
    sub = submission(situations=frozenset(situations), facts=frozenset(facts), child=child(approximate_age=age))
    return triage(sub, rule_set)


# --- crisis -------------------------------------------------------------------------------------------

CRISIS_CASES = [
    # (situations, facts, age, rule code that must fire)
    ((S.PRIVATE_PARTS_INJURY,), (), None, "CRISIS_SEXUAL_ASSAULT"),
    ((S.GIRL_UNDER_14_SEXUAL_ASSAULT,), (), None, "CRISIS_SEXUAL_ASSAULT"),
    ((S.GIRL_14_PLUS_PREGNANT_BY_ASSAULT,), (), None, "CRISIS_SEXUAL_ASSAULT"),
    ((S.VIOLENCE_INJURY_SIGNS,), (), None, "CRISIS_VIOLENCE_INJURY"),
    ((S.IMPROPERLY_GUARDED,), (Fact.INJURED,), None, "CRISIS_ABUSE_WITH_INJURY"),
    ((S.NO_EFFECTIVE_GUARDIAN,), (Fact.INJURED,), None, "CRISIS_ABUSE_WITH_INJURY"),
    ((S.ABANDONED_OR_UNCARED,), (), None, "CRISIS_ABANDONMENT"),
    ((S.UNKNOWN_ORIGIN_MISSING_TRAFFICKED,), (), None, "CRISIS_TRAFFICKING"),
    ((S.TRAFFICKED_OR_ILLEGALLY_EMPLOYED,), (), None, "CRISIS_TRAFFICKING"),
    ((S.WANDERING,), (Fact.CHILD_ALONE,), 12, "CRISIS_WANDERING_ALONE"),
    ((S.OUT_OF_SCHOOL,), (Fact.CHILD_ALONE,), 5, "CRISIS_YOUNG_CHILD_ALONE"),
    ((S.ORGANISED_BEGGING,), (), None, "CRISIS_ORGANISED_BEGGING"),
    ((S.OTHER_SERIOUS_HARM,), (), None, "CRISIS_IMMINENT_DANGER"),
]


@pytest.mark.parametrize(("situations", "facts", "age", "code"), CRISIS_CASES)
def test_immediate_danger_declares_a_crisis(situations, facts, age, code):
    decision = decide(*situations, facts=facts, age=age)
    assert decision.urgency is Urgency.CRISIS
    assert decision.crisis is not None
    assert code in decision.crisis.rule_codes
    assert decision.crisis.actions[0] is CrisisAction.NOTIFY_TOWNSHIP_DUTY_OFFICER
    assert (CrisisAction.NOTIFY_POLICE in decision.crisis.actions) is bool(
        set(situations) & MANDATORY_REPORTING_SITUATIONS
    )


def test_crisis_reasons_name_only_the_crisis_rules():
    decision = decide(S.GIRL_UNDER_14_SEXUAL_ASSAULT, facts=[Fact.INJURED])
    assert decision.crisis is not None
    assert decision.crisis.rule_codes == ("CRISIS_SEXUAL_ASSAULT",)
    assert decision.crisis.reasons == ("sexual assault, or injury to private parts",)
    assert set(decision.rule_codes) == {"CRISIS_SEXUAL_ASSAULT", "URGENT_INJURED", "URGENT_MANDATORY_REPORTING"}
    assert len(decision.reasons) == 3


@pytest.mark.parametrize("situation", [s for s in SituationType if s in MANDATORY_REPORTING_SITUATIONS])
def test_every_mandatory_reporting_situation_is_at_least_urgent_and_goes_to_the_police(situation):
    decision = decide(situation)
    assert decision.urgency.rank >= Urgency.URGENT.rank
    assert decision.police_report_required
    assert "URGENT_MANDATORY_REPORTING" in decision.rule_codes


def test_there_are_nine_mandatory_situations_and_self_harm_alone_is_urgent_not_crisis():
    assert len(MANDATORY_REPORTING_SITUATIONS) == 9
    decision = decide(S.ABNORMAL_INJURY_OR_DEATH)
    assert decision.urgency is Urgency.URGENT
    assert decision.crisis is None


@pytest.mark.parametrize("situation", [s for s in PLAN_CATEGORIES if s is not S.TRAFFICKED_OR_ILLEGALLY_EMPLOYED])
def test_plan_categories_alone_are_normal(situation):
    decision = decide(situation)
    assert decision.urgency is Urgency.NORMAL
    assert decision.matched_rules == ()
    assert not decision.police_report_required
    assert decision.crisis is None


def test_wandering_with_an_adult_is_not_a_crisis():
    assert decide(S.WANDERING, age=12).urgency is Urgency.NORMAL


def test_young_child_alone_age_boundary():
    assert decide(S.OUT_OF_SCHOOL, facts=[Fact.CHILD_ALONE], age=5).urgency is Urgency.CRISIS
    assert decide(S.OUT_OF_SCHOOL, facts=[Fact.CHILD_ALONE], age=6).urgency is Urgency.URGENT
    # Unknown age does not count as young.
    assert decide(S.OUT_OF_SCHOOL, facts=[Fact.CHILD_ALONE]).urgency is Urgency.URGENT


def test_age_comes_from_the_birth_date_at_the_time_it_happened():
    sub = submission(
        situations=frozenset({S.OUT_OF_SCHOOL}),
        facts=frozenset({Fact.CHILD_ALONE}),
        child=child(birth_date=NOW.date().replace(year=NOW.year - 6) + timedelta(days=1)),
    )
    assert sub.child_age() == 5
    assert triage(sub, DEFAULT_RULE_SET).urgency is Urgency.CRISIS


def test_improper_guardianship_without_injury_is_normal():
    assert decide(S.IMPROPERLY_GUARDED).urgency is Urgency.NORMAL


def test_injury_alone_is_urgent():
    assert decide(S.POVERTY_DROPOUT_RISK, facts=[Fact.INJURED]).urgency is Urgency.URGENT


@pytest.mark.parametrize(
    ("situations", "facts"),
    [
        ((S.WANDERING,), (Fact.CHILD_ALONE,)),
        ((S.ABANDONED_OR_UNCARED,), ()),
        ((S.DE_FACTO_UNATTENDED, S.OTHER_SERIOUS_HARM), ()),
        ((S.NO_EFFECTIVE_GUARDIAN,), (Fact.INJURED,)),
    ],
)
def test_unattended_child_in_crisis_needs_emergency_shelter(situations, facts):
    decision = decide(*situations, facts=facts, age=12)
    assert decision.crisis is not None
    assert CrisisAction.ARRANGE_EMERGENCY_SHELTER in decision.crisis.actions


def test_no_shelter_when_the_child_is_not_unattended():
    decision = decide(S.ORGANISED_BEGGING)
    assert decision.crisis is not None
    assert decision.crisis.actions == (CrisisAction.NOTIFY_TOWNSHIP_DUTY_OFFICER, CrisisAction.NOTIFY_POLICE)


def test_crisis_without_a_mandatory_situation_does_not_notify_the_police():
    decision = decide(S.WANDERING, facts=[Fact.CHILD_ALONE], age=12)
    assert decision.crisis is not None
    assert CrisisAction.NOTIFY_POLICE not in decision.crisis.actions
    assert not decision.police_report_required


# --- rule sets as data ----------------------------------------------------------------------------------


def lenient_rules(version: int = 2, tenant: str = LIANGXIANG, effective_from: datetime | None = None) -> TriageRuleSet:
    """A tenant rule set with no rules at all: only the legal floor applies."""
    effective_from = effective_from or NOW - timedelta(days=1)
    return TriageRuleSet(version, tenant, effective_from, rules=())


def test_the_legal_floor_applies_to_every_rule_set():
    decision = decide(S.ORGANISED_BEGGING, rule_set=lenient_rules())
    assert decision.urgency is Urgency.URGENT
    assert decision.rule_set_version == 2
    assert decision.crisis is None
    assert decision.police_report_required


def test_a_tenant_rule_can_escalate_on_age():
    rules = replace(
        lenient_rules(),
        rules=(
            TriageRule(
                "CRISIS_INFANT_OUT_OF_SCHOOL", Urgency.CRISIS, "infant", frozenset({S.OUT_OF_SCHOOL}), under_age=3
            ),
        ),
    )
    assert decide(S.OUT_OF_SCHOOL, age=2, rule_set=rules).urgency is Urgency.CRISIS
    assert decide(S.OUT_OF_SCHOOL, age=3, rule_set=rules).urgency is Urgency.NORMAL


def test_select_rule_set_prefers_the_tenants_newest_set_in_effect():
    old = lenient_rules(version=2, effective_from=NOW - timedelta(days=30))
    current = lenient_rules(version=3, effective_from=NOW - timedelta(days=1))
    future = lenient_rules(version=4, effective_from=NOW + timedelta(days=1))
    other_town = lenient_rules(version=9, tenant="110111009")
    shared = lenient_rules(version=5, tenant=DEFAULT_TENANT)
    sets = [old, current, future, other_town, shared]
    assert select_rule_set(sets, LIANGXIANG, NOW) is current
    assert select_rule_set(sets, LIANGXIANG, current.effective_from) is current
    assert select_rule_set(sets, "110111010", NOW) is shared
    assert select_rule_set([other_town], "110111010", NOW) is DEFAULT_RULE_SET


def test_rule_sets_round_trip_through_plain_data():
    data = rule_set_to_dict(DEFAULT_RULE_SET)
    assert rule_set_from_dict(data) == DEFAULT_RULE_SET


@pytest.mark.parametrize(
    "breakage",
    [
        {"version": None},
        {"effective_from": "2014-01-01T00:00:00"},
        {"rules": [{"code": "X", "urgency": "very", "reason": "", "any_of_situations": [], "all_of_facts": []}]},
        {"rules": [{"code": "X"}]},
    ],
)
def test_broken_rule_set_data_is_invalid_input(breakage):
    data = rule_set_to_dict(DEFAULT_RULE_SET) | breakage
    with pytest.raises(InvalidInput):
        rule_set_from_dict(data)


def test_default_rule_set_is_shared_and_already_in_effect():
    assert DEFAULT_RULE_SET.tenant == DEFAULT_TENANT
    assert DEFAULT_RULE_SET.effective_from <= datetime(2014, 1, 1, tzinfo=CHINA_STANDARD_TIME)
    assert len({rule.code for rule in DEFAULT_RULE_SET.rules}) == len(DEFAULT_RULE_SET.rules)


# --- escort rules ---------------------------------------------------------------------------------------


def police_report(
    *situations: SituationType,
    facts: Iterable[Fact] = (),
    age: int | None = None,
    agency: AgencyKind = AgencyKind.POLICE,
) -> Submission:
    return submission(
        Channel.AGENCY_SHARE,
        reporter=replace(POLICE_OFFICER, agency=agency),
        situations=frozenset(situations),
        facts=frozenset(facts),
        child=child(approximate_age=age),
    )


@pytest.mark.parametrize("agency", [AgencyKind.POLICE, AgencyKind.URBAN_MANAGEMENT])
def test_child_wandering_alone_goes_to_the_city_centre(agency):
    escort = escort_for(police_report(S.WANDERING, facts=[Fact.CHILD_ALONE], age=8, agency=agency))
    assert escort is not None
    assert escort.destination is EscortDestination.CITY_MINOR_RESCUE_CENTRE
    assert escort.destination.label == "市未成年人救助保护中心"
    assert not escort.dna_sampling


def test_aged_6_or_more_with_minor_offences_goes_to_the_second_centre():
    facts = [Fact.CHILD_ALONE, Fact.MINOR_OFFENCES]
    escort = escort_for(police_report(S.WANDERING, facts=facts, age=6))
    assert escort is not None
    assert escort.destination is EscortDestination.CITY_SECOND_MINOR_RESCUE_CENTRE
    assert escort.destination.label == "市第二未成年人救助保护中心"
    younger = escort_for(police_report(S.WANDERING, facts=facts, age=5))
    assert younger is not None
    assert younger.destination is EscortDestination.CITY_MINOR_RESCUE_CENTRE
    unknown_age = escort_for(police_report(S.WANDERING, facts=facts))
    assert unknown_age is not None
    assert unknown_age.destination is EscortDestination.CITY_MINOR_RESCUE_CENTRE


def test_begging_with_adults_goes_to_the_relief_station_for_identity_verification():
    escort = escort_for(police_report(S.WANDERING, facts=[Fact.BEGGING_WITH_ADULTS], age=8))
    assert escort is not None
    assert escort.destination is EscortDestination.DISTRICT_RELIEF_STATION
    assert "身份甄别" in escort.reason
    assert not escort.dna_sampling


@pytest.mark.parametrize("facts", [[Fact.BEGGING_WITH_ADULTS], []])
def test_child_of_unknown_origin_with_beggars_gives_a_dna_sample(facts):
    escort = escort_for(police_report(S.UNKNOWN_ORIGIN_MISSING_TRAFFICKED, S.ORGANISED_BEGGING, facts=facts))
    assert escort is not None
    assert escort.destination is EscortDestination.DISTRICT_RELIEF_STATION
    assert escort.dna_sampling


def test_escort_rules_apply_only_to_police_and_urban_management_reports():
    facts = [Fact.CHILD_ALONE]
    assert escort_for(police_report(S.WANDERING, facts=facts, agency=AgencyKind.EDUCATION)) is None
    assert escort_for(submission(Channel.PUBLIC_NAMED, facts=frozenset(facts))) is None
    assert escort_for(police_report(S.OUT_OF_SCHOOL, facts=facts)) is None  # alone, but not wandering
    assert escort_for(police_report(S.WANDERING)) is None  # wandering with an adult, not begging
