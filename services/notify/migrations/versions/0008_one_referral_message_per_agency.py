"""one referral message per agency: towns drop the copied default that told agencies of opened referrals

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 13:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ReferralSent tells the agency when it can act; the district's old default also told it of ReferralOpened,
    # copied into every town at onboarding (a double message). The owner passes row-level security for this one
    # statement only, to reach every town's rows.
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE subscriptions NO FORCE ROW LEVEL SECURITY")
    op.execute("DELETE FROM subscriptions WHERE event_type = 'referral_opened' AND recipient = 'agency'")
    if postgres:
        op.execute("ALTER TABLE subscriptions FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    pass  # the double message is not brought back
