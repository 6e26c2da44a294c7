"""a village child director's villages: the 12-digit codes whose children the registry shows them

Revision ID: 0004_villages
Revises: 0003_second_factor
Create Date: 2026-12-04 14:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_villages"
down_revision: str | None = "0003_second_factor"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing child directors get none: they see no child until the town administrator assigns their village.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("villages", sa.String(length=400), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("villages")
