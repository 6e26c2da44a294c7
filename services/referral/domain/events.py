"""What happened to a referral, as the domain says it (past tense). `adapters/messages.py` maps each to its
`minorprot.referral.v1` message, topic and key; the use cases never build protobuf.

A referral's events carry the referral as it is after the change (`ReferralView`); the mapper leaves out its
free text (last note, outcome, case facts), which no consumer needs (docs/data-protection.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.referral.domain.lifecycle import Action
from services.referral.domain.referral import ReferralView


@dataclass(frozen=True)
class _OfReferral:
    """An event about one referral: the referral as it is after the change."""

    referral: ReferralView


class ReferralOpened(_OfReferral):
    pass


class ReferralSent(_OfReferral):
    """Sent to its agency: first, after the referrer answered a question, or after a reassignment."""


class ReferralAccepted(_OfReferral):
    pass


class ReferralRejected(_OfReferral):
    pass


class ReferralReturned(_OfReferral):
    """The agency sent it back with a question for the referrer."""


class ReferralProgressed(_OfReferral):
    pass


@dataclass(frozen=True)
class ReferralCompleted(_OfReferral):
    """Completed; the outcome has a consumer (the registry's plan action notes it)."""

    outcome: str


class ReferralCancelled(_OfReferral):
    pass


class ReferralLinkedToChild(_OfReferral):
    """The referral's report now concerns a known child."""


@dataclass(frozen=True)
class ReferralReassigned(_OfReferral):
    previous_agency_code: str


@dataclass(frozen=True)
class ReferralEscalated(_OfReferral):
    step: int
    escalated_to: str
    reason: str


@dataclass(frozen=True)
class BenefitApplicationRequested:
    """Routing asks the benefits service to open an application for the referral's child."""

    referral_id: str
    report_id: str
    child_id: str
    benefit_code: str
    reason: str
    agency_code: str


@dataclass(frozen=True)
class DirectoryAgencySaved:
    """A unit of the district's directory was saved: its contact points (announced under the district's code,
    which its towns share)."""

    agency_code: str
    duty_phone: str
    email: str
    webhook: str
    contact_user_ids: tuple[str, ...]


ReferralMoved = (
    ReferralSent
    | ReferralAccepted
    | ReferralRejected
    | ReferralReturned
    | ReferralProgressed
    | ReferralCompleted
    | ReferralCancelled
)

ReferralEvent = (
    ReferralOpened
    | ReferralMoved
    | ReferralLinkedToChild
    | ReferralReassigned
    | ReferralEscalated
    | BenefitApplicationRequested
    | DirectoryAgencySaved
)


def moved(action: Action, referral: ReferralView, text: str) -> ReferralMoved:
    """The event that tells the others of a move (reassign and escalate have their own). The text written with
    it stays in the history: it is free text, and only a completed referral's outcome has a consumer."""
    if action is Action.SEND or action is Action.ANSWER:
        return ReferralSent(referral)
    if action is Action.ACCEPT:
        return ReferralAccepted(referral)
    if action is Action.REJECT:
        return ReferralRejected(referral)
    if action is Action.RETURN:
        return ReferralReturned(referral)
    if action is Action.PROGRESS:
        return ReferralProgressed(referral)
    if action is Action.COMPLETE:
        return ReferralCompleted(referral, outcome=text)
    if action is Action.CANCEL:
        return ReferralCancelled(referral)
    raise ValueError(f"{action} has an event of its own")
