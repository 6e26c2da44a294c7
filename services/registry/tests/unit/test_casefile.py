"""The case file's status machine, transition by transition."""

import pytest

from services.registry.domain.casefile import ALLOWED_TRANSITIONS, CaseProgress, check_transition, require_open
from services.registry.domain.codes import CaseStatus
from services.registry.domain.errors import Conflict, InvalidInput

S = CaseStatus
READY = CaseProgress(assessed=True, open_plan_actions=1)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.IDENTIFIED, S.ASSESSING),
        (S.ASSESSING, S.PLAN_ACTIVE),
        (S.PLAN_ACTIVE, S.MONITORING),
        (S.MONITORING, S.PLAN_ACTIVE),  # plan adjusted at the evaluation phase
        (S.MONITORING, S.CLOSED),
        (S.IDENTIFIED, S.TRANSFERRED),
        (S.CLOSED, S.ASSESSING),  # reopened
    ],
)
def test_allowed_transitions(current: CaseStatus, target: CaseStatus) -> None:
    check_transition(current, target, READY, reason="因家庭情况变化")


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.IDENTIFIED, S.PLAN_ACTIVE),  # no skipping the assessment
        (S.IDENTIFIED, S.MONITORING),
        (S.ASSESSING, S.MONITORING),
        (S.PLAN_ACTIVE, S.ASSESSING),
        (S.CLOSED, S.PLAN_ACTIVE),
        (S.TRANSFERRED, S.ASSESSING),  # a transferred case is the receiving town's
        (S.MONITORING, S.MONITORING),
    ],
)
def test_other_transitions_are_refused(current: CaseStatus, target: CaseStatus) -> None:
    with pytest.raises(Conflict, match=f"from {current.value} to {target.value}"):
        check_transition(current, target, READY, reason="reason")


def test_every_status_has_its_transitions_listed() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(CaseStatus)


@pytest.mark.parametrize(
    ("current", "target"), [(S.MONITORING, S.CLOSED), (S.ASSESSING, S.TRANSFERRED), (S.CLOSED, S.ASSESSING)]
)
def test_closing_transferring_and_reopening_need_a_reason(current: CaseStatus, target: CaseStatus) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_transition(current, target, READY, reason="  ")
    assert refused.value.field == "reason"


def test_the_plan_starts_only_after_an_assessment_and_with_an_open_action() -> None:
    with pytest.raises(Conflict, match="assessment"):
        check_transition(S.ASSESSING, S.PLAN_ACTIVE, CaseProgress(assessed=False, open_plan_actions=2), "")
    with pytest.raises(Conflict, match="no open action"):
        check_transition(S.ASSESSING, S.PLAN_ACTIVE, CaseProgress(assessed=True, open_plan_actions=0), "")
    # Coming back from monitoring, the plan was already made: no such check.
    check_transition(S.MONITORING, S.PLAN_ACTIVE, CaseProgress(assessed=True, open_plan_actions=0), "")


def test_work_is_recorded_on_open_case_files_only() -> None:
    for status in (S.IDENTIFIED, S.ASSESSING, S.PLAN_ACTIVE, S.MONITORING):
        require_open(status)
    for status in (S.CLOSED, S.TRANSFERRED):
        with pytest.raises(Conflict, match="reopen"):
            require_open(status)
