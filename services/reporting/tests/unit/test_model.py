from datetime import date

import pytest

from services.reporting.domain import model
from services.reporting.domain.errors import Conflict, InvalidInput, RateLimited, Violation
from services.reporting.domain.model import (
    MANDATORY_REPORTING_SITUATIONS,
    PLAN_CATEGORIES,
    Channel,
    ChildInfo,
    Reporter,
    ReportStatus,
    SituationType,
    Urgency,
    most_urgent,
    requires_police_report,
)
from services.reporting.tests.unit.builders import report, submission

LABELLED_ENUMS = [
    model.Channel,
    model.ReporterRole,
    model.AgencyKind,
    model.Sex,
    model.SituationType,
    model.Fact,
    model.Urgency,
    model.CrisisAction,
    model.EscortDestination,
    model.ReportStatus,
]


@pytest.mark.parametrize("enum", LABELLED_ENUMS)
def test_every_member_has_a_chinese_label(enum):
    for member in enum:
        assert member.label.strip()


def test_situation_types_are_the_plan_categories_and_the_nine_mandatory_situations():
    assert len(PLAN_CATEGORIES) == 8
    assert len(MANDATORY_REPORTING_SITUATIONS) == 9
    assert set(SituationType) == PLAN_CATEGORIES | MANDATORY_REPORTING_SITUATIONS
    assert SituationType.ORGANISED_BEGGING.label == "被组织乞讨"


def test_police_report_is_required_for_any_mandatory_situation():
    assert requires_police_report([SituationType.OUT_OF_SCHOOL, SituationType.ORGANISED_BEGGING])
    assert not requires_police_report([SituationType.OUT_OF_SCHOOL])


def test_most_urgent():
    assert most_urgent([Urgency.NORMAL, Urgency.CRISIS, Urgency.URGENT]) is Urgency.CRISIS
    assert most_urgent([]) is Urgency.NORMAL


def test_age_from_birth_date_turns_on_the_birthday():
    kid = ChildInfo(birth_date=date(2010, 6, 15), approximate_age=3)
    assert kid.age_on(date(2024, 6, 14)) == 13
    assert kid.age_on(date(2024, 6, 15)) == 14
    assert ChildInfo(approximate_age=3).age_on(date(2024, 1, 1)) == 3
    assert ChildInfo().age_on(date(2024, 1, 1)) is None


# --- the report lifecycle -----------------------------------------------------------------------------------


def test_happy_path():
    rep = report()
    rep.record_triage(Urgency.URGENT, ("URGENT_INJURED",))
    rep.link("child-1", "group-1")
    rep.start_handling()
    rep.give_outcome_notice("  已转交良乡镇政府处理。 ")
    rep.close()
    assert rep.status is ReportStatus.CLOSED
    assert (rep.urgency, rep.child_id, rep.group_id) == (Urgency.URGENT, "child-1", "group-1")
    assert rep.outcome_notice == "已转交良乡镇政府处理。"


def test_steps_cannot_be_skipped():
    rep = report()
    with pytest.raises(Conflict):
        rep.link("child-1", "group-1")  # not triaged
    rep.record_triage(Urgency.NORMAL, ())
    with pytest.raises(Conflict):
        rep.start_handling()  # not linked
    with pytest.raises(Conflict):
        rep.record_triage(Urgency.NORMAL, ())  # already triaged


def test_a_failed_step_flags_the_report_and_it_resumes_later():
    rep = report()
    rep.record_triage(Urgency.CRISIS, ("CRISIS_ABANDONMENT",))
    rep.flag_for_attention("registry unavailable")
    assert (rep.status, rep.attention_reason) == (ReportStatus.NEEDS_ATTENTION, "registry unavailable")
    with pytest.raises(Conflict):
        rep.flag_for_attention("again")
    rep.link("child-1", "group-1")
    assert (rep.status, rep.attention_reason) == (ReportStatus.LINKED, None)


def test_closing_needs_an_outcome_notice_and_is_final():
    rep = report()
    with pytest.raises(Conflict, match="outcome notice"):
        rep.close()
    rep.give_outcome_notice("经核实,情况不属实。")
    rep.close()
    with pytest.raises(Conflict):
        rep.flag_for_attention("late failure")
    with pytest.raises(Conflict):
        rep.close()


def test_the_outcome_notice_is_final_once_closed():
    rep = report()
    rep.give_outcome_notice("经核实,情况不属实。")
    rep.close()
    with pytest.raises(Conflict, match="closed"):
        rep.give_outcome_notice("改口")
    assert rep.outcome_notice == "经核实,情况不属实。"


def test_whether_a_report_can_be_linked_is_known_before_asking_the_register():
    rep = report()
    with pytest.raises(Conflict, match="triaged"):
        rep.check_linkable()
    rep.record_triage(Urgency.NORMAL, ())
    rep.check_linkable()
    rep.link("child-1", "group-1")
    with pytest.raises(Conflict, match="linked to linked"):
        rep.check_linkable()


@pytest.mark.parametrize("text", ["", "   ", "字" * (model.OUTCOME_NOTICE_MAX_CHARS + 1)])
def test_outcome_notice_bounds(text):
    with pytest.raises(InvalidInput) as error:
        report().give_outcome_notice(text)
    assert error.value.violations[0].field == "outcome_notice"


def test_every_status_can_reach_closed_or_is_closed():
    for status, targets in model.ALLOWED_TRANSITIONS.items():
        assert status is ReportStatus.CLOSED or ReportStatus.CLOSED in targets


def test_an_anonymous_report_can_never_hold_a_reporter():
    sub = submission(Channel.PUBLIC_ANONYMOUS, reporter=Reporter("赵女士", "13912345678"))
    with pytest.raises(ValueError, match="anonymous"):
        report(sub)


# --- errors -------------------------------------------------------------------------------------------------


def test_invalid_input_carries_every_violation():
    error = InvalidInput([Violation("a", "bad"), Violation("b.c", "worse")])
    assert [v.field for v in error.violations] == ["a", "b.c"]
    assert str(error) == "a: bad; b.c: worse"
    with pytest.raises(ValueError):
        InvalidInput([])


def test_rate_limited_says_when_to_retry():
    assert RateLimited(2.5).retry_after_seconds == 2.5
