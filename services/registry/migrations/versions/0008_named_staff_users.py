"""named staff users: the portal users named as a case's responsible person, social worker, child director

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 05:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("responsible_user_id", "social_worker_user_id", "child_director_user_id")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("case_files", sa.Column(name, sa.String(length=64), server_default="", nullable=False))


def downgrade() -> None:
    for name in COLUMNS:
        op.drop_column("case_files", name)
