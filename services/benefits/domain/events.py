"""What happened in benefits, as the domain says it (past tense): the events the benefits service publishes.

Plain frozen dataclasses; `adapters/messages.py` maps each to its `minorprot.benefits.v1` message, topic and key
(a child's insurance and entitlements on benefits.entitlement under the child, a run's steps and failed payments
on benefits.disbursement under the run). The use cases never build protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class InsuranceEnrolled:
    """A child was enrolled in the 0–3 insurance (first decided, or decided again and now eligible)."""

    enrolment_id: str
    tenant: str
    child_id: str
    covered_until: date | None
    enrolled_at: datetime


@dataclass(frozen=True)
class EntitlementChanged:
    """An entitlement started, changed, was suspended or ended, or its review came (for notify and the ledger)."""

    entitlement_id: str
    child_id: str
    benefit_code: str
    change: str  # started | changed | suspended | ended | review_due
    effective_on: date
    reason: str
    monthly_amount_fen: int  # 0 when suspended or ended


@dataclass(frozen=True)
class DisbursementRunChanged:
    """A district's monthly run moved to another step, with its control totals at that point."""

    run_id: str
    district: str
    period: date
    status: str
    line_count: int
    total_fen: int
    by: str  # the user who made the step


@dataclass(frozen=True)
class PaymentFailed:
    """The bank returned a payment instruction as failed; it waits for a re-issue."""

    run_id: str
    reference: str
    child_id: str
    benefit_code: str
    amount_fen: int
    reason: str


BenefitsEvent = InsuranceEnrolled | EntitlementChanged | DisbursementRunChanged | PaymentFailed
