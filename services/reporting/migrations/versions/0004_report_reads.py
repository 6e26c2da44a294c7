"""report reads: every read of a report's narrative or reporter, with its purpose

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 05:40:00
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
    op.create_table(
        "report_reads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=12), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=30), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("saw_reporter", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("report_reads", schema=None) as batch_op:
        batch_op.create_index("ix_report_reads_report", ["tenant_id", "report_id"], unique=False)
    enable_tenant_rls("report_reads")


def downgrade() -> None:
    with op.batch_alter_table("report_reads", schema=None) as batch_op:
        batch_op.drop_index("ix_report_reads_report")
    op.drop_table("report_reads")
