"""visit reminders: one per child and due date

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 18:00:20.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from platform_runtime.migrations import enable_tenant_rls

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visit_reminders",
        sa.Column("tenant_id", sa.String(length=12), nullable=False),
        sa.Column("child_id", sa.String(length=64), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "child_id", "due_on"),
    )
    enable_tenant_rls("visit_reminders")


def downgrade() -> None:
    op.drop_table("visit_reminders")
