"""report reads in order: ListReportReads pages by keyset on (at, id) within a report, so the report's index
carries both (issue 16)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 15:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_report_reads_report", table_name="report_reads")
    op.create_index("ix_report_reads_report", "report_reads", ["tenant_id", "report_id", "at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_report_reads_report", table_name="report_reads")
    op.create_index("ix_report_reads_report", "report_reads", ["tenant_id", "report_id"], unique=False)
