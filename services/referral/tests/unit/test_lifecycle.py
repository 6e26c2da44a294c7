import pytest

from platform_runtime.errors import Conflict, InvalidInput
from services.referral.domain.lifecycle import ReferralStatus, advance, clean_text

S = ReferralStatus


def test_a_referral_is_accepted_then_completed():
    assert advance(S.OPENED, S.ACCEPTED) is S.ACCEPTED
    assert advance(S.ACCEPTED, S.COMPLETED) is S.COMPLETED


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.OPENED, S.COMPLETED),  # accepted first: someone must own it
        (S.OPENED, S.OPENED),
        (S.ACCEPTED, S.ACCEPTED),
        (S.ACCEPTED, S.OPENED),
        (S.COMPLETED, S.ACCEPTED),
        (S.COMPLETED, S.COMPLETED),
    ],
)
def test_every_other_move_is_refused(current, target):
    with pytest.raises(Conflict, match=f"from {current.value} to {target.value}"):
        advance(current, target)


def test_texts_are_trimmed_and_bounded():
    assert clean_text("  done  ", "outcome", 10, required=True) == "done"
    assert clean_text("", "note", 10, required=False) == ""
    with pytest.raises(InvalidInput, match="outcome: is required"):
        clean_text("   ", "outcome", 10, required=True)
    with pytest.raises(InvalidInput, match="at most 10"):
        clean_text("x" * 11, "note", 10, required=False)
