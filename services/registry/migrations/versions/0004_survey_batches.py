"""survey imports: dry runs kept, status, one running import per file (running_file), progress time,
rows by child

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 18:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("survey_imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dry_run", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("status", sa.String(length=20), server_default="finished", nullable=False))
        batch_op.add_column(sa.Column("running_file", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_survey_imports_started", ["tenant_id", "started_at"], unique=False)
        batch_op.create_index("ux_survey_imports_running", ["tenant_id", "running_file"], unique=True)
    with op.batch_alter_table("survey_import_rows", schema=None) as batch_op:
        batch_op.create_index("ix_survey_import_rows_child", ["tenant_id", "child_id"], unique=False)
    # Imports recorded before were real ones; those without an end stopped before it.
    op.execute("UPDATE survey_imports SET status = 'stopped' WHERE finished_at IS NULL")


def downgrade() -> None:
    op.execute("DELETE FROM survey_import_rows WHERE import_id IN (SELECT id FROM survey_imports WHERE dry_run)")
    op.execute("DELETE FROM survey_imports WHERE dry_run")
    with op.batch_alter_table("survey_import_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_import_rows_child")
    with op.batch_alter_table("survey_imports", schema=None) as batch_op:
        batch_op.drop_index("ux_survey_imports_running")
        batch_op.drop_index("ix_survey_imports_started")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("running_file")
        batch_op.drop_column("status")
        batch_op.drop_column("dry_run")
