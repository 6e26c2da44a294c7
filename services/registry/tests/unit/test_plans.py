"""Assistance plan actions: owners, overdue, and progress from the referral service's events."""

from datetime import date

import pytest

from services.registry.domain.codes import ActionStatus, OwnerKind
from services.registry.domain.errors import InvalidInput
from services.registry.domain.plans import ReferralProgress, check_owner, is_overdue, status_after_referral

A = ActionStatus
ACCEPTED, COMPLETED = ReferralProgress.ACCEPTED, ReferralProgress.COMPLETED


@pytest.mark.parametrize(
    ("current", "progress", "after"),
    [
        (A.PLANNED, ACCEPTED, A.IN_PROGRESS),
        (A.PLANNED, COMPLETED, A.DONE),  # the accepted event may arrive late, or never
        (A.IN_PROGRESS, COMPLETED, A.DONE),
        (A.IN_PROGRESS, ACCEPTED, A.IN_PROGRESS),
        (A.DONE, ACCEPTED, A.DONE),  # never backwards
        (A.CANCELLED, COMPLETED, A.CANCELLED),  # a person's decision stands
    ],
)
def test_referral_events_move_actions_forward_only(current: A, progress: ReferralProgress, after: A) -> None:
    assert status_after_referral(current, progress) is after


def test_owners() -> None:
    assert check_owner(OwnerKind.PERSON, " 李主任 ") == "李主任"
    assert check_owner(OwnerKind.AGENCY, "education") == "education"
    for kind, owner in ((OwnerKind.PERSON, " "), (OwnerKind.AGENCY, "区教委"), (OwnerKind.AGENCY, "Education")):
        with pytest.raises(InvalidInput) as refused:
            check_owner(kind, owner)
        assert refused.value.field == "owner"


def test_an_unfinished_action_past_its_due_date_is_overdue() -> None:
    today = date(2024, 6, 10)
    assert is_overdue(date(2024, 6, 9), A.IN_PROGRESS, today)
    assert not is_overdue(date(2024, 6, 10), A.PLANNED, today)
    assert not is_overdue(date(2024, 6, 1), A.DONE, today)
    assert not is_overdue(None, A.PLANNED, today)
