"""change history latest: an index on (tenant_id, id), so a town's latest change is one index lookup

GetRegisterStatistics reads `max(id) WHERE tenant_id = :town` on every call to know whether the numbers
it counted before still hold (service_layer/statistics.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 21:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("change_history", schema=None) as batch_op:
        batch_op.create_index("ix_change_history_latest", ["tenant_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("change_history", schema=None) as batch_op:
        batch_op.drop_index("ix_change_history_latest")
