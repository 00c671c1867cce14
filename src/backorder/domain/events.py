"""Domain events: facts recorded by handlers, turned into outbox actions by the rules.

Events about an order carry all of that order's affected lines, so one customer message per
order and event falls out naturally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class Event:
    @property
    def name(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class BackorderedLine:
    line_no: int
    sku: str
    quantity: int
    eta: date | None


@dataclass(frozen=True)
class BackorderCreated(Event):
    order_id: str
    channel: str
    lines: tuple[BackorderedLine, ...]


@dataclass(frozen=True)
class EtaChange:
    line_no: int
    sku: str
    previous: date | None
    current: date | None


@dataclass(frozen=True)
class BackorderEtaChanged(Event):
    order_id: str
    channel: str
    changes: tuple[EtaChange, ...]


@dataclass(frozen=True)
class AllocatedLine:
    line_no: int
    sku: str
    quantity: int
    still_backordered: int


@dataclass(frozen=True)
class BackorderAllocated(Event):
    """Stock reached lines that were waiting. ``source`` is receipt, adjustment, release or bop."""

    order_id: str
    channel: str
    source: str
    lines: tuple[AllocatedLine, ...]
    ready_to_ship: bool


@dataclass(frozen=True)
class CancelledLine:
    line_no: int
    sku: str
    quantity: int


@dataclass(frozen=True)
class BackorderCancelled(Event):
    order_id: str
    channel: str
    reason: str
    lines: tuple[CancelledLine, ...]


@dataclass(frozen=True)
class RequestedLine:
    line_no: int
    sku: str
    quantity: int


@dataclass(frozen=True)
class PartialShipmentRequested(Event):
    """The customer asked for what is in stock now to ship ahead of the rest. Nothing is shipped
    by this: staff pack it, and the shipment is recorded when it leaves (a channel's fulfilment,
    or ``backorder ship``)."""

    order_id: str
    channel: str
    lines: tuple[RequestedLine, ...]


@dataclass(frozen=True)
class AllocationWithdrawn(Event):
    """On hand fell below what was promised; the lowest-ranked lines went back to waiting."""

    order_id: str
    channel: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class LineShipped(Event):
    order_id: str
    channel: str
    line_no: int
    sku: str
    quantity: int


@dataclass(frozen=True)
class StockBelowThreshold(Event):
    sku: str
    projected: int
    reorder_point: int
    supplier: str | None


@dataclass(frozen=True)
class ReplenishmentBlocked(Event):
    """A SKU needs stock but nothing could be ordered (no preferred supplier, or a proposal too large)."""

    sku: str
    projected: int
    reason: str


@dataclass(frozen=True)
class PurchaseOrderProposed(Event):
    po_number: str
    supplier: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class PoLineSummary:
    sku: str
    supplier_sku: str
    quantity: int
    unit_cost: Decimal
    expected_on: date | None


@dataclass(frozen=True)
class PurchaseOrderSent(Event):
    po_number: str
    supplier: str
    supplier_email: str
    lines: tuple[PoLineSummary, ...] = field(default=())


@dataclass(frozen=True)
class PurchaseOrderAcknowledged(Event):
    po_number: str
    supplier: str
    expected_on: date | None


@dataclass(frozen=True)
class StockReceived(Event):
    sku: str
    location: str
    quantity: int
    po_number: str | None


@dataclass(frozen=True)
class StockLevelChanged(Event):
    """On hand or allocated moved for a SKU; channels' sellable quantity follows."""

    sku: str
