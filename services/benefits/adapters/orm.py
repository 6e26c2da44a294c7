"""The benefits service's tables. Every tenant table carries tenant_id and is under row-level security on PostgreSQL.

Town data (beneficiaries, entitlements, applications) is kept under the town's tenant id; a district's data
(its policy versions, disbursement runs, their lines, payment instructions and ledger) under the 6-digit
district code, with the town in its own column, so a district unit of work may write it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_runtime.db import add_messaging_tables

metadata = MetaData()

# SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = metadata


class InsuranceEnrolmentRecord(Base):
    """The insurance decision for one child: enrolled until a date, or not and why. Holds no personal data."""

    __tablename__ = "insurance_enrolments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    policy_code: Mapped[str] = mapped_column(String(60))
    covered_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    ineligible_reason: Mapped[str | None] = mapped_column(String(60), nullable=True)
    decided_on: Mapped[date] = mapped_column(Date)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index("ux_insurance_enrolments_child", "tenant_id", "child_id", unique=True),
        # ListInsuranceEnrolments: the town's enrolled children, the latest decided first, a page at a time.
        Index("ix_insurance_enrolments_decided", "tenant_id", "status", "decided_at", "id"),
    )


class PolicyVersionRecord(Base):
    """One version of a district's policy catalogue; frozen (used_at set) once a run has computed with it."""

    __tablename__ = "policy_versions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))  # the district
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[date] = mapped_column(Date)
    effective_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    sample: Mapped[bool] = mapped_column(Boolean)
    arrears_months: Mapped[int] = mapped_column(Integer)
    rules: Mapped[str] = mapped_column(Text)  # JSON list of benefit rules
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (Index("ux_policy_versions_version", "tenant_id", "version", unique=True),)


class BeneficiaryRecord(Base):
    """The facts about a child that amounts depend on (no names or identity numbers)."""

    __tablename__ = "beneficiaries"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))  # the town
    child_id: Mapped[str] = mapped_column(String(32))
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    household_division_code: Mapped[str] = mapped_column(String(12))
    account_ref: Mapped[str] = mapped_column(String(64))  # the payee account's reference at the bank
    merged_into: Mapped[str | None] = mapped_column(String(32), nullable=True)
    facts_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The blind index of the identity number the register holds (platform_runtime.pii.person_key): the
    # insurance roster's entry for the same person is linked by it.
    person_key: Mapped[str | None] = mapped_column(String(40), nullable=True)
    __table_args__ = (
        Index("ux_beneficiaries_child", "tenant_id", "child_id", unique=True),
        Index("ix_beneficiaries_person", "tenant_id", "person_key"),
    )


class EntitlementRecord(Base):
    """An approved period of one child's entitlement to one benefit (both days included)."""

    __tablename__ = "entitlements"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))  # the town
    child_id: Mapped[str] = mapped_column(String(32))
    benefit_code: Mapped[str] = mapped_column(String(40))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # What stopped it: '' (open or ended by staff), 'register' (its categories ended), 'merge', 'age',
    # 'moved' (moved out of the district), 'transfer' (the case transferred out).
    stopped_by: Mapped[str] = mapped_column(String(20), default="", server_default="")
    # The periodic review (复核): the last one (None: counted from the start), and the due date the review
    # worker marked and told the caseworker of (None: not due yet).
    reviewed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    review_due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    __table_args__ = (Index("ix_entitlements_child", "tenant_id", "child_id"),)


class ApplicationRecord(Base):
    """An application (申报) for one benefit for one child, and its two reviews."""

    __tablename__ = "applications"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))  # the town
    child_id: Mapped[str] = mapped_column(String(32))
    benefit_code: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    documents: Mapped[str] = mapped_column(Text)  # JSON list of the checklist items provided
    reason: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(100))  # portal:<id>, referral:<id>:<code>, registry:<child>:<code>:<day>
    previous_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the rejected one re-applied for
    starts_on: Mapped[date | None] = mapped_column(Date, nullable=True)  # the requested start
    submitted_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    town_due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    district_due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    town_reviewed_by: Mapped[str] = mapped_column(String(100))
    decided_by: Mapped[str] = mapped_column(String(100))
    decided_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    rejection_reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index("ux_applications_source", "tenant_id", "source", unique=True),
        Index("ix_applications_child", "tenant_id", "child_id"),
        # ListApplications: the town's applications, the latest updated first, a page at a time.
        Index("ix_applications_updated", "tenant_id", "updated_at", "id"),
    )


class RosterRecord(Base):
    """A local child aged 0–3 from the household-registration list (no identity number: masked, with birth date)."""

    __tablename__ = "insurance_roster"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))  # the town
    person_key: Mapped[str] = mapped_column(String(40))
    identity_masked: Mapped[str] = mapped_column(String(18))
    birth_date: Mapped[date] = mapped_column(Date)
    household_division_code: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10))  # active | left (not on the latest list)
    first_seen_on: Mapped[date] = mapped_column(Date)
    last_seen_on: Mapped[date] = mapped_column(Date)
    # The registered child who is the same person (same person_key), whose register facts re-decide the entry.
    child_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    __table_args__ = (
        Index("ux_insurance_roster_person", "tenant_id", "person_key", unique=True),
        Index("ix_insurance_roster_child", "tenant_id", "child_id"),
    )


