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
    Index("ix_supplier_items_sku", "sku"),  # lookups by SKU; the key leads with supplier
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
    Column("reference", String(64), nullable=True),  # the order number the customer knows, if not the id
    Index("ix_orders_reference", "reference"),  # staff look orders up by the customer's number
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

channel_items = Table(
    "channel_items",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("item_ref", String(200), nullable=False),  # Shopify inventory item id; Woo product/variation id
    Column("variant_ref", String(200), nullable=True),  # Shopify variant id
    Column("parent_ref", String(200), nullable=True),  # Woo parent product of a variation
    Column("pushed_quantity", Integer, nullable=True),  # last sellable quantity we pushed
    Column("pushed_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_channel_items_channel_item_ref", "channel", "item_ref"),
)

channel_orders = Table(
    "channel_orders",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("external_id", String(200), primary_key=True),
    Column("order_id", String(128), nullable=False),
    Column("version", UtcDateTime(), nullable=True),  # the source's updated_at last applied
    Column("updated_at", UtcDateTime(), nullable=False),
)

channel_sync = Table(
    "channel_sync",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("last_reconciled_at", UtcDateTime(), nullable=True),
    Column("watermark", UtcDateTime(), nullable=True),  # newest source updated_at seen by reconciliation
    Column("last_error", Text, nullable=True),
)

stock_push_pending = Table(
    "stock_push_pending",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("due_at", UtcDateTime(), nullable=False),
    Index("ix_stock_push_pending_due_at", "due_at"),
)

order_channel_views = Table(
    "order_channel_views",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("units", JSON, nullable=False),  # {sku: units} as the channel last showed the order
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""The channel's view of each order we last applied: an order edit is the difference to it."""

# A shipment the channel identified (ShipSku.shipment_ref) is recorded once per order, line,
# location and kind: a replayed webhook cannot ship it twice (the handler checks first, under the
# order's SKU locks; this index is the backstop).
Index(
    "ux_allocation_ledger_shipment",
    allocation_ledger.c.order_id,
    allocation_ledger.c.source_ref,
    allocation_ledger.c.line_no,
    allocation_ledger.c.location,
    allocation_ledger.c.kind,
    unique=True,
    sqlite_where=text("source = 'shipment'"),
    postgresql_where=text("source = 'shipment'"),
)

channel_registrations = Table(
    "channel_registrations",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("topic", String(80), primary_key=True),
    Column("platform", String(40), nullable=False),
    Column("address", String(500), nullable=False),  # the webhook URL registered
    Column("provider_ref", String(200), nullable=True),  # the platform's id of the subscription
    Column("registered_at", UtcDateTime(), nullable=False),  # when `backorder connect` last tried
    Column("error", Text, nullable=True),  # why the platform refused it (None: registered)
)
"""What `backorder connect` registered on each platform (migration 0005_channel_registrations)."""

# --- customer and staff messaging: consent, suppressions, delivery status (issue 4) ----------
# (tables for notifications go here; migration 0003_messaging creates them)

message_settings = Table(
    "message_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
"""Messaging state that must survive restarts (e.g. the generated link-signing key)."""

message_preferences = Table(
    "message_preferences",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("channel", String(8), nullable=False),  # email | sms | both | none
    Column("sms_consent", Boolean, nullable=False, server_default=text("false")),
    Column("source", String(64), nullable=False, server_default=""),
    Column("updated_at", UtcDateTime(), nullable=False),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("address", String(320), primary_key=True),  # lower-cased email or E.164 phone
    Column("kind", String(8), nullable=False),  # email | sms
    Column("reason", String(32), nullable=False),  # stop | bounce | complaint | unsubscribe
    Column("source", String(64), nullable=False, server_default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("confirmed_at", UtcDateTime(), nullable=True),
)

message_status = Table(
    "message_status",
    metadata,
    Column("message_id", String(40), primary_key=True),  # bo-<outbox id>
    Column("outbox_id", Id, nullable=True),
    Column("channel", String(8), nullable=False),
    Column("provider", String(40), nullable=False),
    Column("provider_ref", String(200), nullable=True, index=True),
    Column("status", String(16), nullable=False),  # sent | delivered | bounced | failed | undelivered | complained
    Column("detail", Text, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

eta_notices = Table(
    "eta_notices",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("eta", Date, nullable=True),
    Column("notified_at", UtcDateTime(), nullable=False),
    Column("reserved", Boolean, nullable=False, server_default=text("false")),  # told "reserved for you"
)
"""The ETA each customer was last told, per order line (ETA-change debounce), or that its units
are reserved for them."""

eta_slots = Table(
    "eta_slots",
    metadata,
    Column("order_id", String(128), primary_key=True),
    Column("outbox_id", Id, nullable=False),
    Column("claimed_at", UtcDateTime(), nullable=False),
)
"""Per order, the ETA-change message that holds the current interval: claimed with a conditional
UPDATE (or the primary key on INSERT), so two concurrent ETA messages cannot both go out."""

# --- staff users, sessions, API keys, audit log, self-service (issue 5) ------------------------
# (tables for the dashboard and API go here; migration 0004_staff creates them)

staff_users = Table(
    "staff_users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(80), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),  # viewer | operator | admin
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_login_at", UtcDateTime(), nullable=True),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 of the cookie value
    Column("user_id", Id, ForeignKey("staff_users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(200), primary_key=True),  # "user:<name>" or "ip:<address>"
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("window_start", UtcDateTime(), nullable=False),
    Column("locked_until", UtcDateTime(), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),  # sha256 of the whole (high-entropy) key
    Column("name", String(120), nullable=False),
    Column("scopes", String(40), nullable=False),  # "read" or "read write"
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("revoked_at", UtcDateTime(), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False, index=True),
    Column("actor", String(200), nullable=False),  # user:<name> | apikey:<prefix> | customer:<order id>
    Column("action", String(80), nullable=False),
    Column("target", String(200), nullable=False, server_default=""),
    Column("detail", JSON, nullable=False),
    Column("outcome", String(16), nullable=False, server_default="ok"),
    Index("ix_audit_log_target", "target"),  # an order's or PO's trail, a customer's last choice
)

app_secrets = Table(
    "app_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
