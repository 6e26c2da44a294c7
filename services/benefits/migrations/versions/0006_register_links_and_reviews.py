"""register links and reviews: the person key of a registered child and the roster entry's child, the
entitlement's last review and the review due date it was marked (and its caseworker told) for

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 13:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person_key", sa.String(length=40), nullable=True))
        batch_op.create_index("ix_beneficiaries_person", ["tenant_id", "person_key"], unique=False)
    with op.batch_alter_table("insurance_roster", schema=None) as batch_op:
        batch_op.add_column(sa.Column("child_id", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_insurance_roster_child", ["tenant_id", "child_id"], unique=False)
    with op.batch_alter_table("entitlements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reviewed_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("review_due_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entitlements", schema=None) as batch_op:
        batch_op.drop_column("review_due_on")
        batch_op.drop_column("reviewed_on")
    with op.batch_alter_table("insurance_roster", schema=None) as batch_op:
        batch_op.drop_index("ix_insurance_roster_child")
        batch_op.drop_column("child_id")
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_index("ix_beneficiaries_person")
        batch_op.drop_column("person_key")
