"""The registry's tables. Every tenant table carries tenant_id and is under row-level security on PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from platform_runtime.db import add_messaging_tables

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class TenantRecord(Base):
    """The tenant directory: platform-wide, not tenant data (no RLS)."""

    __tablename__ = "tenants"
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    district_code: Mapped[str] = mapped_column(String(6), index=True)
    onboarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VillageRecord(Base):
    """A village or community (村/社区) of the town, as the town records them (SetVillages)."""

    __tablename__ = "villages"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChildRecord(Base):
    __tablename__ = "children"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12), index=True)
    legal_name: Mapped[str] = mapped_column(String(100))
    other_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    # The number itself only encrypted; found through the keyed blind index; shown masked.
    identity_number_cipher: Mapped[str | None] = mapped_column(Text, nullable=True)
    identity_number_index: Mapped[str | None] = mapped_column(String(64), nullable=True)
    identity_number_masked: Mapped[str] = mapped_column(String(18), default="")
    ethnicity_code: Mapped[str] = mapped_column(String(2), default="")
    household_division_code: Mapped[str] = mapped_column(String(12), default="")
    household_address: Mapped[str] = mapped_column(String(200), default="")
    residence_division_code: Mapped[str] = mapped_column(String(12), default="")
    residence_address: Mapped[str] = mapped_column(String(200), default="")
    school: Mapped[str] = mapped_column(String(100), default="")
    grade: Mapped[str] = mapped_column(String(20), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(100))
    # Added in 0002; server defaults fill the rows registered before.
    disability_type: Mapped[str] = mapped_column(String(20), default="", server_default="")
    disability_grade: Mapped[str] = mapped_column(String(1), default="", server_default="")
    serious_illness: Mapped[str] = mapped_column(Text, default="", server_default="")
    contact_name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    contact_relationship: Mapped[str] = mapped_column(String(40), default="", server_default="")
    contact_phone: Mapped[str] = mapped_column(String(30), default="", server_default="")
    # A duplicate merged by a person: kept (the merge is reversible), hidden, and resolved to the survivor.
    merged_into: Mapped[str | None] = mapped_column(
        ForeignKey("children.id", name="fk_children_merged_into"), nullable=True, index=True
    )
    merged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Optimistic concurrency: every ORM update checks and bumps it (UPDATE ... WHERE version = :read), so a
    # change based on a stale read fails instead of overwriting; added in 0006, existing rows start at 1.
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (read once, by the mapper)
    __table_args__ = (Index("ix_children_identity", "tenant_id", "identity_number_index", unique=True),)


class ChildMatchKey(Base):
    """Blocking keys (pinyin, initials, birth year...) so matching reads a few candidates, not the register."""

    __tablename__ = "child_match_keys"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    match_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id", ondelete="CASCADE"), primary_key=True)


class CaseFileRecord(Base):
    __tablename__ = "case_files"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12), index=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    responsible_person: Mapped[str] = mapped_column(String(100), default="")
    social_worker: Mapped[str] = mapped_column(String(100), default="")
    child_director: Mapped[str] = mapped_column(String(100), default="")
    # Added in 0008: the portal users named above (gateway account ids).
    responsible_user_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    social_worker_user_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    child_director_user_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Added in 0002.
    status_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    risk_level: Mapped[str] = mapped_column(String(10), default="", server_default="")
    # Kept up to date by the service layer so the overdue check is one indexed query.
    next_visit_due: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    # The due date an overdue event was raised for: each overdue visit is raised once.
    overdue_raised_for: Mapped[date | None] = mapped_column(Date, nullable=True)
    # Optimistic concurrency: every ORM update checks and bumps it (UPDATE ... WHERE version = :read), so a
    # change based on a stale read fails instead of overwriting; added in 0006, existing rows start at 1.
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (read once, by the mapper)


class TimelineRecord(Base):
    """Everything that happened to a child, across services."""

    __tablename__ = "timeline_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(Text)
    source_service: Mapped[str] = mapped_column(String(20))
    reference_id: Mapped[str] = mapped_column(String(64), default="")
    __table_args__ = (
        Index("ix_timeline_child", "tenant_id", "child_id", "at"),
        Index("ux_timeline_reference", "tenant_id", "child_id", "kind", "reference_id", unique=True),
    )


class AuditRecord(Base):
    """Who read or changed what, when and why. Append-only: the app role may not update or delete."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_audit_subject", "tenant_id", "subject_type", "subject_id"),)


