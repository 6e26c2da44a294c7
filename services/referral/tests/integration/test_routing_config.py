"""Routing as data: the district administrator's directory and rule versions, their effective dates, the preview,
and routing by the version in effect on the day a report was received."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from minorprot.referral.v1 import events_pb2 as referral_events
from sqlalchemy import select, update
from sqlalchemy.exc import ProgrammingError

from platform_runtime import errors
from platform_runtime.auth import Role
from platform_runtime.tenancy import acting_as
from services.referral.adapters.orm import RuleSetRecord
from services.referral.domain.agencies import DIRECTORY, Contacts
from services.referral.domain.routing import PLAN_RULES, ReportFacts, rule_to_dict
from services.referral.entrypoints.consumers import consumers
from services.referral.service_layer.routing_config import RoutingConfig
from services.referral.service_layer.services import ReferralService
from services.referral.tests.integration.builders import RECEIVED, caller, submitted
from tests.support.events import events_of, message
from tests.support.services import consumer_under_test

pytestmark = pytest.mark.integration

ADMIN = caller(Role.DISTRICT_ADMIN)
OTHER_DISTRICT_ADMIN = caller(Role.DISTRICT_ADMIN, tenant="110112001")
TODAY = RECEIVED.date()  # the clock of these tests: the day the builders' reports are received


@pytest.fixture
def config(database) -> RoutingConfig:
    return RoutingConfig(database, now=lambda: datetime.combine(TODAY, datetime.min.time(), RECEIVED.tzinfo))


def plan_rules_with(**changes: dict[str, object]) -> list[dict[str, object]]:
    rules = [rule_to_dict(rule) for rule in PLAN_RULES]
    for rule in rules:
        rule.update(changes.get(str(rule["code"]), {}))
    return rules


def test_a_district_without_rules_of_its_own_routes_by_the_plan(config):
    with acting_as(ADMIN):
        (plan,) = config.list_rule_sets()
    assert (plan.version, len(plan.rules)) == (0, len(PLAN_RULES))
    assert config.rules_for("110111", TODAY).version == 0


def test_a_new_version_applies_from_its_day_and_the_old_one_before(config, database, kafka):
    tomorrow = TODAY + timedelta(days=1)
    with acting_as(ADMIN):
        saved = config.add_rule_set(
            plan_rules_with(SCHOOLING_EDUCATION={"agency_code": "youth_league"}), tomorrow, "团委负责劝返"
        )
    assert (saved.version, saved.effective_from, saved.in_use) == (1, tomorrow, False)
    assert config.rules_for("110111", TODAY).version == 0
    assert config.rules_for("110111", tomorrow).version == 1

    service = ReferralService(database, config=config)
    (spec,) = consumers(service)
    with consumer_under_test(spec, database, kafka) as consumer:
        consumer.process(message(submitted("before", ["out_of_school"]), "event-before"))
        later = submitted("after", ["out_of_school"])
        later.payload.summary.received_at.FromDatetime(RECEIVED + timedelta(days=1))  # type: ignore[attr-defined]
        consumer.process(message(later, "event-after"))
    with acting_as(caller(Role.CASEWORKER)):
        (before,) = service.list_referrals(report_id="before").referrals
        (after,) = service.list_referrals(report_id="after").referrals
    assert before.agency_code == "education"
    assert after.agency_code == "youth_league"
    with acting_as(ADMIN):
        assert config.rule_set(1).in_use


def test_a_version_is_never_edited_and_never_starts_in_the_past(config, database):
    with acting_as(ADMIN):
        with pytest.raises(errors.InvalidInput, match="effective_from"):
            config.add_rule_set(plan_rules_with(), TODAY - timedelta(days=1))
        first = config.add_rule_set(plan_rules_with(), TODAY)
        second = config.add_rule_set(plan_rules_with(MEDICAL_HEALTH={"due_in_minutes": 30}), TODAY)
    assert (first.version, second.version) == (1, 2)
    assert config.rules_for("110111", TODAY).version == 2  # the newer of two from the same day
    with database.unit_of_work("110111", district="110111") as uow:
        stored = uow.session.scalars(select(RuleSetRecord).order_by(RuleSetRecord.version)).all()
        assert [row.version for row in stored] == [1, 2]


def test_mistakes_in_a_rule_set_are_named_field_by_field(config):
    bad = plan_rules_with(MEDICAL_HEALTH={"agency_code": "ministry_of_magic"}, VIOLENCE_COURT={"due_in_minutes": -5})
    with acting_as(ADMIN), pytest.raises(errors.InvalidInput) as invalid:
        config.add_rule_set(bad, TODAY)
    assert {v.field for v in invalid.value.violations} == {
        "rules.MEDICAL_HEALTH.agency_code",
        "rules.VIOLENCE_COURT.due_in_minutes",
    }


def test_the_preview_says_where_a_case_would_go_and_why(config):
    facts = ReportFacts(frozenset({"wandering"}), frozenset({"child_alone", "minor_offences"}), age=7)
    with acting_as(caller(Role.LEADING_GROUP_OFFICE)):
        version, preview = config.preview(facts, TODAY)
    assert version == 0
    assert {r.agency_code for r in preview.routes} >= {"police", "city_second_minor_rescue_centre"}
    why = {v.rule_code: v.why for v in preview.verdicts}
    assert "applied first" in why["ESCORT_RESCUE_CENTRE"]
    # One draft rule, tried alone.
    with acting_as(ADMIN):
        _, alone = config.preview(facts, TODAY, rules=[rule_to_dict(PLAN_RULES[5])])
    assert [r.rule_code for r in alone.routes] == ["ESCORT_RESCUE_CENTRE"]


def test_the_directory_is_the_district_s_own(config, database):
    health = replace(
        DIRECTORY["health"],
        name_zh="区卫生健康委员会",
        contacts=Contacts(("doctor.li",), "010-6935-0000", "duty@health.example", "https://health.example/hook"),
    )
    with acting_as(ADMIN):
        saved = config.save_agency(health)
        assert saved.contacts.duty_phone == "010-6935-0000"
        assert len(config.list_agencies()) == len(DIRECTORY)
        with pytest.raises(errors.InvalidInput) as invalid:
            config.save_agency(replace(health, code="Bad Code", duties=(), contacts=Contacts(webhook="http://x")))
    assert {v.field for v in invalid.value.violations} == {"code", "duties", "contacts.webhook"}
    assert config.directory("110111")["health"].name_zh == "区卫生健康委员会"
    assert config.directory("110112")["health"].name_zh == "区卫生局"  # another district: untouched
    # Its contact points are announced under the district's code, for notify (its towns share them).
    (announced,) = events_of(database, "110111", referral_events.DirectoryAgencySaved)
    assert (announced.agency_code, announced.duty_phone, announced.email, announced.webhook) == (
        "health",
        "010-6935-0000",
        "duty@health.example",
        "https://health.example/hook",
    )
    assert list(announced.contact_user_ids) == ["doctor.li"]
    with acting_as(OTHER_DISTRICT_ADMIN):
        assert {a.name_zh for a in config.list_agencies() if a.code == "health"} == {"区卫生局"}


def test_only_the_district_administrator_changes_the_rules(config):
    for role in (Role.CASEWORKER, Role.LEADING_GROUP_OFFICE, Role.AGENCY_OFFICER, Role.TOWN_ADMIN):
        with acting_as(caller(role)), pytest.raises(errors.PermissionDenied):
            config.add_rule_set(plan_rules_with(), TODAY)
        with acting_as(caller(role)), pytest.raises(errors.PermissionDenied):
            config.save_agency(DIRECTORY["health"])


def test_another_district_s_versions_are_its_own(config, database):
    with acting_as(ADMIN):
        config.add_rule_set(plan_rules_with(), TODAY)
    with acting_as(OTHER_DISTRICT_ADMIN):
        assert [v.version for v in config.list_rule_sets()] == [0]
    # Row-level security: the other district's unit of work reads none of them.
    with database.unit_of_work("110112", district="110112") as uow:
        assert uow.session.scalars(select(RuleSetRecord)).all() == []
    # And no one edits a version in place: the app role may only add them.
    with database.unit_of_work("110111", district="110111") as uow, pytest.raises(ProgrammingError, match="denied"):
        uow.session.execute(update(RuleSetRecord).values(note="edited"))
    with acting_as(ADMIN):
        assert config.rule_set(1).note == ""


def test_a_date_is_a_date(config):
    assert isinstance(config.rules_for("110111", date(2030, 1, 1)).effective_from, date)