class InsuranceYearRecord(Base):
    """One person's cover in one policy year, with the premium; changes during the year are new statuses."""

    __tablename__ = "insurance_years"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))  # the town
    year: Mapped[int] = mapped_column(Integer)
    person_key: Mapped[str] = mapped_column(String(40))
    identity_masked: Mapped[str] = mapped_column(String(18))
    birth_date: Mapped[date] = mapped_column(Date)
    household_division_code: Mapped[str] = mapped_column(String(12))
    covered_from: Mapped[date] = mapped_column(Date)
    covered_until: Mapped[date] = mapped_column(Date)
    premium_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))  # enrolled | added (during the year) | removed
    changed_on: Mapped[date] = mapped_column(Date)
    __table_args__ = (Index("ux_insurance_years_person", "tenant_id", "year", "person_key", unique=True),)


class TownRecord(Base):
    """The towns with beneficiaries (no tenant data; no row-level security) for the periodic workers."""

    __tablename__ = "benefit_towns"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)


class EntitlementChangeRecord(Base):
    """Append-only: every start, change, suspension and end of an entitlement, with its date and reason."""

    __tablename__ = "entitlement_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(12))  # the town
    entitlement_id: Mapped[str] = mapped_column(String(32))
    child_id: Mapped[str] = mapped_column(String(32))
    benefit_code: Mapped[str] = mapped_column(String(40))
    change: Mapped[str] = mapped_column(String(12))  # started | changed | suspended | ended | review_due
    effective_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(300))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_entitlement_changes_child", "tenant_id", "child_id"),)


class DisbursementRunRecord(Base):
    """One district's monthly run and where each of its long steps has got to (so a crash resumes)."""

    __tablename__ = "disbursement_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))  # the district
    period: Mapped[date] = mapped_column(Date)  # the month's first day
    status: Mapped[str] = mapped_column(String(20))
    step_cursor: Mapped[str] = mapped_column(String(60))  # the last beneficiary or line a long step finished
    done: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    line_count: Mapped[int] = mapped_column(Integer)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    batches: Mapped[int] = mapped_column(Integer)  # payment files issued (1 + re-issues)
    created_by: Mapped[str] = mapped_column(String(100))
    computed_by: Mapped[str] = mapped_column(String(100))
    checked_by: Mapped[str] = mapped_column(String(100))
    approved_by: Mapped[str] = mapped_column(String(100))
    paid_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ux_disbursement_runs_period", "tenant_id", "period", unique=True),)


class DisbursementLineRecord(Base):
    """What one child is due for one benefit for one month, and why. Unique per (month, child, benefit,
    correction): a month is due once; a later correction is a new line for the difference, never an edit."""

    __tablename__ = "disbursement_lines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(12))  # the district
    run_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    town: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(String(32))
    benefit_code: Mapped[str] = mapped_column(String(40))
    fund: Mapped[str] = mapped_column(String(40))
    service_month: Mapped[date] = mapped_column(Date)
    correction: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))  # due | arrears | adjustment
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    policy_version: Mapped[int] = mapped_column(Integer)
    explanation: Mapped[str] = mapped_column(Text)
    # The payee account when computed (filled in at the check if the town recorded it later), and the line's
    # payment reference without the attempt: paying is then one INSERT ... SELECT from the lines.
    payee_account: Mapped[str] = mapped_column(String(64), default="", server_default="")
    reference: Mapped[str] = mapped_column(String(40), default="", server_default="")
    __table_args__ = (
        Index(
            "ux_disbursement_lines_due",
            "tenant_id",
            "service_month",
            "child_id",
            "benefit_code",
            "correction",
            unique=True,
        ),
        Index("ux_disbursement_lines_seq", "run_id", "seq", unique=True),
        Index("ix_disbursement_lines_child", "tenant_id", "town", "child_id", "service_month"),
    )


class PaymentInstructionRecord(Base):
    """One payment sent to the bank, with a reference unique across all runs; a re-issue is a new attempt."""

    __tablename__ = "payment_instructions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(12))  # the district
    run_id: Mapped[str] = mapped_column(String(32))
    line_id: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    batch: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(40))
    account_ref: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12))  # issued | paid | failed
    reason: Mapped[str] = mapped_column(String(200))
    __table_args__ = (
        Index("ux_payment_instructions_reference", "reference", unique=True),
        Index("ux_payment_instructions_attempt", "line_id", "attempt", unique=True),
        Index("ix_payment_instructions_run", "run_id", "batch"),
    )


class LedgerEntryRecord(Base):
    """The append-only ledger: the app role may only insert. One entry per (kind, source) so steps repeat safely."""

    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(12))  # the district
    town: Mapped[str] = mapped_column(String(12))
    fund: Mapped[str] = mapped_column(String(40))
    period: Mapped[date] = mapped_column(Date)  # the run's month
    service_month: Mapped[date] = mapped_column(Date)
    child_id: Mapped[str] = mapped_column(String(32))
    benefit_code: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))  # entitlement | payment | failure | reversal | adjustment
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(40))  # the line or instruction it records
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index("ux_ledger_entries_source", "kind", "source", unique=True),
        Index("ix_ledger_entries_balance", "tenant_id", "period", "fund"),
    )


TENANT_TABLES = (
    "insurance_enrolments",
    "policy_versions",
    "beneficiaries",
    "entitlements",
    "entitlement_changes",
    "applications",
    "insurance_roster",
    "insurance_years",
    "disbursement_runs",
    "disbursement_lines",
    "payment_instructions",
    "ledger_entries",
    "outbox",
    "inbox",
)
APPEND_ONLY_TABLES = ("ledger_entries", "entitlement_changes")

add_messaging_tables(metadata)
