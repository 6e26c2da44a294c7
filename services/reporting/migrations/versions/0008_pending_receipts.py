"""pending receipts: receipt numbers to hand to notify for reporters who asked for them (issue 12)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No row-level security: the sending worker reads every town's due receipts; what is personal is encrypted.
    op.create_table(
        "pending_receipts",
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("address_cipher", sa.Text(), nullable=False),
        sa.Column("receipt_cipher", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("report_id"),
    )
    op.create_index("ix_pending_receipts_due", "pending_receipts", ["due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pending_receipts_due", table_name="pending_receipts")
    op.drop_table("pending_receipts")
