"""What the referral use cases take and return: plain dataclasses, free of SQL and protobuf."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.referral.domain.referral import ReferralView
from services.referral.domain.routing import ReportFacts

__all__ = ["EntryView", "FeedChange", "ReferralDetail", "ReferralPage", "ReferralView", "SubmittedReport"]


@dataclass(frozen=True)
class SubmittedReport:
    """A submitted report as the referral service sees it (from `reporting.v1.ReportSubmitted`)."""

    report_id: str
    child_id: str
    received_at: datetime
    facts: ReportFacts
    division_code: str = ""
    place_text: str = ""


@dataclass(frozen=True)
class EntryView:
    """One step of a referral's history."""

    action: str
    at: datetime
    by: str
    agency_code: str
    text: str
    status: str
    version: int


@dataclass(frozen=True)
class ReferralDetail:
    referral: ReferralView
    entries: list[EntryView] = field(default_factory=list)


@dataclass(frozen=True)
class ReferralPage:
    referrals: list[ReferralView]
    next_page_token: str = ""


@dataclass(frozen=True)
class FeedChange:
    """One change in an agency's stream: its cursor, and the referral as it was (serialized `Referral`)."""

    seq: int
    gone: bool
    snapshot: bytes
