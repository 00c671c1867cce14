"""What the customer was told of a line may be "reserved for you" (``eta_notices.reserved``), so a
reservation taken back is told to them at once instead of being judged an unchanged ETA.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("eta_notices", sa.Column("reserved", sa.Boolean(), nullable=False, server_default=sa.text("(false)")))


def downgrade() -> None:
    with op.batch_alter_table("eta_notices") as batch:
        batch.drop_column("reserved")
