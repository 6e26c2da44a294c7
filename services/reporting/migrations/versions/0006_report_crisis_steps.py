"""report crisis steps: notify's escalation steps and acknowledgements, for the report's timeline

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from platform_runtime.migrations import enable_tenant_rls

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_crisis_steps",
        sa.Column("tenant_id", sa.String(length=12), nullable=False),
        sa.Column("crisis_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=40), nullable=False),
        sa.Column("people", sa.JSON(), nullable=False),
        sa.Column("via", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("crisis_id", "kind", "step"),
    )
    op.create_index("ix_report_crisis_steps_report", "report_crisis_steps", ["tenant_id", "report_id"], unique=False)
    enable_tenant_rls("report_crisis_steps")


def downgrade() -> None:
    op.drop_index("ix_report_crisis_steps_report", table_name="report_crisis_steps")
    op.drop_table("report_crisis_steps")
