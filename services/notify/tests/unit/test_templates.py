from datetime import UTC, datetime

from platform_runtime.auth import Role
from platform_runtime.vocabulary import SituationType
from services.notify.domain import recipients
from services.notify.domain.templates import (
    BreachedDeadline,
    DeclaredCrisis,
    OpenedReferral,
    Priority,
    crisis_declared,
    deadline_breached,
    referral_opened,
)


def opened(urgent: bool = False, agency_name: str = "区教委") -> OpenedReferral:
    return OpenedReferral(
        referral_id="ref1",
        report_id="rep1",
        agency_name=agency_name,
        reason="失学辍学 out of school",
        due_at=datetime(2024, 5, 6, 1, 30, tzinfo=UTC),
        urgent=urgent,
    )


def crisis(actions: tuple[str, ...] = ("notify_township_duty_officer", "notify_police")) -> DeclaredCrisis:
    return DeclaredCrisis(
        report_id="rep9",
        division_code="110111008001",
        situation_types=("violence_injury_signs",),
        reasons=("injuries suspected from violence or abuse",),
        required_actions=actions,
    )


# --- a new referral -----------------------------------------------------------------------------------


def test_a_new_referral_names_the_agency_and_links_to_the_referral():
    content = referral_opened(opened())
    assert content.title == "新转介 New referral to 区教委"
    assert content.priority is Priority.NORMAL
    assert (content.subject_type, content.subject_id) == ("referral", "ref1")
    assert "rep1" in content.body
    # The reason is not printed: a referral's reason may be typed by staff (the referral page shows it).
    assert "失学辍学" not in content.title + content.body


def test_the_due_time_is_shown_in_beijing_time():
    assert "2024-05-06 09:30" in referral_opened(opened()).body


def test_an_urgent_referral_is_an_urgent_notification():
    assert referral_opened(opened(urgent=True)).priority is Priority.URGENT


# --- a crisis -----------------------------------------------------------------------------------------


def test_a_crisis_names_the_required_actions_in_the_title():
    content = crisis_declared(crisis())
    assert content.title == "危机报告 Crisis report: 立即通知乡镇(街道)值班人员、向公安机关报告"
    assert content.priority is Priority.CRISIS
    assert (content.subject_type, content.subject_id) == ("report", "rep9")
    assert "110111008001" in content.body
    # Situations by their labels; triage's reasons are not printed (the report page shows them).
    assert SituationType.VIOLENCE_INJURY_SIGNS.label in content.body
    assert "injuries suspected" not in content.body


def test_a_situation_code_notify_does_not_know_is_left_out():
    unknown = DeclaredCrisis("rep9", "", ("李小明的父亲服刑",), (), ("notify_police",))
    assert "李小明" not in crisis_declared(unknown).body


def test_an_action_without_a_label_is_shown_by_its_code():
    assert "evacuate_building" in crisis_declared(crisis(("evacuate_building",))).title


def test_titles_carry_nothing_but_the_template_and_the_unit():
    # The events carry no names; the titles are built only from fixed text, agency names and action labels.
    assert crisis_declared(crisis()).title.startswith("危机报告 Crisis report: ")
    assert "rep9" not in crisis_declared(crisis()).title
    assert "rep1" not in referral_opened(opened()).title


# --- a missed time limit -----------------------------------------------------------------------------------


def breached(crisis: bool = False, completed_at: datetime | None = None) -> BreachedDeadline:
    return BreachedDeadline(
        report_id="rep9",
        milestone="first_contact",
        crisis=crisis,
        due_at=datetime(2024, 5, 6, 1, 30, tzinfo=UTC),
        completed_at=completed_at,
    )


def test_a_missed_deadline_names_the_milestone_and_the_due_time_in_beijing_time():
    content = deadline_breached(breached())
    assert content.title == "办理超时 Deadline missed: 首次接触儿童 first contact"
    assert content.priority is Priority.URGENT
    assert (content.subject_type, content.subject_id) == ("report", "rep9")
    assert "2024-05-06 09:30" in content.body and "尚未完成" in content.body


def test_a_deadline_reached_late_says_when_and_a_crisis_one_is_crisis_priority():
    content = deadline_breached(breached(crisis=True, completed_at=datetime(2024, 5, 6, 2, 0, tzinfo=UTC)))
    assert content.priority is Priority.CRISIS
    assert "2024-05-06 10:00 (超时完成 reached late)" in content.body


def test_a_milestone_without_a_label_is_shown_by_its_code():
    assert deadline_breached(BreachedDeadline("r", "home_visit", False, datetime.now(UTC), None)).title.endswith(
        "home_visit"
    )


# --- recipients ---------------------------------------------------------------------------------------


def test_referrals_go_to_caseworkers_and_crises_also_to_the_town_admin():
    assert recipients.REFERRAL_OPENED_ROLES == (Role.CASEWORKER,)
    assert recipients.CRISIS_DECLARED_ROLES == (Role.CASEWORKER, Role.TOWN_ADMIN)


def test_missed_deadlines_go_to_caseworkers_and_for_a_crisis_also_to_the_town_admin():
    assert recipients.DEADLINE_BREACHED_ROLES == (Role.CASEWORKER,)
    assert recipients.CRISIS_DEADLINE_BREACHED_ROLES == (Role.CASEWORKER, Role.TOWN_ADMIN)


def test_a_notification_is_read_by_its_role_or_its_user():
    assert recipients.addressed_to("caseworker", "", role="caseworker", user_id="u1")
    assert recipients.addressed_to("", "u1", role="town_admin", user_id="u1")
    assert not recipients.addressed_to("caseworker", "", role="town_admin", user_id="u1")
    assert not recipients.addressed_to("", "u2", role="caseworker", user_id="u1")
    assert not recipients.addressed_to("", "", role="", user_id="")


def test_the_public_has_no_inbox():
    assert Role.PUBLIC not in recipients.INBOX_ROLES
    assert Role.CASEWORKER in recipients.INBOX_ROLES
