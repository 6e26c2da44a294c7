"""Staff handling a report after intake, as the portal receives it (form or JSON): the milestone reached
and when. One translation for both entry points, like `intake` for new reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minorprot.reporting.v1 import reporting_pb2

from gateway import intake
from platform_runtime.errors import InvalidInput

# The time-limit milestones, in order, with the words staff use (the contract's `reporting.v1.Milestone`);
# the labels are catalogue keys, like every code label the API returns.
MILESTONES = {
    "acknowledge": (reporting_pb2.MILESTONE_ACKNOWLEDGE, "受理确认"),
    "first_contact": (reporting_pb2.MILESTONE_FIRST_CONTACT, "首次接触儿童"),
    "assessment": (reporting_pb2.MILESTONE_ASSESSMENT, "评估"),
}
MILESTONE_CHOICES = [(code, label) for code, (_, label) in MILESTONES.items()]


def milestone_request(report_id: str, payload: Mapping[str, Any]) -> reporting_pb2.RecordMilestoneRequest:
    """`{"milestone": "first_contact", "completed_at": "2025-05-01T10:30"}`; no time means now."""
    code = str(payload.get("milestone", "")).strip()
    if code not in MILESTONES:
        raise InvalidInput.single("milestone", f"one of: {', '.join(MILESTONES)}")
    request = reporting_pb2.RecordMilestoneRequest(report_id=report_id, milestone=MILESTONES[code][0])
    at = str(payload.get("completed_at", "") or "").strip()
    if at:
        request.completed_at.CopyFrom(intake.moment(at, "completed_at"))
    return request


TRIAGE_DECISIONS = {"confirm": True, "reject": False}


def triage_decision(payload: Mapping[str, Any]) -> tuple[bool, int | None]:
    """`{"decision": "confirm" | "reject", "expected_version": 3}`: a person's triage of a report from the public
    (the version they read, if given: a report changed since is not decided on blindly)."""
    decision = str(payload.get("decision", "")).strip()
    if decision not in TRIAGE_DECISIONS:
        raise InvalidInput.single("decision", "confirm or reject")
    version = str(payload.get("expected_version", "") or "").strip()
    if version and not version.isdigit():
        raise InvalidInput.single("expected_version", "a report version (a whole number)")
    return TRIAGE_DECISIONS[decision], int(version) if version else None
