"""the agencies' own systems: their credentials, and the change feed their streams read

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from platform_runtime.migrations import enable_tenant_rls

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agency_credentials",
        sa.Column("tenant_id", sa.String(length=12), nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    )
    op.create_table(
        "referral_feed",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=12), nullable=False),
        sa.Column("agency_code", sa.String(length=40), nullable=False),
        sa.Column("referral_id", sa.String(length=32), nullable=False),
        sa.Column("gone", sa.Boolean(), nullable=False),
        sa.Column("snapshot", sa.LargeBinary(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("referral_feed", schema=None) as batch_op:
        batch_op.create_index("ix_referral_feed_agency", ["agency_code", "seq"], unique=False)
    for table in ("agency_credentials", "referral_feed"):
        enable_tenant_rls(table)


def downgrade() -> None:
    with op.batch_alter_table("referral_feed", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_feed_agency")
    op.drop_table("referral_feed")
    op.drop_table("agency_credentials")
