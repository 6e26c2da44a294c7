from datetime import UTC, datetime, timedelta

import pytest

from platform_runtime.errors import Conflict, InvalidInput
from services.referral.domain.lifecycle import (
    Action,
    ReferralStatus,
    action_text,
    advance,
    clean_text,
    escalated_to,
    escalation_due,
)

S = ReferralStatus
A = Action


@pytest.mark.parametrize(
    ("current", "action", "target"),
    [
        (S.OPENED, A.SEND, S.SENT),
        (S.SENT, A.ACCEPT, S.ACCEPTED),
        (S.OPENED, A.ACCEPT, S.ACCEPTED),  # rows opened before "sent" existed
        (S.SENT, A.REJECT, S.REJECTED),
        (S.SENT, A.RETURN, S.RETURNED),
        (S.RETURNED, A.ANSWER, S.SENT),
        (S.RETURNED, A.REJECT, S.REJECTED),
        (S.ACCEPTED, A.PROGRESS, S.IN_PROGRESS),
        (S.IN_PROGRESS, A.PROGRESS, S.IN_PROGRESS),
        (S.ACCEPTED, A.COMPLETE, S.COMPLETED),
        (S.IN_PROGRESS, A.COMPLETE, S.COMPLETED),
        (S.SENT, A.CANCEL, S.CANCELLED),
        (S.IN_PROGRESS, A.CANCEL, S.CANCELLED),
        (S.REJECTED, A.REASSIGN, S.SENT),  # the leading group office finds another unit
        (S.ACCEPTED, A.REASSIGN, S.SENT),
    ],
)
def test_the_moves_of_a_referral(current, action, target):
    assert advance(current, action) is target


@pytest.mark.parametrize(
    ("current", "action"),
    [
        (S.SENT, A.COMPLETE),  # accepted first: someone must own it
        (S.SENT, A.PROGRESS),
        (S.ACCEPTED, A.ACCEPT),
        (S.ACCEPTED, A.RETURN),
        (S.SENT, A.ANSWER),
        (S.COMPLETED, A.ACCEPT),
        (S.COMPLETED, A.CANCEL),
        (S.CANCELLED, A.REASSIGN),
        (S.REJECTED, A.ACCEPT),
        (S.SENT, A.SEND),
    ],
)
def test_every_other_move_is_refused(current, action):
    with pytest.raises(Conflict, match=f"is {current.value} cannot be"):
        advance(current, action)


def test_texts_are_trimmed_and_bounded():
    assert clean_text("  done  ", "outcome", 10, required=True) == "done"
    assert clean_text("", "note", 10, required=False) == ""
    with pytest.raises(InvalidInput, match="outcome: is required"):
        clean_text("   ", "outcome", 10, required=True)
    with pytest.raises(InvalidInput, match="at most 10"):
        clean_text("x" * 11, "note", 10, required=False)


@pytest.mark.parametrize(
    ("action", "field"),
    [(A.REJECT, "reason"), (A.RETURN, "question"), (A.COMPLETE, "outcome"), (A.CANCEL, "reason"), (A.PROGRESS, "note")],
)
def test_an_action_that_must_say_why_says_it(action, field):
    with pytest.raises(InvalidInput, match=f"{field}: is required"):
        action_text(action, " ")
    assert action_text(A.ACCEPT, "") == ""


START = datetime(2024, 5, 6, tzinfo=UTC)
DUE = START + timedelta(days=5)


@pytest.mark.parametrize(
    ("status", "now", "raised", "step"),
    [
        (S.SENT, DUE - timedelta(seconds=1), 0, 0),
        (S.SENT, DUE, 0, 1),
        (S.SENT, DUE + timedelta(days=1), 1, 0),  # step 1 raised; step 2 only after as long again
        (S.SENT, DUE + timedelta(days=5), 1, 2),
        (S.IN_PROGRESS, DUE + timedelta(days=5), 2, 0),  # each step once
        (S.RETURNED, DUE + timedelta(days=9), 0, 0),  # the referrer's turn: the clock is stopped
        (S.COMPLETED, DUE + timedelta(days=9), 0, 0),
    ],
)
def test_escalation_steps(status, now, raised, step):
    assert escalation_due(status, START, DUE, raised, now) == step


def test_step_one_goes_to_the_agency_s_supervising_level_and_step_two_to_the_office():
    assert escalated_to(1, "police") == "police"
    assert escalated_to(2, "police") == "leading_group_office"
