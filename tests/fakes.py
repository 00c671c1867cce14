"""In-memory fakes of the service ports, for handler and state-machine tests.

Every fake subclasses its port from ``backorder.services.ports``. They behave like a database
would where it matters to the handlers:

- objects handed out are deep copies, and objects saved are copied in, so a handler that
  changes something without saving it changes nothing (a missing ``save_*`` call shows up);
- :class:`FakeUnitOfWork` snapshots the whole state on ``__enter__`` and restores it on
  ``rollback`` unless the work was committed, so a failing command really changes nothing;
- :class:`FakeBulk` loads and applies the full-run queue with numpy the way a store does.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Self, TypeVar

import numpy as np
import numpy.typing as npt

from backorder.domain import events
from backorder.domain.allocation import Claim, Grant, Holding, claim_rank
from backorder.domain.errors import DuplicateOrder
from backorder.domain.model import (
    Order,
    OrderLine,
    PoStatus,
    PurchaseOrder,
    Sku,
    StockLevel,
    StockPosition,
    Supplier,
    SupplierItem,
)
from backorder.services.handlers import HandlerContext
from backorder.services.messagebus import MessageBus
from backorder.services.policy import EnginePolicy
from backorder.services.ports import (
    AllocationRecord,
    BopQueue,
    BulkAllocation,
    CatalogRepository,
    Clock,
    OrderRepository,
    Outbox,
    OutboxMessage,
    PurchasingRepository,
    StockRepository,
    StockScope,
    UnitOfWork,
    WaitingLine,
)
from backorder.services.rules import RuleSet

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

T = TypeVar("T")


class FixedClock(Clock):
    """A clock that stands still until a test moves it."""

    def __init__(self, at: datetime = START) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at


@dataclass
class FakeState:
    """Everything the fakes store: what a database would hold."""

    skus: dict[str, Sku] = field(default_factory=dict)
    suppliers: dict[str, Supplier] = field(default_factory=dict)
    supplier_items: dict[tuple[str, str], SupplierItem] = field(default_factory=dict)
    locations: list[str] = field(default_factory=list)
    levels: dict[tuple[str, str], StockLevel] = field(default_factory=dict)
    observed: dict[tuple[str, str], datetime] = field(default_factory=dict)
    receipts: list[tuple[int, str, str, int, datetime, str | None]] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)
    ledger: list[AllocationRecord] = field(default_factory=list)
    purchase_orders: dict[str, PurchaseOrder] = field(default_factory=dict)
    outbox: list[OutboxMessage] = field(default_factory=list)
    next_line_id: int = 1
    next_po_id: int = 1
    next_po_line_id: int = 1
    po_sequence: int = 0
    # issue 3 (channels): the channel's view of each order last applied (units per SKU)
    channel_views: dict[str, dict[str, int]] = field(default_factory=dict)

    def line_index(self) -> dict[int, tuple[Order, OrderLine]]:
        index: dict[int, tuple[Order, OrderLine]] = {}
        for order in self.orders.values():
            for line in order.lines:
                if line.id is not None:
                    index[line.id] = (order, line)
        return index

    def location_rank(self) -> dict[str, int]:
        return {loc: i for i, loc in enumerate(self.locations)}


def _copy(value: T) -> T:
    return copy.deepcopy(value)


# --- catalog ------------------------------------------------------------------------------


class FakeCatalog(CatalogRepository):
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def get_skus(self, codes: Iterable[str]) -> dict[str, Sku]:
        return {code: _copy(self.state.skus[code]) for code in set(codes) if code in self.state.skus}

    def upsert_sku(self, sku: Sku) -> None:
        self.state.skus[sku.code] = _copy(sku)

    def get_supplier(self, code: str) -> Supplier | None:
        return _copy(self.state.suppliers.get(code))

    def upsert_supplier(self, supplier: Supplier) -> None:
        self.state.suppliers[supplier.code] = _copy(supplier)

    def supplier_items(self, skus: Iterable[str]) -> dict[tuple[str, str], SupplierItem]:
        wanted = set(skus)
        return {key: _copy(item) for key, item in self.state.supplier_items.items() if key[1] in wanted}

    def upsert_supplier_item(self, item: SupplierItem) -> None:
        self.state.supplier_items[(item.supplier, item.sku)] = _copy(item)

    def locations(self) -> list[str]:
        return list(self.state.locations)

    def ensure_location(self, code: str) -> None:
        if code not in self.state.locations:
            self.state.locations.append(code)


# --- stock --------------------------------------------------------------------------------


class FakeStock(StockRepository):
    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.locked: list[str] = []

    def lock_skus(self, skus: Iterable[str]) -> None:
        self.locked.extend(sorted(set(skus)))

    def levels(self, skus: Iterable[str]) -> dict[tuple[str, str], StockLevel]:
        wanted = set(skus)
        return {key: _copy(level) for key, level in self.state.levels.items() if key[0] in wanted}

    def save_levels(self, levels: Iterable[StockLevel]) -> None:
        for level in levels:
            self.state.levels[(level.sku, level.location)] = _copy(level)

    def last_observed(self, sku: str, location: str) -> datetime | None:
        return self.state.observed.get((sku, location))

    def mark_observed(self, sku: str, location: str, at: datetime) -> None:
        self.state.observed[(sku, location)] = at

    def positions(self, skus: Iterable[str]) -> dict[str, StockPosition]:
        """A position for every requested SKU of the catalog, zeros where nothing is stored.
        ``incoming`` counts every open PO, drafts included: demand already on order."""
        result: dict[str, StockPosition] = {}
        for code in sorted(set(skus)):
            if code not in self.state.skus:
                continue
            levels = [level for key, level in self.state.levels.items() if key[0] == code]
            incoming = sum(
                line.outstanding
                for po in self.state.purchase_orders.values()
                if po.is_open
                for line in po.lines
                if line.sku == code
            )
            backordered = sum(
                line.backordered
                for order in self.state.orders.values()
                for line in order.lines
                if line.is_open and line.sku == code
            )
            result[code] = StockPosition(
                code,
                on_hand=sum(level.on_hand for level in levels),
                allocated=sum(level.allocated for level in levels),
                incoming=incoming,
                backordered=backordered,
            )
        return result

    def record_receipt(
        self, sku: str, location: str, quantity: int, received_at: datetime, po_number: str | None
    ) -> int:
        receipt_id = len(self.state.receipts) + 1
        self.state.receipts.append((receipt_id, sku, location, quantity, received_at, po_number))
        return receipt_id

    # --- issue 2 per-receipt perf ---
    def lock_ship_complete_scope(self, skus: Iterable[str]) -> set[str]:
        scope = FakeOrders(self.state).ship_complete_scope(skus)
        self.lock_skus(scope)
        return scope

    # --- issue 2 per-receipt round trips ---
    def lock_existing_skus(self, skus: Iterable[str]) -> dict[str, Sku]:
        found = FakeCatalog(self.state).get_skus(skus)
        self.lock_skus(found)
        return found

    def lock_change_scope(self, sku: str) -> StockScope | None:
        if sku not in self.state.skus:
            return None
        return self.read_locked(self.lock_ship_complete_scope([sku]))

    def read_locked(self, skus: Iterable[str], with_positions: bool = False) -> StockScope:
        scope = {code for code in skus if code in self.state.skus}
        catalog = FakeCatalog(self.state)
        return StockScope(
            skus=catalog.get_skus(scope),
            scope=scope,
            levels=self.levels(scope),
            lead_times=catalog.lead_times(scope),
            dated_supply=FakePurchasing(self.state).skus_with_open_supply(scope, dated_only=True),
            sent_supply={
                line.sku
                for po in self.state.purchase_orders.values()
                if po.is_open and po.status is not PoStatus.DRAFT
                for line in po.lines
                if line.sku in scope and line.outstanding > 0
            },
            positions=self.positions(scope) if with_positions else None,
        )


# --- orders -------------------------------------------------------------------------------


def held_by_location(ledger: Iterable[AllocationRecord], order_id: str, line_no: int) -> dict[str, int]:
    """Unshipped units a line holds, by location, read from the allocation ledger.

    ``allocate`` adds; ``release`` and ``withdraw`` carry negative quantities; ``ship`` takes
    held units out; ``ship_direct`` ships units that were never held and changes nothing."""
    held: dict[str, int] = defaultdict(int)
    for record in ledger:
        if record.order_id != order_id or record.line_no != line_no:
            continue
        if record.kind in ("allocate", "release", "withdraw"):
            held[record.location] += record.quantity
        elif record.kind == "ship":
            held[record.location] -= record.quantity
        elif record.kind != "ship_direct":
            raise AssertionError(f"unknown ledger kind {record.kind!r}")
    return {loc: qty for loc, qty in held.items() if qty != 0}


class FakeOrders(OrderRepository):
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def get(self, order_id: str) -> Order | None:
        return _copy(self.state.orders.get(order_id))

    def add(self, order: Order, channel_view: Mapping[str, int] | None = None) -> None:
        if order.id in self.state.orders:
            raise DuplicateOrder(order.id)
        for line in order.lines:
            line.id = self.state.next_line_id
            self.state.next_line_id += 1
        self.state.orders[order.id] = _copy(order)
        if channel_view is not None:
            self.save_channel_view(order.id, channel_view)

    def _stored_line(self, line: OrderLine) -> tuple[Order, int]:
        order = self.state.orders[line.order_id]
        for i, stored in enumerate(order.lines):
            if stored.line_no == line.line_no:
                if line.id is not None and stored.id != line.id:
                    raise KeyError(f"line id {line.id} does not match stored line {stored.id}")
                return order, i
        raise KeyError(f"order {line.order_id} has no stored line {line.line_no}")

    def save_lines(self, lines: Iterable[OrderLine]) -> None:
        for line in lines:
            order, i = self._stored_line(line)
            order.lines[i] = _copy(line)

    def save_priority(self, order_id: str, priority: int) -> None:
        self.state.orders[order_id].priority = priority

    def save_etas(self, etas: dict[int, date | None]) -> None:
        index = self.state.line_index()
        for line_id, eta in etas.items():
            index[line_id][1].eta = eta

    def waiting(self, skus: Iterable[str]) -> list[WaitingLine]:
        wanted = set(skus)
        return [
            WaitingLine(claim, order.channel, line.eta)
            for claim, order, line in _waiting_claims(self.state)
            if line.sku in wanted
        ]

    def lines_by_id(self, line_ids: Iterable[int]) -> dict[int, tuple[Order, OrderLine]]:
        """One copy per order, shared by its lines (as an ORM identity map would)."""
        index = self.state.line_index()
        copies: dict[str, Order] = {}
        found: dict[int, tuple[Order, OrderLine]] = {}
        for line_id in set(line_ids):
            if line_id not in index:
                continue
            order_id = index[line_id][0].id
            order = copies.setdefault(order_id, _copy(self.state.orders[order_id]))
            line = next(line for line in order.lines if line.id == line_id)
            found[line_id] = (order, line)
        return found

    def ship_complete_partner_skus(self, skus: Iterable[str]) -> set[str]:
        wanted = set(skus)
        partners: set[str] = set()
        for order in self.state.orders.values():
            if not order.ship_complete:
                continue
            waiting = [line for line in order.lines if line.is_open and line.backordered > 0]
            if any(line.sku in wanted for line in waiting):
                partners.update(line.sku for line in waiting)
        return partners - wanted

    def holdings(self, sku: str, location: str) -> list[Holding]:
        result = []
        for order in self.state.orders.values():
            for line in order.lines:
                if not line.is_open or line.sku != sku:
                    continue
                here = held_by_location(self.state.ledger, order.id, line.line_no).get(location, 0)
                if here > 0:
                    assert line.id is not None
                    holding = Holding(
                        line.id, order.id, line.line_no, sku, location, here, order.priority, order.placed_at
                    )
                    result.append(holding)
        return result

    def record_allocations(self, records: Sequence[AllocationRecord]) -> None:
        self.state.ledger.extend(records)

    def ledger(self, order_id: str) -> list[AllocationRecord]:
        return [record for record in self.state.ledger if record.order_id == order_id]

    def held_at(self, line_id: int) -> dict[str, int]:
        order, line = self.state.line_index()[line_id]
        return held_by_location(self.state.ledger, order.id, line.line_no)

    # --- issue 3 (channels): privacy redaction ---
    def redact_customer(self, channel: str, email: str | None, order_ids: Sequence[str]) -> list[str]:
        changed = []
        for order in self.state.orders.values():
            if order.channel != channel:
                continue
            named = order.id in set(order_ids)
            same_email = bool(email) and (order.customer_email or "").lower() == (email or "").lower()
            everything = email is None and not order_ids
            if named or same_email or everything:
                order.customer_email = order.customer_phone = order.customer_name = None
                changed.append(order.id)
        return sorted(changed)

    # --- issue 3 (channels): order edits ---
    def save_quantities(self, lines: Iterable[OrderLine]) -> None:
        for line in lines:
            order, i = self._stored_line(line)
            order.lines[i].quantity = line.quantity

    def channel_view(self, order_id: str) -> dict[str, int] | None:
        found = self.state.channel_views.get(order_id)
        return dict(found) if found is not None else None

    def save_channel_view(self, order_id: str, units: Mapping[str, int]) -> None:
        self.state.channel_views[order_id] = dict(units)

    # --- issue 5 (staff, self-service): a customer's accepted substitute ---
    def add_line(self, order: Order, line: OrderLine) -> None:
        stored = self.state.orders[order.id]
        if any(x.line_no == line.line_no for x in stored.lines):
            raise KeyError(f"order {order.id} already has line {line.line_no} (unique constraint)")
        line.id = self.state.next_line_id
        self.state.next_line_id += 1
        stored.lines.append(_copy(line))

    # --- issue 2 per-receipt perf: read a SKU's queue only as far as the stock reaches ---
    def waiting_page(self, sku: str, offset: int, limit: int) -> list[WaitingLine]:
        ranked = sorted(self.waiting([sku]), key=lambda w: claim_rank(w.claim))
        return ranked[offset : offset + limit]

    def waiting_of_orders(self, order_ids: Iterable[str]) -> list[WaitingLine]:
        wanted = set(order_ids)
        skus = {line.sku for o in wanted if o in self.state.orders for line in self.state.orders[o].lines}
        return [w for w in self.waiting(skus) if w.claim.order_id in wanted]

    def ship_complete_scope(self, skus: Iterable[str]) -> set[str]:
        scope = set(skus)
        while partners := self.ship_complete_partner_skus(scope) - scope:
            scope |= partners
        return scope

    def waiting_eta_not(self, etas: Mapping[str, date]) -> list[WaitingLine]:
        return [w for w in self.waiting(etas) if w.eta != etas[w.claim.sku]]

    # --- issue 2 per-receipt round trips ---
    def save_grants(
        self, lines: Iterable[OrderLine], levels: Iterable[StockLevel], records: Sequence[AllocationRecord]
    ) -> None:
        self.save_lines(lines)
        FakeStock(self.state).save_levels(levels)
        self.record_allocations(records)


# --- purchasing ---------------------------------------------------------------------------


class FakePurchasing(PurchasingRepository):
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def get(self, number: str) -> PurchaseOrder | None:
        return _copy(self.state.purchase_orders.get(number))

    def open_draft(self, supplier: str) -> PurchaseOrder | None:
        drafts = [po for po in self.drafts() if po.supplier == supplier]
        return drafts[0] if drafts else None

    def _assign_ids(self, po: PurchaseOrder) -> None:
        if po.id is None:
            po.id = self.state.next_po_id
            self.state.next_po_id += 1
        for line in po.lines:
            if line.id is None:
                line.id = self.state.next_po_line_id
                self.state.next_po_line_id += 1

    def add(self, po: PurchaseOrder) -> None:
        if po.number in self.state.purchase_orders:
            raise KeyError(f"purchase order {po.number!r} already stored (unique constraint)")
        self._assign_ids(po)
        self.state.purchase_orders[po.number] = _copy(po)

    def save(self, po: PurchaseOrder) -> None:
        if po.number not in self.state.purchase_orders:
            raise KeyError(f"purchase order {po.number!r} was never added")
        self._assign_ids(po)
        self.state.purchase_orders[po.number] = _copy(po)

    def next_number(self, at: datetime) -> str:
        self.state.po_sequence += 1
        return f"PO-{at:%Y%m%d}-{self.state.po_sequence:04d}"

    def open_for_sku(self, sku: str) -> list[PurchaseOrder]:
        found = []
        for po in self.state.purchase_orders.values():
            line = po.line_for(sku)
            if po.is_open and line is not None and line.outstanding > 0:
                expected = line.expected_on
                found.append((expected is None, expected or date.max, po.created_at, po.number, po))
        found.sort(key=lambda row: row[:4])
        return [_copy(row[4]) for row in found]

    def drafts(self) -> list[PurchaseOrder]:
        drafts = [po for po in self.state.purchase_orders.values() if po.status is PoStatus.DRAFT]
        drafts.sort(key=lambda po: (po.created_at, po.number))
        return [_copy(po) for po in drafts]

    # --- issue 2 per-receipt perf ---
    def skus_with_open_supply(self, skus: Iterable[str], *, dated_only: bool = False) -> set[str]:
        wanted = set(skus)
        return {
            line.sku
            for po in self.state.purchase_orders.values()
            if po.is_open
            for line in po.lines
            if line.sku in wanted and line.outstanding > 0 and (line.expected_on is not None or not dated_only)
        }


class FakeOutbox(Outbox):
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def add(self, messages: Sequence[OutboxMessage]) -> None:
        self.state.outbox.extend(_copy(list(messages)))


# --- bulk allocation ----------------------------------------------------------------------


class FakeBulk(BulkAllocation):
    """The full-run path as a store implements it: one pass to build the arrays, one to write."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def _available_by_location(self, sku: str) -> list[tuple[str, int]]:
        rank = self.state.location_rank()
        levels = [level for key, level in self.state.levels.items() if key[0] == sku]
        levels.sort(key=lambda level: (rank.get(level.location, 1 << 30), level.location))
        return [(level.location, level.available) for level in levels]

    def load_queue(self, walk_channels: set[str]) -> BopQueue:
        by_sku: dict[str, list[tuple[Claim, str]]] = defaultdict(list)
        for claim, channel in self._claims():
            by_sku[claim.sku].append((claim, channel))
        codes: list[str] = []
        available: list[int] = []
        needs_walk: set[str] = set()
        line_ids: list[int] = []
        sku_index: list[int] = []
        wanted: list[int] = []
        for sku in sorted(by_sku):
            stock = sum(qty for _, qty in self._available_by_location(sku))
            if stock <= 0:
                continue
            queue = by_sku[sku]
            if any(claim.ship_complete or channel in walk_channels for claim, channel in queue):
                needs_walk.add(sku)
                continue
            index = len(codes)
            codes.append(sku)
            available.append(stock)
            for claim, _ in sorted(queue, key=lambda qc: claim_rank(qc[0])):
                line_ids.append(claim.line_key)
                sku_index.append(index)
                wanted.append(claim.wanted)
        return BopQueue(
            sku_codes=codes,
            available=np.array(available, dtype=np.int64),
            line_ids=np.array(line_ids, dtype=np.int64),
            sku_index=np.array(sku_index, dtype=np.int64),
            wanted=np.array(wanted, dtype=np.int64),
            needs_walk=needs_walk,
        )

    def _claims(self) -> list[tuple[Claim, str]]:
        return [(claim, order.channel) for claim, order, _ in _waiting_claims(self.state)]

    def walk_lines(
        self, queue: BopQueue, granted: npt.NDArray[np.int64]
    ) -> tuple[list[WaitingLine], dict[str, dict[str, int]]]:
        got = {int(i): int(q) for i, q in zip(queue.line_ids.tolist(), granted.tolist(), strict=True)}
        taken: dict[str, int] = defaultdict(int)
        for i, q in zip(queue.sku_index.tolist(), granted.tolist(), strict=True):
            taken[queue.sku_codes[i]] += int(q)
        claims = self._claims()
        whole = {c.order_id for c, _ in claims if c.ship_complete and c.sku in queue.needs_walk}
        lines: list[WaitingLine] = []
        for claim, channel in claims:
            if claim.sku in queue.needs_walk or claim.order_id in whole:
                left = claim.wanted - got.get(claim.line_key, 0)
                if left > 0:
                    lines.append(WaitingLine(dataclasses.replace(claim, wanted=left), channel, None))
        pools: dict[str, dict[str, int]] = {}
        for sku in sorted({w.claim.sku for w in lines}):
            used = taken.get(sku, 0)
            pool: dict[str, int] = {}
            for location, here in self._available_by_location(sku):
                use = min(max(here, 0), used)
                used -= use
                pool[location] = here - use
            pools[sku] = pool
        return lines, pools

    def apply(
        self,
        queue: BopQueue,
        granted: npt.NDArray[np.int64],
        at: datetime,
        source: str,
        walk: Sequence[Grant] = (),
    ) -> list[events.Event]:
        index = self.state.line_index()
        per_order: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))

        def hold(line_id: int, location: str, got: int) -> None:
            order, line = index[line_id]
            line.take(got)
            if line.backordered == 0:
                line.eta = None
            level = self.state.levels[(line.sku, location)]
            if level.available < got:
                raise AssertionError(f"granted {got} of {line.sku} at {location} beyond what is available")
            level.allocated += got
            self.state.ledger.append(
                AllocationRecord(order.id, line.line_no, line.sku, location, got, "allocate", source, None, at, line_id)
            )
            per_order[order.id][line.line_no] += got

        for line_id, sku_i, quantity in zip(
            queue.line_ids.tolist(), queue.sku_index.tolist(), granted.tolist(), strict=True
        ):
            if quantity <= 0:
                continue
            sku = queue.sku_codes[sku_i]
            assert index[line_id][1].sku == sku
            left = quantity
            for location, here in self._available_by_location(sku):
                got = min(here, left)
                if got <= 0:
                    continue
                hold(line_id, location, got)
                left -= got
                if left == 0:
                    break
            if left:
                raise AssertionError(f"granted {quantity} of {sku} beyond what is available")
        for grant in walk:
            assert index[grant.line_key][1].sku == grant.sku
            hold(grant.line_key, grant.location, grant.quantity)
        happened: list[events.Event] = []
        for order_id in sorted(per_order):
            order = self.state.orders[order_id]
            lines = tuple(
                events.AllocatedLine(no, order.line(no).sku, qty, order.line(no).backordered)
                for no, qty in sorted(per_order[order_id].items())
            )
            ready = all(line.backordered == 0 for line in order.lines if line.is_open)
            happened.append(events.BackorderAllocated(order_id, order.channel, source, lines, ready))
        return happened

    def waiting_ranked(self, skus: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
        wanted = set(skus)
        by_sku: dict[str, list[Claim]] = defaultdict(list)
        for claim, _ in self._claims():
            if claim.sku in wanted:
                by_sku[claim.sku].append(claim)
        return {
            sku: [(c.line_key, c.wanted) for c in sorted(claims, key=claim_rank)]
            for sku, claims in sorted(by_sku.items())
        }

    def open_supply(self) -> dict[str, list[tuple[date | None, int]]]:
        supply: dict[str, list[tuple[date | None, int]]] = defaultdict(list)
        for po in self.state.purchase_orders.values():
            if not po.is_open:
                continue
            for sku in dict.fromkeys(line.sku for line in po.lines):
                line = po.line_for(sku)
                if line is not None and line.outstanding > 0:
                    supply[sku].append((line.expected_on, line.outstanding))
        return dict(supply)

    def lead_times(self, skus: Iterable[str]) -> dict[str, int | None]:
        return FakeCatalog(self.state).lead_times(skus)

    def save_etas(self, due_by_sku: Mapping[str, date], due_by_line: Mapping[int, date]) -> list[events.Event]:
        moved: dict[tuple[str, str], list[events.EtaChange]] = defaultdict(list)
        for order in self.state.orders.values():
            for line in order.lines:
                if not (line.is_open and line.backordered > 0):
                    continue
                assert line.id is not None
                due = due_by_line.get(line.id, due_by_sku.get(line.sku))
                if due is not None and due != line.eta:
                    moved[(order.id, order.channel)].append(events.EtaChange(line.line_no, line.sku, line.eta, due))
                    line.eta = due
        return [
            events.BackorderEtaChanged(o, c, tuple(sorted(changes, key=lambda change: change.line_no)))
            for (o, c), changes in sorted(moved.items())
        ]


# --- unit of work -------------------------------------------------------------------------


class FakeUnitOfWork(UnitOfWork):
    """All repositories over one :class:`FakeState`. Entering snapshots the state; rollback
    restores that snapshot unless the work was committed, so uncommitted work disappears."""

    catalog: FakeCatalog
    stock: FakeStock
    orders: FakeOrders
    purchasing: FakePurchasing
    outbox: FakeOutbox
    bulk: FakeBulk

    def __init__(self, state: FakeState | None = None) -> None:
        super().__init__()
        self.state = state if state is not None else FakeState()
        self.catalog = FakeCatalog(self.state)
        self.stock = FakeStock(self.state)
        self.orders = FakeOrders(self.state)
        self.purchasing = FakePurchasing(self.state)
        self.outbox = FakeOutbox(self.state)
        self.bulk = FakeBulk(self.state)
        self.committed = False
        self.commits = 0
        self.rollbacks = 0
        self._snapshot: FakeState | None = None

    def __enter__(self) -> Self:
        super().__enter__()
        self.committed = False
        self.stock.locked = []
        self._snapshot = copy.deepcopy(self.state)
        return self

    def commit(self) -> None:
        self.committed = True
        self.commits += 1
        self._snapshot = None  # nothing before this point can be undone any more

    def rollback(self) -> None:
        """Undo everything since ``__enter__`` unless it was committed. (Writes made after a
        commit in the same block are not undone: the bus never makes any.)"""
        self.rollbacks += 1
        if self._snapshot is None:
            return
        snapshot, self._snapshot = self._snapshot, None
        for f in dataclasses.fields(FakeState):
            setattr(self.state, f.name, getattr(snapshot, f.name))

    def reset(self) -> None:
        """Forget everything (a fresh, empty database)."""
        fresh = FakeState()
        for f in dataclasses.fields(FakeState):
            setattr(self.state, f.name, getattr(fresh, f.name))
        self._snapshot = None
        self.committed = False
        self.events = []


def make_bus(
    uow: FakeUnitOfWork | None = None,
    clock: FixedClock | None = None,
    policy: EnginePolicy | None = None,
    rules: RuleSet | None = None,
) -> tuple[MessageBus, FakeUnitOfWork, FixedClock]:
    """The real message bus over the fakes; returns (bus, uow, clock)."""
    uow = uow if uow is not None else FakeUnitOfWork()
    clock = clock if clock is not None else FixedClock()
    context = HandlerContext(clock=clock, policy=policy if policy is not None else EnginePolicy())
    bus = MessageBus(lambda: uow, context, rules if rules is not None else RuleSet())
    return bus, uow, clock


def seed_catalog(
    uow: UnitOfWork,
    skus: Iterable[Sku] = (),
    suppliers: Iterable[Supplier] = (),
    items: Iterable[SupplierItem] = (),
    locations: Iterable[str] = ("main",),
) -> None:
    """Put catalog data in place through the ports and commit it."""
    with uow:
        for location in locations:
            uow.catalog.ensure_location(location)
        for supplier in suppliers:
            uow.catalog.upsert_supplier(supplier)
        for sku in skus:
            uow.catalog.upsert_sku(sku)
        for item in items:
            uow.catalog.upsert_supplier_item(item)
        uow.commit()


def outbox_rows(uow: FakeUnitOfWork, event: str | None = None) -> list[OutboxMessage]:
    rows = uow.state.outbox
    return [row for row in rows if event is None or row.payload.get("event") == event]


def _waiting_claims(state: FakeState) -> Iterator[tuple[Claim, Order, OrderLine]]:
    """Every open line still waiting for units, as the claim allocation ranks, with its order."""
    for order in state.orders.values():
        for line in order.lines:
            if line.is_open and line.backordered > 0:
                assert line.id is not None
                claim = Claim(
                    line.id,
                    order.id,
                    line.line_no,
                    line.sku,
                    line.backordered,
                    order.priority,
                    order.placed_at,
                    order.ship_complete,
                )
                yield claim, order, line
