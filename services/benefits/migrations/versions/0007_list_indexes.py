"""list indexes: ListApplications and ListInsuranceEnrolments page by keyset on (updated_at, id) and
(decided_at, id) within a town (issue 16)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index("ix_applications_updated", ["tenant_id", "updated_at", "id"], unique=False)
    with op.batch_alter_table("insurance_enrolments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_insurance_enrolments_decided", ["tenant_id", "status", "decided_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("insurance_enrolments", schema=None) as batch_op:
        batch_op.drop_index("ix_insurance_enrolments_decided")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index("ix_applications_updated")
