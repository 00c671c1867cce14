"""Catalog, stock, orders and purchasing as plain dataclasses.

Quantities are integers (units); money is Decimal; time is timezone-aware UTC. Nothing here
knows how it is stored: the store maps rows onto these classes from outside.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from backorder.domain.errors import InvalidQuantity, InvalidTransition


@dataclass(frozen=True)
class Sku:
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
    preferred_supplier: str | None = None
    unit_price: Decimal | None = None


@dataclass(frozen=True)
class Supplier:
    code: str
    name: str
    email: str = ""
    lead_time_days: int = 14


@dataclass(frozen=True)
class SupplierItem:
    supplier: str
    sku: str
    supplier_sku: str = ""
    unit_cost: Decimal = Decimal("0")
    lead_time_days: int | None = None
    moq: int = 1
    case_pack: int = 1


@dataclass
class StockLevel:
    """On hand and allocated for one SKU at one location. On hand may be negative (a channel
    oversold): it is recorded as reported, never clamped."""

    sku: str
    location: str
    on_hand: int = 0
    allocated: int = 0

    @property
    def available(self) -> int:
        """Units that can still be promised here (never negative)."""
        return max(self.on_hand - self.allocated, 0)


@dataclass(frozen=True)
class StockPosition:
    """One SKU summed over locations: what replenishment and ETAs reason about."""

    sku: str
    on_hand: int
    allocated: int
    incoming: int
    backordered: int

    @property
    def available(self) -> int:
        return max(self.on_hand - self.allocated, 0)

    @property
    def projected(self) -> int:
        return self.on_hand + self.incoming - self.allocated - self.backordered


class LineStatus(enum.StrEnum):
    OPEN = "open"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


@dataclass
class OrderLine:
    """One line of an order. ``allocated`` counts shipped units too, so for an open line
    ``allocated + backordered == quantity`` always holds."""

    order_id: str
    line_no: int
    sku: str
    quantity: int
    allocated: int = 0
    shipped: int = 0
    backordered: int = 0
    status: LineStatus = LineStatus.OPEN
    eta: date | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise InvalidQuantity(f"order {self.order_id} line {self.line_no}: quantity must be positive")

    @property
    def is_open(self) -> bool:
        return self.status is LineStatus.OPEN

    @property
    def unshipped_allocated(self) -> int:
        return self.allocated - self.shipped

    def take(self, quantity: int) -> None:
        if quantity < 0 or quantity > self.backordered:
            raise InvalidQuantity(f"cannot allocate {quantity} to a line waiting for {self.backordered}")
        self.allocated += quantity
        self.backordered -= quantity

    def give_back(self, quantity: int) -> None:
        """Return unshipped allocated units to the backorder (stock shrank under it)."""
        if quantity < 0 or quantity > self.unshipped_allocated:
            raise InvalidQuantity(f"cannot release {quantity} of {self.unshipped_allocated} allocated")
        self.allocated -= quantity
        self.backordered += quantity

    def ship(self, quantity: int) -> int:
        """Ship units; returns how many came from the backorder rather than from allocation
        (a channel may ship stock we had not yet allocated)."""
        if not self.is_open:
            raise InvalidTransition(f"order {self.order_id} line {self.line_no} is {self.status.value}")
        if quantity <= 0 or quantity > self.quantity - self.shipped:
            raise InvalidQuantity(
                f"order {self.order_id} line {self.line_no}: cannot ship {quantity}, "
                f"{self.quantity - self.shipped} unshipped"
            )
        from_backorder = max(quantity - self.unshipped_allocated, 0)
        self.backordered -= from_backorder
        self.allocated += from_backorder
        self.shipped += quantity
        if self.backordered == 0:
            self.eta = None
        if self.shipped == self.quantity:
            self.status = LineStatus.SHIPPED
        return from_backorder

    def cancel(self) -> tuple[int, int]:
        """Cancel what is not shipped; returns (released allocation, cancelled backorder)."""
        if not self.is_open:
            raise InvalidTransition(f"order {self.order_id} line {self.line_no} is {self.status.value}")
        released, cancelled = self.unshipped_allocated, self.backordered
        self.allocated = self.shipped
        self.backordered = 0
        self.status = LineStatus.CANCELLED
        self.eta = None
        return released, cancelled


@dataclass
class Order:
    id: str
    channel: str
    placed_at: datetime
    priority: int = 0
    ship_complete: bool = False
    customer_email: str | None = None
    customer_phone: str | None = None
    customer_name: str | None = None
    lines: list[OrderLine] = field(default_factory=list)
    reference: str | None = None  # the number the customer knows (Shopify's "#1001"); else the id

    def __post_init__(self) -> None:
        if self.placed_at.tzinfo is None:
            raise ValueError(f"order {self.id}: placed_at must be timezone-aware")

    def line(self, line_no: int) -> OrderLine:
        for line in self.lines:
            if line.line_no == line_no:
                return line
        raise InvalidTransition(f"order {self.id} has no line {line_no}")

    @property
    def is_open(self) -> bool:
        return any(line.is_open for line in self.lines)


class PoStatus(enum.StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    RECEIVED = "received"
    CANCELLED = "cancelled"


OPEN_PO_STATUSES = (PoStatus.DRAFT, PoStatus.SENT, PoStatus.ACKNOWLEDGED)


@dataclass
class PurchaseOrderLine:
    sku: str
    quantity: int
    unit_cost: Decimal
    received: int = 0
    expected_on: date | None = None
    id: int | None = None

    @property
    def outstanding(self) -> int:
        return max(self.quantity - self.received, 0)


@dataclass
class PurchaseOrder:
    number: str
    supplier: str
    created_at: datetime
    status: PoStatus = PoStatus.DRAFT
    sent_at: datetime | None = None
    lines: list[PurchaseOrderLine] = field(default_factory=list)
    id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_PO_STATUSES

    @property
    def total(self) -> Decimal:
        return sum((line.unit_cost * line.quantity for line in self.lines), Decimal("0"))

    def line_for(self, sku: str) -> PurchaseOrderLine | None:
        return next((line for line in self.lines if line.sku == sku), None)

    def mark_sent(self, at: datetime, lead_days: dict[str, int]) -> None:
        from datetime import timedelta

        if self.status is not PoStatus.DRAFT:
            raise InvalidTransition(f"purchase order {self.number} is {self.status.value}, not draft")
        if not any(line.quantity > 0 for line in self.lines):
            raise InvalidTransition(f"purchase order {self.number} orders nothing: every line is at 0 units")
        self.status = PoStatus.SENT
        self.sent_at = at
        for line in self.lines:
            line.expected_on = (at + timedelta(days=lead_days.get(line.sku, 0))).date()

    def acknowledge(self, expected_on: date | None) -> None:
        if self.status not in (PoStatus.SENT, PoStatus.ACKNOWLEDGED):
            raise InvalidTransition(
                f"purchase order {self.number} is {self.status.value}: only a sent PO can be acknowledged"
            )
        self.status = PoStatus.ACKNOWLEDGED
        if expected_on is not None:
            for line in self.lines:
                if line.outstanding > 0:
                    line.expected_on = expected_on

    def close_short(self) -> list[str]:
        """Cancel what is still outstanding; returns the SKUs whose supply shrank."""
        if not self.is_open:
            raise InvalidTransition(f"purchase order {self.number} is {self.status.value}")
        if self.status is PoStatus.DRAFT:
            raise InvalidTransition(f"purchase order {self.number} is a draft: edit or delete it instead")
        short = [line.sku for line in self.lines if line.outstanding > 0]
        for line in self.lines:
            line.quantity = line.received
        self.status = PoStatus.RECEIVED
        return short

    def receive(self, sku: str, quantity: int) -> int:
        """Book received units against this PO's line for ``sku``; returns units booked."""
        line = self.line_for(sku)
        if line is None or quantity <= 0:
            return 0
        booked = min(quantity, line.outstanding)
        line.received += booked
        if all(line.outstanding == 0 for line in self.lines):
            self.status = PoStatus.RECEIVED
        return booked
