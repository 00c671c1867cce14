"""Canonical commands: what every entry point (CSV import, webhook, API, CLI) turns its input
into before calling the message bus."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class Command:
    pass


@dataclass(frozen=True)
class NewLine:
    line_no: int
    sku: str
    quantity: int


@dataclass(frozen=True)
class PlaceOrder(Command):
    order_id: str
    channel: str
    placed_at: datetime
    lines: tuple[NewLine, ...]
    priority: int = 0
    ship_complete: bool = False
    customer_email: str | None = None
    customer_phone: str | None = None
    customer_name: str | None = None
    reference: str | None = None  # the order number the customer knows, when it is not the id


@dataclass(frozen=True)
class CancelOrder(Command):
    """Cancel the unshipped part of an order, or only of ``line_nos`` when given."""

    order_id: str
    line_nos: tuple[int, ...] = ()
    reason: str = "cancelled"


@dataclass(frozen=True)
class ShipLine(Command):
    """A line's units left. A channel's fulfilment is a fact (``take_reserved``: units beyond what
    the line holds and what is free come off other orders' reservations, which go back to waiting);
    staff recording a shipment by hand are refused instead (``take_reserved=False``)."""

    order_id: str
    line_no: int
    quantity: int
    location: str | None = None
    take_reserved: bool = True


@dataclass(frozen=True)
class ReceiveStock(Command):
    sku: str
    location: str
    quantity: int
    received_at: datetime
    po_number: str | None = None


@dataclass(frozen=True)
class AdjustStock(Command):
    """Change on hand by ``delta`` (a count correction, damage, a return)."""

    sku: str
    location: str
    delta: int
    reason: str = "adjustment"


@dataclass(frozen=True)
class SetStockLevel(Command):
    """The absolute on-hand at a location. A channel's report carries ``observed_at`` by the
    channel's own clock, and one older than the last applied changes nothing; a stock count
    (import, staff) has ``observed_at=None`` and always applies."""

    sku: str
    location: str
    on_hand: int
    observed_at: datetime | None = None
    source: str = "count"


@dataclass(frozen=True)
class UpsertSupplier(Command):
    code: str
    name: str
    email: str = ""
    lead_time_days: int = 14


@dataclass(frozen=True)
class UpsertSku(Command):
    """A catalog entry and, when ``supplier`` is set, its supplier item."""

    code: str
    name: str
    brand: str = ""
    product_line: str = ""
    colour: str = ""
    pigments: tuple[str, ...] = ()
    size: str = ""
    hazmat: bool = False
    safety_stock: int = 0
    reorder_point: int = 0
    order_up_to: int = 0
    unit_price: Decimal | None = None
    supplier: str | None = None
    supplier_sku: str = ""
    unit_cost: Decimal = Decimal("0")
    lead_time_days: int | None = None
    moq: int = 1
    case_pack: int = 1


@dataclass(frozen=True)
class RunBackorderProcessing(Command):
    skus: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecomputeEtas(Command):
    skus: tuple[str, ...] = ()


@dataclass(frozen=True)
class SendDuePurchaseOrders(Command):
    """Send drafts whose consolidation window has passed (when auto-send is on)."""

    force: bool = False


@dataclass(frozen=True)
class SendPurchaseOrder(Command):
    po_number: str


@dataclass(frozen=True)
class AcknowledgePurchaseOrder(Command):
    """The supplier confirmed the PO, optionally with its own delivery date (an ERP's or a
    supplier portal's acknowledgement); ETAs follow the confirmed date."""

    po_number: str
    expected_on: date | None = None


@dataclass(frozen=True)
class CloseShortPurchaseOrder(Command):
    """The supplier will not deliver the rest: close the PO at what was received, so the
    shortfall counts as not on order and is proposed again."""

    po_number: str


@dataclass(frozen=True)
class ChangePriority(Command):
    order_id: str
    priority: int


@dataclass(frozen=True)
class ImportBatch(Command):
    """Many commands applied in one transaction: all or nothing."""

    commands: tuple[Command, ...] = field(default=())


# --- issue 3 (channels) ---------------------------------------------------------------------


@dataclass(frozen=True)
class ShipSku(Command):
    """A channel shipped ``quantity`` of ``sku`` on an order (it names SKUs, not our line
    numbers): ship from the order's open lines of that SKU, lowest line number first."""

    order_id: str
    sku: str
    quantity: int
    location: str | None = None
    shipment_ref: str | None = None
    """The platform's identity of this shipment (e.g. ``shopify:fulfillment:<id>:<line item id>``):
    recorded in the allocation ledger, and a shipment already recorded under it for the order
    changes nothing (a replayed webhook, or an inbox row processed again after a crash)."""


@dataclass(frozen=True)
class RedactCustomer(Command):
    """A privacy request: remove the customer's personal data (email, phone, name) from the
    channel's orders with that email or named in ``order_ids``. ``email=None`` with no ids
    redacts every order of the channel (Shopify ``shop/redact``)."""

    channel: str
    email: str | None = None
    order_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReduceLine(Command):
    """Lower line ``line_no`` to ``new_quantity`` units (the customer edited the order). The cut
    comes off the backordered units first, then off the allocated ones, which go back to the
    queue; a line lowered to what has shipped (or to 0) has its rest cancelled."""

    order_id: str
    line_no: int
    new_quantity: int
    reason: str = "quantity reduced"


@dataclass(frozen=True)
class ChannelOrder(Command):
    """A channel's current view of an order (``orders/create|updated``, ``order.created|updated``,
    reconciliation). New to us: placed as ``order`` says. Already held: only what the channel
    changed since the view we last applied is applied — per SKU, units it removed are cut
    (``ReduceLine``, latest line first, never below what shipped) and units it added become new
    lines, allocated by the contract at the order's rank. The view is kept with the effect, in the
    same transaction, so applying the same view again (a replay, a crash before the inbox row was
    marked) changes nothing, and our own changes (a substitution, a cancelled line) stand."""

    order: PlaceOrder
    reason: str = "changed on the channel"


# --- issue 5 (staff dashboard, self-service) ------------------------------------------------


@dataclass(frozen=True)
class EditDraftPurchaseOrderLine(Command):
    """Set the quantity of ``sku`` on a draft purchase order; 0 removes the line's units (the
    line stays at 0 and is ignored by supply). Only drafts can be edited."""

    po_number: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class ShipAvailableNow(Command):
    """The customer asked for what is in stock now to ship ahead of the rest: staff are asked to
    pack the allocated, unshipped units of the order's open lines (the shipment itself is recorded
    when it leaves); the rest stays backordered. Refused for ship-complete orders."""

    order_id: str


@dataclass(frozen=True)
class SubstituteLine(Command):
    """Replace the unshipped part of line ``line_no`` by ``substitute_sku``: the line is
    cancelled (its allocation released to the queue) and a new line of the substitute, for the
    same unshipped units, is added to the order and allocated like any arrival."""

    order_id: str
    line_no: int
    substitute_sku: str
