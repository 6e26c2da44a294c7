"""What the registry's case events tell people: overdue follow-up visits, closed / transferred / reopened
cases and newly named staff. Pure: templates and recipients only."""

from datetime import date

import pytest

from platform_runtime.auth import Role
from services.notify.domain import recipients
from services.notify.domain.templates import (
    AssignedCase,
    ChangedCaseStatus,
    NamedStaff,
    OverdueVisit,
    Priority,
    case_assigned,
    case_status_changed,
    visit_overdue,
)

STAFF = NamedStaff(responsible_person="王专人", social_worker="李社工", child_director="张儿童主任")
NOBODY = NamedStaff()


def overdue(staff: NamedStaff = STAFF, risk_level: str = "high") -> OverdueVisit:
    return OverdueVisit(
        case_id="case1",
        child_id="child1",
        due_on=date(2024, 5, 6),
        days_overdue=13,
        risk_level=risk_level,
        staff=staff,
    )


def changed(from_status: str, to_status: str, staff: NamedStaff = STAFF) -> ChangedCaseStatus:
    return ChangedCaseStatus(
        case_id="case1", child_id="child1", from_status=from_status, to_status=to_status, staff=staff
    )


# --- an overdue follow-up visit ------------------------------------------------------------------------------


def test_an_overdue_visit_says_since_when_and_links_to_the_childs_case_file():
    content = visit_overdue(overdue())
    assert content.title == "随访逾期 Follow-up visit overdue: 13 天 days"
    assert content.priority is Priority.URGENT  # a missed time limit, like a missed report deadline
    assert (content.subject_type, content.subject_id) == ("child", "child1")
    assert "2024-05-06" in content.body
    assert "高风险 high" in content.body
    assert "child1" in content.body


def test_an_overdue_visit_names_the_staff_who_hold_the_case():
    body = visit_overdue(overdue()).body
    assert "专人 王专人" in body and "社工 李社工" in body and "儿童主任 张儿童主任" in body


def test_an_overdue_visit_of_a_case_without_named_staff_asks_for_one():
    assert "尚未指定" in visit_overdue(overdue(NOBODY)).body


def test_a_risk_level_without_a_label_is_shown_by_its_code():
    assert "severe" in visit_overdue(overdue(risk_level="severe")).body


def test_titles_carry_no_names_and_no_ids():
    titles = [
        visit_overdue(overdue()).title,
        case_status_changed(changed("monitoring", "closed")).title,
        case_assigned(AssignedCase("case1", "child1", STAFF, NOBODY)).title,
    ]
    for title in titles:
        for personal in ("王专人", "李社工", "张儿童主任", "child1", "case1"):
            assert personal not in title


# --- who holds a case -----------------------------------------------------------------------------------------


def test_the_township_caseworkers_always_hold_a_case_and_the_village_when_someone_there_is_named():
    assert recipients.holders(STAFF) == (Role.CASEWORKER, Role.CHILD_DIRECTOR)
    assert recipients.holders(NamedStaff(social_worker="李社工")) == (Role.CASEWORKER,)
    assert recipients.holders(NamedStaff(responsible_person="王专人")) == (Role.CASEWORKER, Role.CHILD_DIRECTOR)
    assert recipients.holders(NamedStaff(child_director="张儿童主任")) == (Role.CASEWORKER, Role.CHILD_DIRECTOR)
    # Nobody named: the town answers for the case and is asked to name someone.
    assert recipients.holders(NOBODY) == (Role.CASEWORKER,)


# --- case status --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        ("identified", "assessing"),
        ("assessing", "plan_active"),
        ("plan_active", "monitoring"),
        ("monitoring", "plan_active"),
    ],
)
def test_routine_steps_of_the_status_machine_stay_quiet(from_status, to_status):
    assert not recipients.status_change_is_told(from_status, to_status)


@pytest.mark.parametrize(
    ("from_status", "to_status", "title"),
    [
        ("monitoring", "closed", "个案已结案 Case closed"),
        ("identified", "closed", "个案已结案 Case closed"),
        ("plan_active", "transferred", "个案已转出 Case transferred out"),
        ("closed", "assessing", "个案重新开启 Case reopened"),
    ],
)
def test_a_case_leaving_its_holders_or_coming_back_to_them_is_told(from_status, to_status, title):
    assert recipients.status_change_is_told(from_status, to_status)
    content = case_status_changed(changed(from_status, to_status))
    assert content.title == title
    assert content.priority is Priority.NORMAL
    assert (content.subject_type, content.subject_id) == ("child", "child1")
    assert "child1" in content.body and "李社工" in content.body


def test_a_status_change_shows_both_statuses_as_staff_name_them():
    body = case_status_changed(changed("monitoring", "closed")).body
    assert "跟踪监测 monitoring → 已结案 closed" in body
    assert "随访停止" in body  # nobody needs to visit any more


def test_the_reason_typed_by_a_caseworker_is_never_copied_into_a_notification():
    # ChangedCaseStatus has no reason at all: free text may name the child or family.
    assert "reason" not in ChangedCaseStatus.__dataclass_fields__


# --- newly named staff ---------------------------------------------------------------------------------------


def test_only_the_newly_named_are_told():
    assert recipients.newly_named(STAFF, NOBODY) == (Role.CASEWORKER, Role.CHILD_DIRECTOR)
    assert recipients.newly_named(STAFF, NamedStaff("王专人", "", "张儿童主任")) == (Role.CASEWORKER,)
    assert recipients.newly_named(STAFF, NamedStaff("", "李社工", "张儿童主任")) == (Role.CHILD_DIRECTOR,)
    assert recipients.newly_named(STAFF, NamedStaff("王专人", "李社工", "")) == (Role.CHILD_DIRECTOR,)
    # A name only removed tells nobody.
    assert recipients.newly_named(NamedStaff(social_worker="李社工"), STAFF) == ()
    assert recipients.newly_named(STAFF, STAFF) == ()


def test_an_assignment_says_who_was_newly_named_and_who_holds_the_case():
    content = case_assigned(AssignedCase("case1", "child1", STAFF, NamedStaff("王专人", "", "张儿童主任")))
    assert content.title == "个案分配 Case assigned"
    assert content.priority is Priority.NORMAL
    assert (content.subject_type, content.subject_id) == ("child", "child1")
    first, *rest = content.body.splitlines()
    assert first == "新指定 newly named: 社工 李社工"
    assert any("专人 王专人" in line for line in rest)
