"""customer and staff messaging (consent, suppressions, delivery status)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import backorder.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UTC = backorder.store.tables.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "message_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_message_settings")),
    )
    op.create_table(
        "message_preferences",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("sms_consent", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("source", sa.String(length=64), server_default="", nullable=False),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_message_preferences")),
    )
    op.create_table(
        "suppressions",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), server_default="", nullable=False),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.Column("confirmed_at", _UTC(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_suppressions")),
    )
    op.create_table(
        "message_status",
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("outbox_id", _ID, nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("provider_ref", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_status")),
    )
    with op.batch_alter_table("message_status", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_status_provider_ref"), ["provider_ref"], unique=False)
    op.create_table(
        "eta_notices",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("eta", sa.Date(), nullable=True),
        sa.Column("notified_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "line_no", name=op.f("pk_eta_notices")),
    )
    op.create_table(
        "eta_slots",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("outbox_id", _ID, nullable=False),
        sa.Column("claimed_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_eta_slots")),
    )


def downgrade() -> None:
    op.drop_table("eta_slots")
    op.drop_table("eta_notices")
    with op.batch_alter_table("message_status", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_status_provider_ref"))
    op.drop_table("message_status")
    op.drop_table("suppressions")
    op.drop_table("message_preferences")
    op.drop_table("message_settings")
