"""the full referral lifecycle: sent, rejected, returned, in progress, cancelled, reassigned; time limits per
step with escalation; the history of each referral; agencies' idempotency keys

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 05:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from platform_runtime.migrations import enable_tenant_rls

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("deadline_from", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalated_step", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("accept_within_seconds", sa.Integer(), server_default="432000", nullable=False))
        batch_op.add_column(
            sa.Column("complete_within_seconds", sa.Integer(), server_default="2592000", nullable=False)
        )
        batch_op.add_column(sa.Column("reroute_to", sa.String(length=40), server_default="", nullable=False))
        batch_op.add_column(sa.Column("last_note", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_referrals_due", ["tenant_id", "status", "due_at"], unique=False)
        batch_op.create_index("ix_referrals_agency", ["agency_code", "tenant_id", "status"], unique=False)
    op.create_table(
        "referral_towns",
        sa.Column("tenant_id", sa.String(length=12), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id"),
    )
    # The referrals opened before: their clock started when they were opened, and their towns are known to the
    # escalation worker. The owner runs this and RLS is forced on it too: lifted for these two statements, inside
    # the migration's transaction.
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE referrals NO FORCE ROW LEVEL SECURITY")
    op.execute("UPDATE referrals SET deadline_from = opened_at WHERE deadline_from IS NULL")
    op.execute("INSERT INTO referral_towns (tenant_id) SELECT DISTINCT tenant_id FROM referrals")
    if postgres:
        op.execute("ALTER TABLE referrals FORCE ROW LEVEL SECURITY")

    op.create_table(
        "referral_entries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=12), nullable=False),
        sa.Column("referral_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=100), nullable=False),
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("referral_entries", schema=None) as batch_op:
        batch_op.create_index("ix_referral_entries_referral", ["tenant_id", "referral_id", "at"], unique=False)
    op.create_table(
        "agency_commands",
        sa.Column("tenant_id", sa.String(length=12), nullable=False),
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("referral_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "agency_code", "idempotency_key"),
    )
    for table in ("referral_entries", "agency_commands"):
        enable_tenant_rls(table)


def downgrade() -> None:
    op.drop_table("referral_towns")
    op.drop_table("agency_commands")
    with op.batch_alter_table("referral_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_entries_referral")
    op.drop_table("referral_entries")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_agency")
        batch_op.drop_index("ix_referrals_due")
        for column in (
            "updated_at",
            "last_note",
            "reroute_to",
            "complete_within_seconds",
            "accept_within_seconds",
            "escalated_at",
            "escalated_step",
            "deadline_from",
            "sent_at",
        ):
            batch_op.drop_column(column)
