"""sales channels: webhook registrations made by `backorder connect`

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import backorder.store.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_UTC = backorder.store.tables.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "channel_registrations",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=80), nullable=False),
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("provider_ref", sa.String(length=200), nullable=True),
        sa.Column("registered_at", _UTC(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("channel", "topic", name=op.f("pk_channel_registrations")),
    )


def downgrade() -> None:
    op.drop_table("channel_registrations")
