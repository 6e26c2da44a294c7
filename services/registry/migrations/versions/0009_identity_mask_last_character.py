"""identity mask: stored masked identity numbers keep only their last character

The old mask (region + last four) completed to the whole number with the birth date shown beside it.
Re-masked in SQL from the old masked value itself (its last character is the number's), so no decryption
is needed. change_history is append-only and keeps its old snapshots.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 07:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One branch per length, so the statement is plain SQL on PostgreSQL and SQLite alike (no repeat()).
_BRANCHES = " ".join(
    f"WHEN {n} THEN '{'*' * (n - 1)}' || substr(identity_number_masked, {n}, 1)" for n in range(10, 19)
)
_REMASK = (  # built from integer constants only
    "UPDATE children SET identity_number_masked = CASE length(identity_number_masked) "  # noqa: S608
    + _BRANCHES
    + " ELSE identity_number_masked END WHERE identity_number_masked <> ''"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        op.execute(_REMASK)
        return
    # children has FORCED row-level security: the owner sees a town's rows only inside that town's scope.
    for (tenant,) in bind.execute(sa.text("SELECT code FROM tenants")).all():
        bind.execute(sa.text("SELECT set_config('app.tenant_id', :tenant, true)"), {"tenant": tenant})
        bind.execute(sa.text(_REMASK))
    bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    pass  # the hidden characters are not recoverable from the mask
