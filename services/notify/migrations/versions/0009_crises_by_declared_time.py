"""crises by declared time: ListCrises pages by keyset on (declared_at, id) within a town (issue 16)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 15:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crises", schema=None) as batch_op:
        batch_op.create_index("ix_crises_declared", ["tenant_id", "declared_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("crises", schema=None) as batch_op:
        batch_op.drop_index("ix_crises_declared")
