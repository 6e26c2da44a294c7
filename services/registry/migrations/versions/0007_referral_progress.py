"""referral progress: kept for plan actions that name a referral after its events arrived

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from platform_runtime.migrations import enable_tenant_rls

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "referral_progress",
        sa.Column("tenant_id", sa.String(length=12), nullable=False),
        sa.Column("referral_id", sa.String(length=64), nullable=False),
        sa.Column("progress", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "referral_id"),
    )
    enable_tenant_rls("referral_progress")


def downgrade() -> None:
    op.drop_table("referral_progress")
