"""The schema, as SQLAlchemy Core tables. Alembic migrations under ``migrations/`` create it;
keep both in step (``tests/integration/test_migrations.py`` compares them)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite only autoincrements INTEGER PRIMARY KEY


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


skus = Table(
    "skus",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("brand", String(120), nullable=False, server_default=""),
    Column("product_line", String(160), nullable=False, server_default=""),
    Column("colour", String(160), nullable=False, server_default=""),
    Column("pigments", String(200), nullable=False, server_default=""),
    Column("size", String(80), nullable=False, server_default=""),
    Column("hazmat", Boolean, nullable=False, server_default=text("false")),
    Column("safety_stock", Integer, nullable=False, server_default="0"),
    Column("reorder_point", Integer, nullable=False, server_default="0"),
    Column("order_up_to", Integer, nullable=False, server_default="0"),
    Column("preferred_supplier", String(64), nullable=True),
    Column("unit_price", Numeric(12, 2), nullable=True),
)

suppliers = Table(
    "suppliers",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False, server_default=""),
    Column("lead_time_days", Integer, nullable=False, server_default="14"),
)

supplier_items = Table(
    "supplier_items",
    metadata,
    Column("supplier", String(64), ForeignKey("suppliers.code"), primary_key=True),
    Column("sku", String(64), ForeignKey("skus.code"), primary_key=True),
    Column("supplier_sku", String(120), nullable=False, server_default=""),
    Column("unit_cost", Numeric(14, 4), nullable=False, server_default="0"),
    Column("lead_time_days", Integer, nullable=True),
    Column("moq", Integer, nullable=False, server_default="1"),
    Column("case_pack", Integer, nullable=False, server_default="1"),
)

locations = Table(
    "locations",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
)

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("sku", String(64), ForeignKey("skus.code"), primary_key=True),
    Column("location", String(64), ForeignKey("locations.code"), primary_key=True),
    Column("on_hand", BigInteger, nullable=False, server_default="0"),
    Column("allocated", BigInteger, nullable=False, server_default="0"),
    Column("observed_at", UtcDateTime(), nullable=True),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("channel", String(64), nullable=False),
    Column("placed_at", UtcDateTime(), nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("ship_complete", Boolean, nullable=False, server_default=text("false")),
    Column("customer_email", String(320), nullable=True),
    Column("customer_phone", String(40), nullable=True),
    Column("customer_name", String(200), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(128), ForeignKey("orders.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(64), ForeignKey("skus.code"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("allocated", Integer, nullable=False, server_default="0"),
    Column("shipped", Integer, nullable=False, server_default="0"),
    Column("backordered", Integer, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("eta", Date, nullable=True),
    # The order's ranking keys, copied so a SKU's queue is read without a join.
    Column("channel", String(64), nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("placed_at", UtcDateTime(), nullable=False),
    Column("ship_complete", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("order_id", "line_no"),
    Index("ix_order_lines_sku_status", "sku", "status"),
)

# The ranking of every SKU's waiting lines, covering what a full run reads: a full run walks
# this index in order and never sorts or touches the table.
Index(
    "ix_order_lines_waiting_rank",
    order_lines.c.sku,
    order_lines.c.priority.desc(),
    order_lines.c.placed_at,
    order_lines.c.order_id,
    order_lines.c.line_no,
    order_lines.c.id,
    order_lines.c.backordered,
    order_lines.c.ship_complete,
    order_lines.c.channel,
    sqlite_where=text("status = 'open' AND backordered > 0"),
    postgresql_where=text("status = 'open' AND backordered > 0"),
)

line_holdings = Table(
    "line_holdings",
    metadata,
    Column("line_id", Id, ForeignKey("order_lines.id"), primary_key=True),
    Column("location", String(64), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Index("ix_line_holdings_sku_location", "sku", "location"),
)

allocation_ledger = Table(
    "allocation_ledger",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(128), nullable=False, index=True),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("location", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("source", String(32), nullable=False),
    Column("source_ref", String(200), nullable=True),
    Column("at", UtcDateTime(), nullable=False),
)

receipts = Table(
    "receipts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sku", String(64), ForeignKey("skus.code"), nullable=False),
    Column("location", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("po_number", String(64), nullable=True),
)

purchase_orders = Table(
    "purchase_orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("number", String(64), nullable=False, unique=True),
    Column("supplier", String(64), ForeignKey("suppliers.code"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Index("ix_purchase_orders_supplier_status", "supplier", "status"),
)

po_lines = Table(
    "po_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("po_id", Id, ForeignKey("purchase_orders.id"), nullable=False, index=True),
    Column("sku", String(64), ForeignKey("skus.code"), nullable=False, index=True),
    Column("quantity", Integer, nullable=False),
    Column("received", Integer, nullable=False, server_default="0"),
    Column("unit_cost", Numeric(14, 4), nullable=False),
    Column("expected_on", Date, nullable=True),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("action", String(40), nullable=False),
    Column("target", String(80), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("dedupe_key", String(200), nullable=True),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("lease_until", UtcDateTime(), nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("parent_id", Id, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("provider_ref", String(200), nullable=True),
    Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("outbox_id", Id, ForeignKey("outbox.id"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("connector", String(80), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=False),
    Column("outcome", String(16), nullable=False),  # sent | retry | dead | skipped
    Column("status_code", Integer, nullable=True),
    Column("detail", Text, nullable=True),
)

inbox = Table(
    "inbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("platform", String(40), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("event_key", String(200), nullable=False),
    Column("topic", String(80), nullable=False, server_default=""),
    Column("headers", JSON, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False, server_default="received"),
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("processed_at", UtcDateTime(), nullable=True),
    UniqueConstraint("platform", "channel", "event_key"),
    Index("ix_inbox_status", "status"),
)

sandbox_messages = Table(
    "sandbox_messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("outbox_id", Id, nullable=True, index=True),
    Column("kind", String(32), nullable=False),
    Column("template", String(64), nullable=False, server_default=""),
    Column("recipient", String(320), nullable=False),
    Column("subject", String(500), nullable=False, server_default=""),
    Column("body", Text, nullable=False),
    Column("html", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

# --- sales channels: inbox processing, channel mappings, sync state (issue 3) -----------------
# (tables for channel ingress and stock sync go here; migration 0002_channels creates them)

# --- customer and staff messaging: consent, suppressions, delivery status (issue 4) ----------
# (tables for notifications go here; migration 0003_messaging creates them)

# --- staff users, sessions, API keys, audit log, self-service (issue 5) ------------------------
# (tables for the dashboard and API go here; migration 0004_staff creates them)
