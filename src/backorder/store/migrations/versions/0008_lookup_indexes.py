"""Indexes for two lookups added with 0006: an order by the customer's number
(``orders.reference``, the dashboard's order filter) and an object's audit trail
(``audit_log.target``: the order and PO pages, the self-service page's last choice).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_reference", "orders", ["reference"])
    op.create_index("ix_audit_log_target", "audit_log", ["target"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_index("ix_orders_reference", table_name="orders")