class FamilyMemberRecord(Base):
    """A parent, guardian or other member of the child's family, with their situation (status)."""

    __tablename__ = "family_members"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id"))
    name: Mapped[str] = mapped_column(String(100))
    relationship: Mapped[str] = mapped_column(String(40))
    guardian: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(40))
    status_since: Mapped[date | None] = mapped_column(Date, nullable=True)
    status_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    evidence: Mapped[str] = mapped_column(Text)
    evidence_document: Mapped[str] = mapped_column(String(200))
    disability_type: Mapped[str] = mapped_column(String(20))
    disability_grade: Mapped[str] = mapped_column(String(1))
    seriously_ill: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_family_members_child", "tenant_id", "child_id"),)


class CategoryRecord(Base):
    """One difficulty category of a child over a period: typed in by staff, or derived by a rule."""

    __tablename__ = "child_categories"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id"))
    category: Mapped[str] = mapped_column(String(60))
    source: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[str] = mapped_column(Text)
    evidence_document: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)  # last day, inclusive
    rule_code: Mapped[str] = mapped_column(String(40))  # derived ones only
    reason: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_child_categories_child", "tenant_id", "child_id"),)


class AssessmentRecord(Base):
    """A guardianship and needs assessment (监护情况与需求评估): six scored domains and the risk level."""

    __tablename__ = "assessments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id"))
    kind: Mapped[str] = mapped_column(String(20))
    assessed_on: Mapped[date] = mapped_column(Date)
    assessor: Mapped[str] = mapped_column(String(100))
    domains: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    risk_level: Mapped[str] = mapped_column(String(10))
    risk_reasons: Mapped[list[str]] = mapped_column(JSON)
    summary: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_assessments_child", "tenant_id", "child_id", "assessed_on"),)


class PlanGoalRecord(Base):
    """A goal of the child's assistance plan (帮扶计划)."""

    __tablename__ = "plan_goals"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id"))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_plan_goals_child", "tenant_id", "child_id"),)


class PlanActionRecord(Base):
    """An action towards a goal, owned by a person or an agency; may follow a referral."""

    __tablename__ = "plan_actions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id"))
    goal_id: Mapped[str] = mapped_column(ForeignKey("plan_goals.id"))
    description: Mapped[str] = mapped_column(Text)
    owner_kind: Mapped[str] = mapped_column(String(10))
    owner: Mapped[str] = mapped_column(String(100))
    due_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    referral_id: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index("ix_plan_actions_child", "tenant_id", "child_id"),
        Index("ix_plan_actions_referral", "tenant_id", "referral_id"),
    )


class ReferralProgressRecord(Base):
    """How far a referral has come, as the referral service told (ReferralAccepted / ReferralCompleted). Kept
    because a plan action may name the referral only after its events were consumed (ADR 0009)."""

    __tablename__ = "referral_progress"
    tenant_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    referral_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    progress: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VisitRecord(Base):
    """A follow-up visit (随访): who went, when, what they found."""

    __tablename__ = "visits"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id"))
    visited_on: Mapped[date] = mapped_column(Date)
    visitor: Mapped[str] = mapped_column(String(100))
    findings: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_visits_child", "tenant_id", "child_id", "visited_on"),)


class ChangeRecord(Base):
    """Every change to a child's record: who, when, what (field: [before, after]). Append-only."""

    __tablename__ = "change_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[str] = mapped_column(ForeignKey("children.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(30))
    entity_type: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(30))
    changes: Mapped[dict[str, list[object]]] = mapped_column(JSON)
    __table_args__ = (
        Index("ix_change_history_child", "tenant_id", "child_id", "id"),
        # The town's latest change, read by every GetRegisterStatistics (service_layer/statistics.py).
        Index("ix_change_history_latest", "tenant_id", "id"),
    )


TENANT_TABLES = (
    "children",
    "child_match_keys",
    "case_files",
    "timeline_entries",
    "audit_log",
    "outbox",
    "inbox",
    "family_members",
    "child_categories",
    "assessments",
    "plan_goals",
    "plan_actions",
    "referral_progress",
    "visits",
    "change_history",
    "villages",
)
APPEND_ONLY_TABLES = ("audit_log", "change_history")

add_messaging_tables(metadata)
import services.registry.adapters.survey_orm  # noqa: E402, F401  (the survey tables join this metadata)
