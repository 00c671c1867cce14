"""Ports the handlers depend on. The store implements them on SQLAlchemy; tests use the fakes
in ``tests/fakes.py``, which subclass these.

Repositories are small and split by aggregate; each returns domain objects and saves the ones
a handler changed. Locking is explicit: ``lock_skus`` takes row locks in SKU order (a global
order, so two transactions never deadlock on each other's SKUs).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from backorder.domain import events
from backorder.domain.allocation import Claim, Grant, Holding
from backorder.domain.eta import Supply
from backorder.domain.model import (
    Order,
    OrderLine,
    PurchaseOrder,
    Sku,
    StockLevel,
    StockPosition,
    Supplier,
    SupplierItem,
)


class Clock(abc.ABC):
    @abc.abstractmethod
    def now(self) -> datetime: ...

    def today(self) -> date:
        return self.now().date()


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock(Clock):
    """A clock that moves only when told (the demo's simulated days, tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        self._now = at


@dataclass(frozen=True)
class WaitingLine:
    """An open line with units still backordered, as allocation and ETAs need it."""

    claim: Claim
    channel: str
    eta: date | None


@dataclass(frozen=True)
class AllocationRecord:
    """One row of the allocation ledger: who got what, when, and why."""

    order_id: str
    line_no: int
    sku: str
    location: str
    quantity: int
    kind: str  # allocate | release | withdraw | ship (from held units) | ship_direct (never held)
    source: str  # arrival | receipt | adjustment | release | bop | ship | cancel | shrinkage
    source_ref: str | None
    at: datetime
    line_id: int | None = None


@dataclass(frozen=True)
class OutboxMessage:
    """An action to perform outside: ``target`` names a configured connector role
    (email, sms, staff, purchasing, channel:<id>); ``payload`` is JSON-serialisable."""

    action: str
    target: str
    payload: dict[str, Any]
    dedupe_key: str | None = None


class CatalogRepository(abc.ABC):
    @abc.abstractmethod
    def get_skus(self, codes: Iterable[str]) -> dict[str, Sku]: ...

    @abc.abstractmethod
    def upsert_sku(self, sku: Sku) -> None: ...

    @abc.abstractmethod
    def get_supplier(self, code: str) -> Supplier | None: ...

    @abc.abstractmethod
    def upsert_supplier(self, supplier: Supplier) -> None: ...

    @abc.abstractmethod
    def supplier_items(self, skus: Iterable[str]) -> dict[tuple[str, str], SupplierItem]:
        """Keyed by (supplier, sku)."""

    @abc.abstractmethod
    def upsert_supplier_item(self, item: SupplierItem) -> None: ...

    @abc.abstractmethod
    def locations(self) -> list[str]:
        """Known locations in default preference order."""

    @abc.abstractmethod
    def ensure_location(self, code: str) -> None: ...

    def get_sku(self, code: str) -> Sku | None:
        return self.get_skus([code]).get(code)

    def lead_times(self, codes: Iterable[str]) -> dict[str, int | None]:
        """Lead time in days of each SKU's preferred supplier (item, else supplier); None when
        the SKU has no preferred supplier. Stores may answer this in one query."""
        result: dict[str, int | None] = {}
        skus = self.get_skus(codes)
        items = self.supplier_items(skus)
        for code, sku in skus.items():
            if not sku.preferred_supplier:
                result[code] = None
                continue
            item = items.get((sku.preferred_supplier, code))
            if item is not None and item.lead_time_days is not None:
                result[code] = item.lead_time_days
                continue
            supplier = self.get_supplier(sku.preferred_supplier)
            result[code] = supplier.lead_time_days if supplier else None
        return result


class StockRepository(abc.ABC):
    @abc.abstractmethod
    def lock_skus(self, skus: Iterable[str]) -> None:
        """Serialise work on these SKUs until the transaction ends (row locks in SKU order)."""

    @abc.abstractmethod
    def levels(self, skus: Iterable[str]) -> dict[tuple[str, str], StockLevel]: ...

    @abc.abstractmethod
    def save_levels(self, levels: Iterable[StockLevel]) -> None: ...

    @abc.abstractmethod
    def last_observed(self, sku: str, location: str) -> datetime | None: ...

    @abc.abstractmethod
    def mark_observed(self, sku: str, location: str, at: datetime) -> None: ...

    @abc.abstractmethod
    def positions(self, skus: Iterable[str]) -> dict[str, StockPosition]: ...

    @abc.abstractmethod
    def record_receipt(
        self, sku: str, location: str, quantity: int, received_at: datetime, po_number: str | None
    ) -> int:
        """Store a receipt; returns its id (allocations name it as their source)."""

    # --- issue 2 per-receipt perf ---
    @abc.abstractmethod
    def lock_ship_complete_scope(self, skus: Iterable[str]) -> set[str]:
        """Lock, as :meth:`lock_skus` does, ``OrderRepository.ship_complete_scope(skus)`` and
        return it. Stores find and lock it in one statement where they can."""

    # --- issue 2 per-receipt round trips (see ``StockScope`` at the end of this module) ---
    @abc.abstractmethod
    def lock_change_scope(self, sku: str) -> StockScope | None:
        """What a rise of ``sku``'s stock needs before it allocates, read under the locks: lock
        ``sku`` and its ship-complete scope (:meth:`lock_ship_complete_scope`), then read that
        scope's SKUs, stock levels, lead times and dated supply. None when ``sku`` does not
        exist (nothing locked). Stores read all that in one statement after the lock's (a read
        in the lock's own statement would see the snapshot from before the lock was granted)."""

    @abc.abstractmethod
    def read_locked(self, skus: Iterable[str], with_positions: bool = False) -> StockScope:
        """What :meth:`lock_change_scope` reads, for ``skus`` as they are (the caller locked
        them; ``scope`` is those that exist, no closure). One statement where stores can; with
        ``with_positions`` a store that can read :meth:`positions` in that statement too sets
        ``StockScope.positions``."""

    @abc.abstractmethod
    def lock_existing_skus(self, skus: Iterable[str]) -> dict[str, Sku]:
        """Lock, as :meth:`lock_skus` does, those of ``skus`` that exist, and return their rows
        (``CatalogRepository.get_skus``) as of after the lock; in one statement where stores can."""


class OrderRepository(abc.ABC):
    @abc.abstractmethod
    def get(self, order_id: str) -> Order | None: ...

    @abc.abstractmethod
    def add(self, order: Order, channel_view: Mapping[str, int] | None = None) -> None:
        """Insert the order and its lines, setting each line's ``id``, and with ``channel_view``
        what :meth:`save_channel_view` saves. Raises ``DuplicateOrder`` (and stores nothing)
        when an order with that id is stored, another transaction's included (issue 2:
        ``place_order`` no longer reads the order first)."""

    @abc.abstractmethod
    def save_lines(self, lines: Iterable[OrderLine]) -> None: ...

    @abc.abstractmethod
    def save_priority(self, order_id: str, priority: int) -> None: ...

    @abc.abstractmethod
    def save_etas(self, etas: dict[int, date | None]) -> None:
        """Set the ETA of lines by line id."""

    @abc.abstractmethod
    def waiting(self, skus: Iterable[str]) -> list[WaitingLine]:
        """Open lines of these SKUs with units backordered (any order)."""

    @abc.abstractmethod
    def lines_by_id(self, line_ids: Iterable[int]) -> dict[int, tuple[Order, OrderLine]]: ...

    @abc.abstractmethod
    def ship_complete_partner_skus(self, skus: Iterable[str]) -> set[str]:
        """Other SKUs of open ship-complete orders that wait on any of these SKUs."""

    @abc.abstractmethod
    def holdings(self, sku: str, location: str) -> list[Holding]:
        """Unshipped units lines hold at a location."""

    @abc.abstractmethod
    def record_allocations(self, records: Sequence[AllocationRecord]) -> None: ...

    @abc.abstractmethod
    def ledger(self, order_id: str) -> list[AllocationRecord]: ...

    @abc.abstractmethod
    def held_at(self, line_id: int) -> dict[str, int]:
        """Unshipped units a line holds, by location."""

    # --- issue 3 (channels): privacy redaction ---
    @abc.abstractmethod
    def redact_customer(self, channel: str, email: str | None, order_ids: Sequence[str]) -> list[str]:
        """Remove the customer's email, phone and name from this channel's orders that carry
        ``email`` or are named in ``order_ids`` (``email=None`` and no ids: every order of the
        channel). Returns the ids of the orders changed."""

    # --- issue 3 (channels): order edits ---
    @abc.abstractmethod
    def save_quantities(self, lines: Iterable[OrderLine]) -> None:
        """Store each line's ``quantity`` (an edit lowered it; ``save_lines`` stores the rest)."""

    @abc.abstractmethod
    def channel_view(self, order_id: str) -> dict[str, int] | None:
        """Units per SKU of the channel's view of the order last applied (None: none recorded)."""

    @abc.abstractmethod
    def save_channel_view(self, order_id: str, units: Mapping[str, int]) -> None: ...

    # --- issue 3 (channels): exactly-once shipments ---
    def shipment_recorded(self, order_id: str, shipment_ref: str) -> bool:
        """Whether the ledger already holds a shipment of this order under ``shipment_ref``.
        Stores answer this with one indexed query; this default reads the order's ledger."""
        return any(
            r.source == SHIPMENT_SOURCE and r.source_ref == shipment_ref and r.kind in ("ship", "ship_direct")
            for r in self.ledger(order_id)
        )

    # --- issue 5 (staff, self-service): a customer's accepted substitute ---
    @abc.abstractmethod
    def add_line(self, order: Order, line: OrderLine) -> None:
        """Store a new line of an existing order (ranking keys copied from ``order``); sets ``line.id``."""

    # --- issue 2 per-receipt perf: read a SKU's queue only as far as the stock reaches ---
    @abc.abstractmethod
    def waiting_page(self, sku: str, offset: int, limit: int) -> list[WaitingLine]:
        """Open lines of ``sku`` with units backordered in rank order (order priority
        descending, ``placed_at``, order id, line number): ``limit`` of them after skipping
        ``offset``. Stores read this from the ranking index without sorting."""

    @abc.abstractmethod
    def waiting_of_orders(self, order_ids: Iterable[str]) -> list[WaitingLine]:
        """Open lines with units backordered of these orders, whatever their SKU (any order)."""

    @abc.abstractmethod
    def ship_complete_scope(self, skus: Iterable[str]) -> set[str]:
        """``skus`` and every SKU reached from them through open ship-complete orders waiting on
        them, transitively (:meth:`ship_complete_partner_skus` to a fixed point; one query)."""

    @abc.abstractmethod
    def waiting_eta_not(self, etas: Mapping[str, date]) -> list[WaitingLine]:
        """Open lines with units backordered of the SKUs in ``etas`` whose ETA is not that
        SKU's date (no ETA counts as different), in any order."""

    # --- issue 2 per-receipt round trips ---
    @abc.abstractmethod
    def save_grants(
        self, lines: Iterable[OrderLine], levels: Iterable[StockLevel], records: Sequence[AllocationRecord]
    ) -> None:
        """``save_lines(lines)``, ``StockRepository.save_levels(levels)`` and
        ``record_allocations(records)`` at once (stores: one statement where they can)."""


class PurchasingRepository(abc.ABC):
    @abc.abstractmethod
    def get(self, number: str) -> PurchaseOrder | None: ...

    @abc.abstractmethod
    def open_draft(self, supplier: str) -> PurchaseOrder | None: ...

    @abc.abstractmethod
    def add(self, po: PurchaseOrder) -> None: ...

    @abc.abstractmethod
    def save(self, po: PurchaseOrder) -> None: ...

    @abc.abstractmethod
    def next_number(self, at: datetime) -> str: ...

    @abc.abstractmethod
    def open_for_sku(self, sku: str) -> list[PurchaseOrder]:
        """Open POs with units outstanding for ``sku``, earliest expected first."""

    @abc.abstractmethod
    def drafts(self) -> list[PurchaseOrder]: ...

    # --- issue 2 per-receipt perf ---
    @abc.abstractmethod
    def skus_with_open_supply(self, skus: Iterable[str], *, dated_only: bool = False) -> set[str]:
        """The SKUs among ``skus`` with units outstanding on an open PO (drafts included): a
        SKU not returned has an empty :meth:`supply`. With ``dated_only``, only lines with an
        expected date count: a SKU not returned then has no supply but what :meth:`supply`
        dates ``draft_expected_on``. Stores answer in one query."""

    def supply(self, sku: str, draft_expected_on: date) -> list[Supply]:
        """Outstanding units for ``sku`` on open POs; a draft counts as if sent today."""
        result = []
        for po in self.open_for_sku(sku):
            line = po.line_for(sku)
            if line is None or line.outstanding <= 0:
                continue
            expected = line.expected_on or draft_expected_on
            result.append(Supply(expected, line.outstanding))
        return result


class Outbox(abc.ABC):
    @abc.abstractmethod
    def add(self, messages: Sequence[OutboxMessage]) -> None: ...


@dataclass
class BopQueue:
    """Waiting lines of SKUs that have stock, flattened for the vectorised contract.

    Lines are sorted by SKU index then rank; ``needs_walk`` marks SKUs that must go through the
    general walk instead (a ship-complete order or a channel limited to some locations)."""

    sku_codes: list[str]
    available: npt.NDArray[np.int64]
    line_ids: npt.NDArray[np.int64]
    sku_index: npt.NDArray[np.int64]
    wanted: npt.NDArray[np.int64]
    needs_walk: set[str] = field(default_factory=set)


class BulkAllocation(abc.ABC):
    """The full-run fast path: load every queue with stock at once, write results in bulk."""

    @abc.abstractmethod
    def load_queue(self, walk_channels: set[str]) -> BopQueue: ...

    @abc.abstractmethod
    def apply(
        self,
        queue: BopQueue,
        granted: npt.NDArray[np.int64],
        at: datetime,
        source: str,
        walk: Sequence[Grant] = (),
    ) -> list[events.Event]:
        """Persist the queue's grants and the general walk's grants ``walk`` (lines, stock,
        holdings, ledger) in one write, and return the events they cause: one
        BackorderAllocated per order, in order-id order."""

    # --- issue 2 perf: the rest of the full run without per-SKU round trips ---

    @abc.abstractmethod
    def walk_lines(
        self, queue: BopQueue, granted: npt.NDArray[np.int64]
    ) -> tuple[list[WaitingLine], dict[str, dict[str, int]]]:
        """What the general walk must judge, after the queue's ``granted``: the waiting lines
        of the SKUs in ``queue.needs_walk`` (a store may leave out lines that cannot get
        anything: not ship-complete and ranked after ordinary lines that want all the stock),
        plus every other waiting line of the ship-complete orders among them (so each such
        order is judged whole), with the units each still wants; and the pools they draw from
        (available units by SKU, then by location in preference order, net of ``granted``)."""

    @abc.abstractmethod
    def waiting_ranked(self, skus: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
        """After ``apply``: each SKU's waiting lines as (line id, units still backordered) in
        rank order (SKUs with no waiting line are left out)."""

    @abc.abstractmethod
    def open_supply(self) -> dict[str, list[tuple[date | None, int]]]:
        """Units outstanding on open purchase orders (draft, sent, acknowledged), by SKU, as
        ``PurchasingRepository.supply`` counts them: (expected date, None where the line has
        none yet; units) per PO. SKUs with nothing outstanding are left out."""

    @abc.abstractmethod
    def lead_times(self, skus: Iterable[str]) -> dict[str, int | None]:
        """``CatalogRepository.lead_times`` for many SKUs at once (a full run's thousands)."""

    @abc.abstractmethod
    def save_etas(self, due_by_sku: Mapping[str, date], due_by_line: Mapping[int, date]) -> list[events.Event]:
        """Set the ETA of every waiting line of the SKUs in ``due_by_sku`` to that SKU's date
        and of the lines in ``due_by_line`` to theirs, writing only the ETAs that change; return
        one BackorderEtaChanged per (order, channel) whose lines moved (lines by number), in
        (order id, channel) order. The run's last step: a store may let go of what
        ``load_queue`` read (the rules and the outbox still have a million messages to build)."""


class UnitOfWork(abc.ABC):
    catalog: CatalogRepository
    stock: StockRepository
    orders: OrderRepository
    purchasing: PurchasingRepository
    outbox: Outbox
    bulk: BulkAllocation

    def __init__(self) -> None:
        self.events: list[events.Event] = []

    def __enter__(self) -> Self:
        self.events = []
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.rollback()

    def record(self, *new_events: events.Event) -> None:
        self.events.extend(new_events)

    def collect_events(self) -> list[events.Event]:
        collected, self.events = self.events, []
        return collected

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...


def grant_records(
    grants: Sequence[Grant], source: str, ref: str | None, at: datetime, line_ids: Mapping[int, int] | None = None
) -> list[AllocationRecord]:
    """Ledger rows for grants; ``line_ids`` maps a grant's ``line_key`` to the line id when the
    key is not already the id (grants made before the lines were stored)."""
    return [
        AllocationRecord(
            g.order_id,
            g.line_no,
            g.sku,
            g.location,
            g.quantity,
            "allocate",
            source,
            ref,
            at,
            line_ids[g.line_key] if line_ids is not None else g.line_key,
        )
        for g in grants
    ]


# --- issue 3 (channels) ---------------------------------------------------------------------

SHIPMENT_SOURCE = "shipment"
"""Ledger ``source`` of a shipment the channel identified (``source_ref`` = its ``shipment_ref``)."""


# --- issue 2 per-receipt round trips --------------------------------------------------------


@dataclass
class StockScope:
    """``StockRepository.lock_change_scope``: a SKU's ship-complete scope, locked, with what an
    allocation over it and the ETA step after it read (all as of after the locks)."""

    skus: dict[str, Sku]
    """Every SKU of the scope, by code (the changed SKU included)."""
    scope: set[str]
    """The changed SKU and, transitively, the SKUs of open ship-complete orders waiting on it
    (``OrderRepository.ship_complete_scope``); all locked."""
    levels: dict[tuple[str, str], StockLevel]
    """Every stock level of the scope's SKUs."""
    lead_times: dict[str, int | None]
    """``CatalogRepository.lead_times`` of the scope's SKUs."""
    dated_supply: set[str]
    """``PurchasingRepository.skus_with_open_supply(scope, dated_only=True)``."""
    sent_supply: set[str]
    """The scope's SKUs with units outstanding on a sent or acknowledged PO: a SKU not in it has
    no PO a receipt naming none could book against (``open_for_sku`` less drafts is empty)."""
    positions: dict[str, StockPosition] | None = None
    """``StockRepository.positions`` of the scope's SKUs as read with the rest (``read_locked``
    with ``with_positions``, where the store reads them in the same statement); else None."""
