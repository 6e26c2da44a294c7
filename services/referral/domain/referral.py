"""A referral as the use cases return it and its events carry it: a plain snapshot, free of SQL and protobuf."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.referral.domain.lifecycle import ReferralStatus


@dataclass(frozen=True)
class ReferralView:
    referral_id: str
    tenant: str
    report_id: str
    child_id: str
    agency_code: str
    agency_name: str
    status: ReferralStatus
    reason: str
    rule_code: str
    urgent: bool
    opened_at: datetime
    due_at: datetime
    version: int = 0
    escalated_step: int = 0
    last_note: str = ""
    outcome: str = ""
    updated_at: datetime | None = None
    # The minimum the agency needs to act: situations, facts, age, where (never a name).
    case_facts: dict[str, Any] = field(default_factory=dict)
