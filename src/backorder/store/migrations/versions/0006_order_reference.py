"""The order number the customer knows (``orders.reference``): Shopify's ``#1001``, WooCommerce's
``number``, Magento's increment id, SFCC's order number, the sender's id for the orders API.
Customer messages name the order by it; orders stored before it keep NULL and are named by id.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("reference", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("reference")
