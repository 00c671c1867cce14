"""sales channels (ingress, mappings, sync state)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import backorder.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


_UTC = backorder.store.tables.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "channel_items",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("item_ref", sa.String(length=200), nullable=False),
        sa.Column("variant_ref", sa.String(length=200), nullable=True),
        sa.Column("parent_ref", sa.String(length=200), nullable=True),
        sa.Column("pushed_quantity", sa.Integer(), nullable=True),
        sa.Column("pushed_at", _UTC(timezone=True), nullable=True),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "sku", name=op.f("pk_channel_items")),
    )
    with op.batch_alter_table("channel_items", schema=None) as batch_op:
        batch_op.create_index("ix_channel_items_channel_item_ref", ["channel", "item_ref"], unique=False)
    op.create_table(
        "channel_orders",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("version", _UTC(timezone=True), nullable=True),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "external_id", name=op.f("pk_channel_orders")),
    )
    op.create_table(
        "channel_sync",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("last_reconciled_at", _UTC(timezone=True), nullable=True),
        sa.Column("watermark", _UTC(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_channel_sync")),
    )
    op.create_table(
        "stock_push_pending",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("due_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "sku", name=op.f("pk_stock_push_pending")),
    )
    with op.batch_alter_table("stock_push_pending", schema=None) as batch_op:
        batch_op.create_index("ix_stock_push_pending_due_at", ["due_at"], unique=False)
    op.create_table(
        "order_channel_views",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("units", sa.JSON(), nullable=False),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_channel_views")),
    )
    op.create_index(
        "ux_allocation_ledger_shipment",
        "allocation_ledger",
        ["order_id", "source_ref", "line_no", "location", "kind"],
        unique=True,
        sqlite_where=sa.text("source = 'shipment'"),
        postgresql_where=sa.text("source = 'shipment'"),
    )


def downgrade() -> None:
    op.drop_index("ux_allocation_ledger_shipment", table_name="allocation_ledger")
    op.drop_table("order_channel_views")
    op.drop_table("stock_push_pending")
    op.drop_table("channel_sync")
    op.drop_table("channel_orders")
    with op.batch_alter_table("channel_items", schema=None) as batch_op:
        batch_op.drop_index("ix_channel_items_channel_item_ref")
    op.drop_table("channel_items")
