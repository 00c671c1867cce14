"""Command handlers: plain functions ``handler(command, uow, ctx)``.

Each runs inside one unit of work opened by the message bus; the events it records are turned
into outbox rows by the rules in that same transaction. Stock is touched only after
``uow.stock.lock_skus`` so the last unit goes to exactly one order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import numpy as np

from backorder.domain import commands, events
from backorder.domain.allocation import Claim, Grant, allocate, allocate_ranked_bulk, release_for_shrinkage
from backorder.domain.errors import (
    DomainError,
    DuplicateShipment,
    InvalidQuantity,
    InvalidTransition,
    NothingLeftToShip,
    UnknownOrder,
    UnknownSku,
    UnknownSupplier,
    WouldTakeReserved,
)
from backorder.domain.eta import Supply, assign_etas
from backorder.domain.model import (
    Order,
    OrderLine,
    PoStatus,
    PurchaseOrder,
    PurchaseOrderLine,
    Sku,
    StockLevel,
    StockPosition,
    Supplier,
    SupplierItem,
)
from backorder.domain.replenishment import MAX_LINE_UNITS, is_breach, proposal_quantity
from backorder.services.policy import EnginePolicy
from backorder.services.ports import (
    SHIPMENT_SOURCE,
    AllocationRecord,
    Clock,
    StockScope,
    UnitOfWork,
    WaitingLine,
    grant_records,
)


@dataclass(frozen=True)
class HandlerContext:
    clock: Clock
    policy: EnginePolicy


Handler = Callable[[commands.Command, UnitOfWork, HandlerContext], None]


# --- shared steps -------------------------------------------------------------------------


def _require_skus(uow: UnitOfWork, codes: Iterable[str]) -> None:
    codes = set(codes)
    known = uow.catalog.get_skus(codes)
    for code in sorted(codes - set(known)):
        raise UnknownSku(code)


def _ledger_row(
    line: OrderLine, location: str, quantity: int, kind: str, source: str, ref: str | None, at: datetime
) -> AllocationRecord:
    """The allocation ledger's row for a change to what ``line`` holds (or ships) at ``location``."""
    return AllocationRecord(line.order_id, line.line_no, line.sku, location, quantity, kind, source, ref, at, line.id)


def _level(levels: dict[tuple[str, str], StockLevel], sku: str, location: str) -> StockLevel:
    key = (sku, location)
    if key not in levels:
        levels[key] = StockLevel(sku, location)
    return levels[key]


def _pools(uow: UnitOfWork, levels: dict[tuple[str, str], StockLevel]) -> dict[str, dict[str, int]]:
    skus = [sku for sku, _ in levels]
    # the locations' preference order matters only to a SKU stocked at more than one
    several = len(set(skus)) < len(skus)
    order = {loc: i for i, loc in enumerate(uow.catalog.locations())} if several else {}
    pools: dict[str, dict[str, int]] = defaultdict(dict)
    for (sku, loc), level in sorted(levels.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 1 << 30), kv[0][1])):
        pools[sku][loc] = level.available
    return pools


def _lead_time(uow: UnitOfWork, sku: str, ctx: HandlerContext) -> int:
    found = uow.catalog.lead_times([sku]).get(sku)
    return ctx.policy.default_lead_time_days if found is None else found


def refresh_etas(
    uow: UnitOfWork, skus: Iterable[str], ctx: HandlerContext, quiet_orders: frozenset[str] = frozenset()
) -> dict[int, date]:
    """Recompute ETAs of every waiting line of ``skus``; record a BackorderEtaChanged per
    order whose lines moved (orders in ``quiet_orders`` are announced elsewhere). Returns the
    ETA of every waiting line of those SKUs, by line id.

    One read of all the SKUs' waiting lines; supply is asked only for SKUs with open supply."""
    today = ctx.clock.today()
    all_etas: dict[int, date] = {}
    codes = sorted(set(skus))
    if not codes:
        return all_etas
    by_sku: dict[str, list[WaitingLine]] = defaultdict(list)
    for w in uow.orders.waiting(codes):
        by_sku[w.claim.sku].append(w)
    if not by_sku:
        return all_etas
    fallbacks = _fallback_etas(uow, by_sku, ctx)
    with_supply = uow.purchasing.skus_with_open_supply(by_sku)
    changes = _EtaChanges(quiet_orders)
    for sku in sorted(by_sku):
        waiting = sorted(by_sku[sku], key=lambda w: _rank(w.claim))
        fallback = fallbacks[sku]
        supply = _supply(uow, sku, fallback, today) if sku in with_supply else []
        etas = assign_etas([(w.claim.line_key, w.claim.wanted) for w in waiting], supply, fallback)
        all_etas.update(etas)
        for w in waiting:
            changes.note(w, etas[w.claim.line_key])
    changes.save(uow)
    return all_etas


class _EtaChanges:
    """ETA updates and the BackorderEtaChanged events they cause (one per order)."""

    def __init__(self, quiet_orders: frozenset[str]) -> None:
        self.quiet_orders = quiet_orders
        self.updates: dict[int, date | None] = {}
        self.moved: dict[tuple[str, str], list[events.EtaChange]] = defaultdict(list)

    def note(self, w: WaitingLine, new: date) -> None:
        if new == w.eta:
            return
        claim = w.claim
        self.updates[claim.line_key] = new
        if claim.order_id not in self.quiet_orders:
            self.moved[(claim.order_id, w.channel)].append(events.EtaChange(claim.line_no, claim.sku, w.eta, new))

    def save(self, uow: UnitOfWork) -> None:
        if self.updates:
            uow.orders.save_etas(self.updates)
        for (order_id, channel), moved in sorted(self.moved.items()):
            uow.record(events.BackorderEtaChanged(order_id, channel, tuple(sorted(moved, key=lambda c: c.line_no))))


def _fallback_etas(
    uow: UnitOfWork, skus: Iterable[str], ctx: HandlerContext, lead_times: Mapping[str, int | None] | None = None
) -> dict[str, date]:
    """The ETA of a line no open PO covers: today plus the preferred supplier's lead time
    (``lead_times``: the SKUs' ``catalog.lead_times``, when the caller has them)."""
    codes = sorted(set(skus))
    today = ctx.clock.today()
    if lead_times is None:
        lead_times = uow.catalog.lead_times(codes)
    default = ctx.policy.default_lead_time_days
    result: dict[str, date] = {}
    for sku in codes:
        found = lead_times.get(sku)
        result[sku] = today + timedelta(days=default if found is None else found)
    return result


def _effective_supply(supply: Sequence[Supply], fallback: date) -> list[Supply]:
    """The lots ETAs depend on. When no lot is expected after the fallback date, lots expected
    on it change nothing (a line they cover gets the fallback date, as does a line none covers):
    ``assign_etas`` gives the same dates without them — and a SKU whose only supply is a draft
    (counted as sent today) needs no walk at all."""
    lots = [s for s in supply if s.quantity > 0]
    if all(s.expected_on <= fallback for s in lots):
        return [s for s in lots if s.expected_on < fallback]
    return lots


def _supply(uow: UnitOfWork, sku: str, fallback: date, today: date) -> list[Supply]:
    return [
        Supply(max(s.expected_on, today), s.quantity)  # overdue POs: expected any day, never in the past
        for s in uow.purchasing.supply(sku, fallback)
    ]


def _rank(claim: Claim) -> tuple[int, datetime, str, int]:
    return (-claim.priority, claim.placed_at, claim.order_id, claim.line_no)


def apply_grants(
    uow: UnitOfWork,
    grants: Sequence[Grant],
    levels: dict[tuple[str, str], StockLevel],
    source: str,
    ref: str | None,
    at: datetime,
    sources: Collection[str] | None = None,
) -> None:
    """Give granted units to existing lines, hold them at their locations, write the ledger,
    and record one BackorderAllocated per order.

    ``sources``: the SKUs whose stock the source (a receipt, a release) added. A grant on
    another SKU (a ship-complete order's other line, judged whole) came from stock already
    there, and its ledger row says so: source ``stock``, no reference."""
    if not grants:
        return
    found = uow.orders.lines_by_id({g.line_key for g in grants})
    per_order: dict[str, list[Grant]] = defaultdict(list)
    for grant in grants:
        _, line = found[grant.line_key]
        line.take(grant.quantity)
        if line.backordered == 0:
            line.eta = None
        _level(levels, grant.sku, grant.location).allocated += grant.quantity
        per_order[grant.order_id].append(grant)
    changed = [line for _, line in found.values()]
    if sources is None or all(g.sku in sources for g in grants):
        records = grant_records(grants, source, ref, at)
    else:  # in grant order, each with its own source
        records = [
            record
            for g in grants
            for record in (
                grant_records([g], source, ref, at) if g.sku in sources else grant_records([g], "stock", None, at)
            )
        ]
    uow.orders.save_grants(changed, levels.values(), records)
    orders = {order.id: order for order, _ in found.values()}
    for order_id, order_grants in sorted(per_order.items()):
        order = orders[order_id]
        totals: dict[int, int] = defaultdict(int)
        for g in order_grants:
            totals[g.line_no] += g.quantity
        lines = tuple(
            events.AllocatedLine(no, order.line(no).sku, qty, order.line(no).backordered)
            for no, qty in sorted(totals.items())
        )
        ready = all(line.backordered == 0 for line in order.lines if line.is_open)
        uow.record(events.BackorderAllocated(order_id, order.channel, source, lines, ready))


def allocate_waiting(
    uow: UnitOfWork,
    skus: Iterable[str],
    ctx: HandlerContext,
    source: str,
    ref: str | None,
    quiet_orders: frozenset[str] = frozenset(),
    *,
    levels: dict[tuple[str, str], StockLevel] | None = None,
    prepared: StockScope | None = None,
) -> set[str]:
    """Hand available stock of ``skus`` to their waiting lines by the contract. Ship-complete
    orders pull in their other SKUs so they are judged whole. Returns the SKUs that changed.

    ``levels``: every stock level of some SKUs, as the caller read them under their locks and
    changed them; used instead of reading them again, and saved here. ``prepared``: what
    ``stock.lock_change_scope`` read for ``skus`` (one SKU) under its locks, nothing changed
    since in its scope but ``levels`` and its POs' received units; used instead of the reads.

    Each SKU's queue is read in rank order only as far as its stock can reach (see
    :func:`reachable_claims`), and the ETA step reuses what was read (:func:`_refresh_reached_etas`)."""
    skus = set(skus)
    scope = set(prepared.scope) if prepared is not None else uow.stock.lock_ship_complete_scope(skus)
    known = dict(levels or {})
    unread = scope - {sku for sku, _ in known}
    if prepared is not None:
        read = {key: level for key, level in prepared.levels.items() if key[0] in unread}
    else:
        read = uow.stock.levels(unread) if unread else {}
    levels = {**read, **known}
    pools = _pools(uow, levels)
    reached = reachable_claims(uow, scope, pools, ctx)
    grants = allocate(reached.claims, pools)
    apply_grants(uow, grants, levels, source, ref, ctx.clock.now(), skus)  # saves every level when it grants
    if known and not grants:
        uow.stock.save_levels(known.values())
    touched = {g.sku for g in grants}
    for sku in sorted(touched):
        uow.record(events.StockLevelChanged(sku))
    _refresh_reached_etas(uow, scope, ctx, quiet_orders, reached, grants, prepared)
    return touched


@dataclass
class ReachedQueues:
    """What :func:`reachable_claims` read: the claims to allocate, and per SKU the waiting lines
    read in rank order from the head of its queue (``whole``: the entire queue)."""

    claims: list[Claim]
    heads: dict[str, list[WaitingLine]]
    whole: set[str]


def reachable_claims(
    uow: UnitOfWork, scope: Iterable[str], pools: Mapping[str, Mapping[str, int]], ctx: HandlerContext
) -> ReachedQueues:
    """The waiting lines of ``scope`` that can get anything from ``pools``, by the contract.

    A SKU's queue is read in rank order until the units wanted by ordinary lines able to draw
    from every location that has stock reach the SKU's available units: each of those takes
    min(what remains, what it wants), so nothing remains after the last of them and no later
    line of that SKU can get any. A SKU without available stock is not read at all. Every
    ship-complete order met is read whole (its lines of other SKUs too), so it is judged as a
    whole at its rank. ``allocate`` over these claims grants exactly what it grants over every
    waiting line of ``scope`` (tests/unit/test_reachable_claims.py)."""
    claims: dict[int, Claim] = {}
    heads: dict[str, list[WaitingLine]] = {}
    whole: set[str] = set()
    whole_orders: set[str] = set()
    for sku in sorted(set(scope)):
        pool = pools.get(sku, {})
        stocked = {loc for loc, units in pool.items() if units > 0}
        need = sum(pool[loc] for loc in stocked)
        head: list[WaitingLine] = []
        heads[sku] = head
        if need <= 0:
            continue
        offset, page = 0, need + 8  # each line wants at least one unit
        while need > 0:
            got = uow.orders.waiting_page(sku, offset, page)
            for w in got:
                head.append(w)
                claim = w.claim
                if claim.ship_complete:
                    whole_orders.add(claim.order_id)
                    continue
                claims[claim.line_key] = _with_locations(claim, w.channel, ctx)
                locations = ctx.policy.locations_for(w.channel)
                if locations is None or stocked.issubset(locations):
                    need -= claim.wanted
                    if need <= 0:
                        break  # the stock runs out at this line
            else:
                if len(got) < page:
                    whole.add(sku)
                    break
                offset, page = offset + page, page * 2
    if whole_orders:
        for w in uow.orders.waiting_of_orders(whole_orders):
            claims[w.claim.line_key] = _with_locations(w.claim, w.channel, ctx)
    return ReachedQueues(list(claims.values()), heads, whole)


def _refresh_reached_etas(
    uow: UnitOfWork,
    scope: set[str],
    ctx: HandlerContext,
    quiet_orders: frozenset[str],
    reached: ReachedQueues,
    grants: Sequence[Grant],
    prepared: StockScope | None = None,
) -> dict[int, date | None]:
    """What ``refresh_etas(scope)`` does after an allocation, reading little: a SKU without open
    supply gives every waiting line the fallback date, so only lines not already on it are read;
    a SKU with supply reads its queue (starting from the head already read, less what was just
    granted) only until the supply is spoken for — every later line gets the fallback too.
    ``prepared``: lead times and (a superset of) the SKUs with dated supply, read earlier in the
    transaction. Returns the ETAs it changed, by line id (a line without one always changes)."""
    codes = sorted(scope)
    if not codes:
        return {}
    today = ctx.clock.today()
    fallbacks = _fallback_etas(uow, codes, ctx, prepared.lead_times if prepared is not None else None)
    supplies: dict[str, list[Supply]] = {}
    dated = (
        prepared.dated_supply & scope
        if prepared is not None
        else uow.purchasing.skus_with_open_supply(codes, dated_only=True)
    )
    # Undated supply (a draft) is expected on the fallback date itself: alone, it moves no ETA.
    for sku in sorted(dated):
        supply = _effective_supply(_supply(uow, sku, fallbacks[sku], today), fallbacks[sku])
        if supply:
            supplies[sku] = supply
    changes = _EtaChanges(quiet_orders)
    plain = {sku: fallbacks[sku] for sku in codes if sku not in supplies}
    if plain:
        for w in uow.orders.waiting_eta_not(plain):
            changes.note(w, plain[w.claim.sku])
    granted: dict[int, int] = defaultdict(int)
    for g in grants:
        granted[g.line_key] += g.quantity
    for sku, supply in supplies.items():
        fallback = fallbacks[sku]
        units = sum(s.quantity for s in supply)
        covered: list[WaitingLine] = []
        wanted: list[int] = []
        read_all = sku in reached.whole
        for w in reached.heads.get(sku, []):  # the head already read, as it waits now
            left = w.claim.wanted - granted.get(w.claim.line_key, 0)
            if left > 0:
                covered.append(w)
                wanted.append(left)
        total = sum(wanted)
        offset, page = len(covered), max(units - total, 0) + 8
        while total < units and not read_all:
            got = uow.orders.waiting_page(sku, offset, page)
            for w in got:
                covered.append(w)
                wanted.append(w.claim.wanted)
                total += w.claim.wanted
            read_all = len(got) < page
            offset, page = offset + len(got), page * 2
        reach = 0  # the lines up to the one where the supply runs out; every later line gets the fallback
        for units_wanted in wanted:
            reach += 1
            units -= units_wanted
            if units <= 0:
                break
        etas = assign_etas(
            [(w.claim.line_key, n) for w, n in zip(covered[:reach], wanted, strict=False)], supply, fallback
        )
        for w in covered[:reach]:
            changes.note(w, etas[w.claim.line_key])
        for w in uow.orders.waiting_eta_not({sku: fallback}):
            if w.claim.line_key not in etas:
                changes.note(w, fallback)
    changes.save(uow)
    return changes.updates


def _with_locations(claim: Claim, channel: str, ctx: HandlerContext) -> Claim:
    locations = ctx.policy.locations_for(channel)
    if locations is None:
        return claim
    return Claim(
        claim.line_key,
        claim.order_id,
        claim.line_no,
        claim.sku,
        claim.wanted,
        claim.priority,
        claim.placed_at,
        claim.ship_complete,
        locations,
    )


def withdraw_shrinkage(
    uow: UnitOfWork, sku: str, levels: dict[tuple[str, str], StockLevel], ctx: HandlerContext
) -> set[str]:
    """Where on hand fell below what is promised, lowest-ranked lines give units back. Returns
    the SKUs whose stock that freed (none when nothing was withdrawn): the caller saves
    ``levels`` and then hands what is free on them to the waiting lines."""
    shortfall = {
        (level.sku, level.location): level.allocated - max(level.on_hand, 0)
        for level in levels.values()
        if level.sku == sku and level.allocated > max(level.on_hand, 0)
    }
    if not shortfall:
        return set()
    holdings = [h for (s, loc) in shortfall for h in uow.orders.holdings(s, loc)]
    releases = release_for_shrinkage(holdings, shortfall)
    found = uow.orders.lines_by_id({r.line_key for r in releases})
    now = ctx.clock.now()
    per_order: dict[tuple[str, str], int] = defaultdict(int)
    for release in releases:
        order, line = found[release.line_key]
        line.give_back(release.quantity)
        levels[(release.sku, release.location)].allocated -= release.quantity
        per_order[(order.id, order.channel)] += release.quantity
    uow.orders.save_lines(line for _, line in found.values())
    uow.orders.record_allocations(
        [
            AllocationRecord(
                r.order_id, r.line_no, r.sku, r.location, -r.quantity, "withdraw", "shrinkage", None, now, r.line_key
            )
            for r in releases
        ]
    )
    withdrawn = {(order_id, channel, sku): quantity for (order_id, channel), quantity in per_order.items()}
    whole = {o.id: o for o, _ in found.values() if o.ship_complete}
    for key, quantity in _withdraw_whole_ship_complete(uow, sku, whole, levels, ctx).items():
        withdrawn[key] = withdrawn.get(key, 0) + quantity
    for (order_id, channel, code), quantity in sorted(withdrawn.items()):
        uow.record(events.AllocationWithdrawn(order_id, channel, code, quantity))
    return {sku} | {code for _, _, code in withdrawn}


def _withdraw_whole_ship_complete(
    uow: UnitOfWork,
    sku: str,
    orders: Mapping[str, Order],
    levels: dict[tuple[str, str], StockLevel],
    ctx: HandlerContext,
) -> dict[tuple[str, str, str], int]:
    """A ship-complete order holds all of its lines or nothing: one that gave units back to a
    shrinkage gives back what its lines still hold, on every SKU. ``levels``: the shrunk SKU's,
    saved by the caller; the other SKUs' levels are saved here. Returns the units given back by
    (order, channel, SKU); the caller hands them out by the contract."""
    held = [
        (order, line) for order in orders.values() for line in order.lines if line.is_open and line.unshipped_allocated
    ]
    if not held:
        return {}
    others = sorted({line.sku for _, line in held} - {sku})
    uow.stock.lock_skus(others)
    other_levels = uow.stock.levels(others)
    now = ctx.clock.now()
    records: list[AllocationRecord] = []
    per_order_sku: dict[tuple[str, str, str], int] = defaultdict(int)
    for order, line in held:
        assert line.id is not None
        for location, quantity in sorted(uow.orders.held_at(line.id).items()):
            if quantity <= 0:
                continue
            line.give_back(quantity)
            level = _level(levels if line.sku == sku else other_levels, line.sku, location)
            level.allocated -= quantity
            per_order_sku[(order.id, order.channel, line.sku)] += quantity
            records.append(_ledger_row(line, location, -quantity, "withdraw", "ship_complete", None, now))
    uow.orders.save_lines(line for _, line in held)
    uow.orders.record_allocations(records)
    if others:
        uow.stock.save_levels(other_levels.values())
        for code in others:
            uow.record(events.StockLevelChanged(code))
    return dict(per_order_sku)


def check_thresholds(
    uow: UnitOfWork, skus: Iterable[str], ctx: HandlerContext, positions: Mapping[str, StockPosition] | None = None
) -> None:
    """A SKU whose projected stock is below its reorder point gets a proposal on its preferred
    supplier's open draft PO (one draft per supplier; demand already on order is counted).
    ``positions``: the SKUs' positions as they are now, when the caller knows them."""
    codes = sorted(set(skus))
    catalog = uow.catalog.get_skus(codes)
    if positions is None:
        positions = uow.stock.positions(codes)
    breaches = [
        (code, sku, position)
        for code in codes
        if (sku := catalog.get(code)) is not None
        and (position := positions.get(code)) is not None
        and is_breach(position, sku)
    ]
    if not breaches:
        return
    supplied = [code for code, sku, _ in breaches if sku.preferred_supplier]
    items = uow.catalog.supplier_items(supplied) if supplied else {}
    for code, sku, position in breaches:
        uow.record(events.StockBelowThreshold(code, position.projected, sku.reorder_point, sku.preferred_supplier))
        if not sku.preferred_supplier:
            uow.record(
                events.ReplenishmentBlocked(code, position.projected, "no preferred supplier is set for this SKU")
            )
            continue
        item = items.get((sku.preferred_supplier, code)) or SupplierItem(sku.preferred_supplier, code)
        quantity = proposal_quantity(position, sku, item)
        if quantity <= 0:
            continue
        draft = uow.purchasing.open_draft(sku.preferred_supplier)
        on_draft = line.quantity if draft is not None and (line := draft.line_for(code)) is not None else 0
        if on_draft + quantity > MAX_LINE_UNITS:
            reason = f"{on_draft + quantity} units is more than a purchase order line holds; check this SKU's orders and stock"
            uow.record(events.ReplenishmentBlocked(code, position.projected, reason))
            continue
        if draft is None:
            now = ctx.clock.now()
            draft = PurchaseOrder(uow.purchasing.next_number(now), sku.preferred_supplier, now)
            draft.lines.append(PurchaseOrderLine(code, quantity, item.unit_cost))
            uow.purchasing.add(draft)
        else:
            line = draft.line_for(code)
            if line is None:
                draft.lines.append(PurchaseOrderLine(code, quantity, item.unit_cost))
            else:
                line.quantity += quantity
            uow.purchasing.save(draft)
        uow.record(events.PurchaseOrderProposed(draft.number, draft.supplier, code, quantity))
        uow.record(events.StockLevelChanged(code))


def _send(uow: UnitOfWork, po: PurchaseOrder, ctx: HandlerContext) -> None:
    codes = [line.sku for line in po.lines]
    items = uow.catalog.supplier_items(codes)
    lead = {code: _lead_time(uow, code, ctx) for code in codes}
    po.mark_sent(ctx.clock.now(), lead)
    uow.purchasing.save(po)
    supplier = uow.catalog.get_supplier(po.supplier)
    uow.record(
        events.PurchaseOrderSent(
            po.number,
            po.supplier,
            supplier.email if supplier else "",
            tuple(
                events.PoLineSummary(
                    line.sku,
                    (items.get((po.supplier, line.sku)) or SupplierItem(po.supplier, line.sku)).supplier_sku,
                    line.quantity,
                    line.unit_cost,
                    line.expected_on,
                )
                for line in po.lines
                if line.quantity > 0  # a line edited down to 0 is not sent to the supplier
            ),
        )
    )
    refresh_etas(uow, codes, ctx)


# --- command handlers ---------------------------------------------------------------------


def place_order(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.PlaceOrder)
    _place_order(cmd, uow, ctx)


def _place_order(
    cmd: commands.PlaceOrder, uow: UnitOfWork, ctx: HandlerContext, channel_view: Mapping[str, int] | None = None
) -> None:
    """``channel_view``: the channel's view of the order, stored with it (``channel_order``)."""
    if not cmd.lines:
        raise InvalidQuantity(f"order {cmd.order_id} has no lines")
    if cmd.placed_at > ctx.clock.now() + RECEIPT_CLOCK_SLACK:
        # ranked by placed_at, an order "placed" next year would wait behind every later order
        raise DomainError(
            f"order {cmd.order_id}: placed_at {cmd.placed_at.isoformat()} is in the future; "
            "check the time (and its zone) the order was placed"
        )
    if len({line.line_no for line in cmd.lines}) != len(cmd.lines):
        raise InvalidQuantity(f"order {cmd.order_id} repeats a line number")
    skus = sorted({line.sku for line in cmd.lines})
    known = uow.stock.lock_existing_skus(skus)  # checked and locked at once
    for code in skus:
        if code not in known:
            raise UnknownSku(code)
    # An order already stored (by another transaction too) makes ``orders.add`` raise
    # DuplicateOrder before anything is written: the order is not read here.
    order = Order(
        cmd.order_id,
        cmd.channel,
        cmd.placed_at,
        cmd.priority,
        cmd.ship_complete,
        cmd.customer_email,
        cmd.customer_phone,
        cmd.customer_name,
        [
            OrderLine(cmd.order_id, line.line_no, line.sku, line.quantity, backordered=line.quantity)
            for line in cmd.lines
        ],
        cmd.reference,
    )
    basis = uow.stock.read_locked(skus, with_positions=True)  # levels, what the ETA step reads, positions
    levels = basis.levels
    claims = [
        _with_locations(
            Claim(
                line.line_no,
                order.id,
                line.line_no,
                line.sku,
                line.quantity,
                order.priority,
                order.placed_at,
                order.ship_complete,
            ),
            order.channel,
            ctx,
        )
        for line in order.lines
    ]
    grants = allocate(claims, _pools(uow, levels))
    for grant in grants:
        order.line(grant.line_no).take(grant.quantity)
        _level(levels, grant.sku, grant.location).allocated += grant.quantity
    # A waiting line of a SKU without dated supply gets the fallback date whatever its rank:
    # stored with the line, so the ETA step below only looks for other lines to move.
    undated = {line.sku for line in order.lines if line.backordered > 0} - basis.dated_supply
    for sku, eta in _fallback_etas(uow, undated, ctx, basis.lead_times).items():
        for line in order.lines:
            if line.sku == sku and line.backordered > 0:
                line.eta = eta
    uow.orders.add(order, channel_view)
    if grants:  # else no level changed
        line_ids = {line.line_no: line.id for line in order.lines if line.id is not None}
        records = grant_records(grants, "arrival", None, ctx.clock.now(), line_ids)
        uow.orders.save_grants((), levels.values(), records)
    backordered = [line for line in order.lines if line.backordered > 0]
    # ``refresh_etas`` of these SKUs without reading their whole queues: a new line of a SKU
    # with dated supply has no ETA yet, so it is among the ETAs this sets; the others have theirs.
    nothing_read = ReachedQueues([], {}, set())
    waiting = {line.sku for line in backordered}
    etas = _refresh_reached_etas(uow, waiting, ctx, frozenset({order.id}), nothing_read, (), basis)
    if backordered:
        uow.record(
            events.BackorderCreated(
                order.id,
                order.channel,
                tuple(
                    events.BackorderedLine(line.line_no, line.sku, line.backordered, etas.get(line.id or -1, line.eta))
                    for line in backordered
                ),
            )
        )
    for sku in sorted({g.sku for g in grants}):
        uow.record(events.StockLevelChanged(sku))
    check_thresholds(uow, skus, ctx, _positions_after(basis, grants, order))


def _positions_after(basis: StockScope, grants: Sequence[Grant], order: Order) -> dict[str, StockPosition] | None:
    """The positions of the order's SKUs once it is placed: as read with the lock, plus what the
    order took and what of it waits (None: the store did not read them with the lock, and
    ``check_thresholds`` reads them)."""
    if basis.positions is None:
        return None
    taken: dict[str, int] = defaultdict(int)
    for grant in grants:
        taken[grant.sku] += grant.quantity
    waiting: dict[str, int] = defaultdict(int)
    for line in order.lines:
        waiting[line.sku] += line.backordered
    return {
        code: replace(before, allocated=before.allocated + taken[code], backordered=before.backordered + waiting[code])
        for code, before in basis.positions.items()
    }


def _locked_order(uow: UnitOfWork, order_id: str, first: Order | None = None) -> Order:
    """The order, read after its SKUs are locked: a read before the lock may be stale by the
    time the lock is granted (another transaction shipped or cancelled it meanwhile).
    ``first``: the order as the caller read it in this transaction (not read again to find
    its SKUs)."""
    order = first if first is not None else uow.orders.get(order_id)
    if order is None:
        raise UnknownOrder(order_id)
    uow.stock.lock_skus({line.sku for line in order.lines})
    fresh = uow.orders.get(order_id)
    assert fresh is not None
    return fresh


def cancel_order(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.CancelOrder)
    order = _locked_order(uow, cmd.order_id)
    chosen = [order.line(no) for no in cmd.line_nos] if cmd.line_nos else order.lines
    lines = [line for line in chosen if line.is_open]
    if not lines:
        return
    skus = sorted({line.sku for line in lines})
    levels = uow.stock.levels(skus)
    now = ctx.clock.now()
    records: list[AllocationRecord] = []
    cancelled: list[events.CancelledLine] = []
    for line in lines:
        assert line.id is not None
        held = uow.orders.held_at(line.id)
        released, waiting = line.cancel()
        for location, quantity in held.items():
            _level(levels, line.sku, location).allocated -= quantity
            records.append(_ledger_row(line, location, -quantity, "release", "cancel", cmd.reason, now))
        assert released == sum(held.values())
        cancelled.append(events.CancelledLine(line.line_no, line.sku, released + waiting))
    uow.orders.save_lines(lines)
    uow.stock.save_levels(levels.values())
    uow.orders.record_allocations(records)
    uow.record(events.BackorderCancelled(order.id, order.channel, cmd.reason, tuple(cancelled)))
    for sku in skus:
        uow.record(events.StockLevelChanged(sku))
    # the order's remaining lines too: a ship-complete order may now be coverable
    still_open = {line.sku for line in order.lines if line.is_open}
    allocate_waiting(uow, set(skus) | still_open, ctx, "release", f"cancel:{order.id}")


def ship_line(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext, shipment_ref: str | None = None) -> None:
    """``shipment_ref`` (issue 3): the channel's identity of the shipment, kept in the ledger."""
    assert isinstance(cmd, commands.ShipLine)
    source, ref = (SHIPMENT_SOURCE, shipment_ref) if shipment_ref else ("ship", None)
    order = _locked_order(uow, cmd.order_id)
    line = order.line(cmd.line_no)
    assert line.id is not None
    levels = uow.stock.levels([line.sku])
    held = uow.orders.held_at(line.id)
    from_backorder = line.ship(cmd.quantity)
    now = ctx.clock.now()
    records: list[AllocationRecord] = []
    from_held = cmd.quantity - from_backorder
    released_elsewhere = 0
    preferred = [cmd.location] if cmd.location in held else []
    for location in preferred + [loc for loc in held if loc not in preferred]:
        take = min(held[location], from_held)
        if take <= 0:
            continue
        level = _level(levels, line.sku, location)
        level.allocated -= take
        from_held -= take
        if cmd.location is None or location == cmd.location:
            level.on_hand -= take
            records.append(_ledger_row(line, location, take, "ship", source, ref, now))
        else:  # it left from cmd.location: what the line held here is free again, for the next lines
            released_elsewhere += take
            records.append(_ledger_row(line, location, -take, "release", source, ref or "shipped elsewhere", now))
    direct = from_backorder + released_elsewhere
    if direct:
        location = cmd.location or (uow.catalog.locations() or ["default"])[0]
        level = _level(levels, line.sku, location)
        free = max(level.on_hand - level.allocated, 0)
        if direct > free and not cmd.take_reserved:  # nothing is saved: the unit of work rolls back
            raise WouldTakeReserved(
                order.id, line.line_no, line.sku, location, cmd.quantity, cmd.quantity - direct + free
            )
        uow.catalog.ensure_location(location)
        _level(levels, line.sku, location).on_hand -= direct
        records.append(_ledger_row(line, location, direct, "ship_direct", source, ref or "unallocated", now))
    uow.orders.save_lines([line])
    uow.stock.save_levels(levels.values())
    uow.orders.record_allocations(records)
    uow.record(events.LineShipped(order.id, order.channel, line.line_no, line.sku, cmd.quantity))
    uow.record(events.StockLevelChanged(line.sku))
    freed = withdraw_shrinkage(uow, line.sku, levels, ctx)
    if freed:
        uow.stock.save_levels(levels.values())
    if freed or released_elsewhere:
        allocate_waiting(uow, freed | {line.sku}, ctx, "adjustment", "shipment")
    if order.ship_complete and from_backorder:
        # the channel shipped a line we were holding the order for: the rest may now be coverable
        allocate_waiting(uow, {other.sku for other in order.lines if other.is_open}, ctx, "release", f"ship:{order.id}")
    refresh_etas(uow, [line.sku], ctx)
    check_thresholds(uow, [line.sku], ctx)


def _change_on_hand(
    uow: UnitOfWork,
    sku: str,
    location: str,
    delta: int,
    ctx: HandlerContext,
    source: str,
    ref: str | None,
    prepared: StockScope | None = None,
) -> None:
    """``prepared``: ``stock.lock_change_scope(sku)``, read under the locks (its levels then
    stand for ``stock.levels([sku])``)."""
    if prepared is not None:
        levels = {key: level for key, level in prepared.levels.items() if key[0] == sku}
    else:
        levels = uow.stock.levels([sku])
    if (sku, location) not in levels:
        uow.catalog.ensure_location(location)  # a level there means the location exists
    _level(levels, sku, location).on_hand += delta
    withdrawn = withdraw_shrinkage(uow, sku, levels, ctx)
    uow.record(events.StockLevelChanged(sku))
    if delta > 0 or withdrawn:  # withdrawn units may still be covered from another location
        # lines that gave units back may have widened the ship-complete scope: read it again then
        reuse = prepared if not withdrawn else None
        kind = source if delta > 0 else "adjustment"
        allocate_waiting(uow, [sku], ctx, kind, ref, levels=levels, prepared=reuse)  # saves them
        if withdrawn - {sku}:  # a ship-complete order gave back its other SKUs' units too
            allocate_waiting(uow, withdrawn - {sku}, ctx, "release", "ship_complete")
    else:
        uow.stock.save_levels(levels.values())
    check_thresholds(uow, [sku], ctx)


RECEIPT_CLOCK_SLACK = timedelta(hours=24)
"""How far ahead of our clock a receipt's or an order's time may be (time zones, a clock that
runs fast)."""


def receive_stock(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.ReceiveStock)
    if cmd.quantity <= 0:
        raise InvalidQuantity(f"receipt of {cmd.sku}: quantity must be positive, got {cmd.quantity}")
    if cmd.received_at > ctx.clock.now() + RECEIPT_CLOCK_SLACK:
        raise DomainError(
            f"receipt of {cmd.sku}: received_at {cmd.received_at.isoformat()} is in the future; "
            "stock is booked when it has arrived"
        )
    # The SKU, its ship-complete scope locked, and what allocating over it reads, at once; the
    # location is ensured with the stock level (_change_on_hand).
    prepared = uow.stock.lock_change_scope(cmd.sku)
    if prepared is None:
        raise UnknownSku(cmd.sku)
    left = cmd.quantity
    if cmd.po_number:
        po = uow.purchasing.get(cmd.po_number)
        if po is None:
            raise DomainError(f"receipt names purchase order {cmd.po_number!r}, which does not exist")
        if po.line_for(cmd.sku) is None:
            raise DomainError(
                f"purchase order {cmd.po_number} has no line for {cmd.sku}: name the PO that ordered it, "
                "or book the receipt without a PO"
            )
        candidates = [po]
    elif cmd.sku in prepared.sent_supply:  # a receipt names no PO: book it against sent POs only
        candidates = [po for po in uow.purchasing.open_for_sku(cmd.sku) if po.status is not PoStatus.DRAFT]
    else:  # no sent PO has units outstanding for it (a draft was never ordered)
        candidates = []
    for po in candidates:
        booked = po.receive(cmd.sku, left)
        if booked:
            left -= booked
            uow.purchasing.save(po)
        if left == 0:
            break
    receipt_id = uow.stock.record_receipt(cmd.sku, cmd.location, cmd.quantity, cmd.received_at, cmd.po_number)
    uow.record(events.StockReceived(cmd.sku, cmd.location, cmd.quantity, cmd.po_number))
    _change_on_hand(uow, cmd.sku, cmd.location, cmd.quantity, ctx, "receipt", f"R{receipt_id}", prepared)


def adjust_stock(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.AdjustStock)
    _require_skus(uow, [cmd.sku])
    uow.catalog.ensure_location(cmd.location)
    uow.stock.lock_skus([cmd.sku])
    if cmd.delta:
        _change_on_hand(uow, cmd.sku, cmd.location, cmd.delta, ctx, "adjustment", cmd.reason)


def set_stock_level(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.SetStockLevel)
    _require_skus(uow, [cmd.sku])
    uow.catalog.ensure_location(cmd.location)
    uow.stock.lock_skus([cmd.sku])
    if cmd.observed_at is not None:
        last = uow.stock.last_observed(cmd.sku, cmd.location)
        if last is not None and cmd.observed_at <= last:
            return  # an older report than the one applied: out of order, ignored
        uow.stock.mark_observed(cmd.sku, cmd.location, cmd.observed_at)
    else:  # a count is true as of now: channel reports observed before it are stale
        uow.stock.mark_observed(cmd.sku, cmd.location, ctx.clock.now())
    current = uow.stock.levels([cmd.sku]).get((cmd.sku, cmd.location))
    delta = cmd.on_hand - (current.on_hand if current else 0)
    if delta or current is None:
        _change_on_hand(uow, cmd.sku, cmd.location, delta, ctx, "adjustment", cmd.source)


def upsert_supplier(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.UpsertSupplier)
    if cmd.lead_time_days < 0:
        raise InvalidQuantity(f"supplier {cmd.code}: lead time cannot be negative")
    uow.catalog.upsert_supplier(Supplier(cmd.code, cmd.name, cmd.email, cmd.lead_time_days))


def upsert_sku(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.UpsertSku)
    if cmd.supplier and uow.catalog.get_supplier(cmd.supplier) is None:
        raise UnknownSupplier(cmd.supplier)
    for name in ("safety_stock", "reorder_point", "order_up_to"):
        if getattr(cmd, name) < 0:
            raise InvalidQuantity(f"SKU {cmd.code}: {name} cannot be negative")
    if cmd.moq < 1 or cmd.case_pack < 1:
        raise InvalidQuantity(f"SKU {cmd.code}: moq and case_pack must be at least 1")
    uow.catalog.upsert_sku(
        Sku(
            cmd.code,
            cmd.name,
            cmd.brand,
            cmd.product_line,
            cmd.colour,
            cmd.pigments,
            cmd.size,
            cmd.hazmat,
            cmd.safety_stock,
            cmd.reorder_point,
            cmd.order_up_to,
            cmd.supplier,
            cmd.unit_price,
        )
    )
    if cmd.supplier:
        uow.catalog.upsert_supplier_item(
            SupplierItem(
                cmd.supplier, cmd.code, cmd.supplier_sku, cmd.unit_cost, cmd.lead_time_days, cmd.moq, cmd.case_pack
            )
        )


def _supply_etas(waiting: Sequence[tuple[int, int]], supply: Sequence[Supply], fallback: date) -> dict[int, date]:
    """``assign_etas`` for one SKU with numpy: a line's ETA is the date of the lot that covers
    its last unit (lots by expected date), ``fallback`` past the last lot. Same result."""
    lots = sorted((s for s in supply if s.quantity > 0), key=lambda s: s.expected_on)
    if not waiting:
        return {}
    keys = [key for key, _ in waiting]
    need = np.fromiter((units for _, units in waiting), dtype=np.int64, count=len(waiting))
    if not lots or np.any(need <= 0):
        return assign_etas(waiting, supply, fallback)
    covered = np.cumsum(np.fromiter((s.quantity for s in lots), dtype=np.int64, count=len(lots)))
    lot = np.searchsorted(covered, np.cumsum(need), side="left").tolist()
    dates = [s.expected_on for s in lots]
    return {key: dates[i] if i < len(dates) else fallback for key, i in zip(keys, lot, strict=True)}


def _refresh_etas_bulk(uow: UnitOfWork, skus: Iterable[str], ctx: HandlerContext) -> None:
    """``refresh_etas`` for a full run: the same ETAs and events, with no per-SKU round trip.
    A SKU without open supply gets today + lead time on every waiting line (one set-based
    write of the ETAs that differ); a SKU with open supply walks its POs by expected date."""
    codes = sorted(set(skus))
    if not codes:
        return
    today = ctx.clock.today()
    lead_times = uow.bulk.lead_times(codes)

    def fallback(sku: str) -> date:
        found = lead_times.get(sku)
        return today + timedelta(days=ctx.policy.default_lead_time_days if found is None else found)

    open_supply = uow.bulk.open_supply()
    supplied = open_supply.keys() & set(codes)
    due_by_sku = {sku: fallback(sku) for sku in codes if sku not in supplied}
    due_by_line: dict[int, date] = {}
    if supplied:
        for sku, waiting in uow.bulk.waiting_ranked(supplied).items():
            last = fallback(sku)
            # a draft counts as if sent today; overdue POs are expected any day, never in the past
            supply = [Supply(max(expected or last, today), units) for expected, units in open_supply[sku]]
            due_by_line.update(_supply_etas(waiting, supply, last))
    uow.record(*uow.bulk.save_etas(due_by_sku, due_by_line))


def run_backorder_processing(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.RunBackorderProcessing)
    if cmd.skus:
        _require_skus(uow, cmd.skus)
        allocate_waiting(uow, cmd.skus, ctx, "bop", None)
        return
    # The full run: queues without ship-complete orders or location limits get the
    # vectorised contract; the rest get the general walk, in memory, over what the queues'
    # grants leave; both are written at once, then ETAs of every SKU involved are refreshed.
    queue = uow.bulk.load_queue(ctx.policy.restricted_channels)
    granted = allocate_ranked_bulk(queue.sku_index, queue.wanted, queue.available)
    walk: list[Grant] = []
    scope = {queue.sku_codes[i] for i in set(queue.sku_index[granted > 0].tolist())}
    if queue.needs_walk:
        lines, pools = uow.bulk.walk_lines(queue, granted)
        walk = allocate([_with_locations(w.claim, w.channel, ctx) for w in lines], pools)
        scope |= queue.needs_walk | {w.claim.sku for w in lines}
    uow.record(*uow.bulk.apply(queue, granted, ctx.clock.now(), "bop", walk))
    touched = {queue.sku_codes[i] for i in set(queue.sku_index[granted > 0].tolist())} | {g.sku for g in walk}
    for sku in sorted(touched):
        uow.record(events.StockLevelChanged(sku))
    _refresh_etas_bulk(uow, scope, ctx)


def recompute_etas(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.RecomputeEtas)
    refresh_etas(uow, cmd.skus, ctx)


def send_due_purchase_orders(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.SendDuePurchaseOrders)
    if not (cmd.force or ctx.policy.auto_send_purchase_orders):
        return
    due = ctx.clock.now() - timedelta(minutes=ctx.policy.po_consolidation_minutes)
    for po in uow.purchasing.drafts():
        if not any(line.quantity > 0 for line in po.lines):
            continue  # edited down to nothing: it waits for new demand (or staff) instead of failing the rest
        if cmd.force or po.created_at <= due:
            _send(uow, po, ctx)


def send_purchase_order(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.SendPurchaseOrder)
    po = uow.purchasing.get(cmd.po_number)
    if po is None:
        raise DomainError(f"no purchase order {cmd.po_number!r}")
    _send(uow, po, ctx)


def acknowledge_purchase_order(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.AcknowledgePurchaseOrder)
    po = uow.purchasing.get(cmd.po_number)
    if po is None:
        raise DomainError(f"no purchase order {cmd.po_number!r}")
    po.acknowledge(cmd.expected_on)
    uow.purchasing.save(po)
    uow.record(events.PurchaseOrderAcknowledged(po.number, po.supplier, cmd.expected_on))
    if cmd.expected_on is not None:
        skus = [line.sku for line in po.lines if line.outstanding > 0]
        uow.stock.lock_skus(skus)
        refresh_etas(uow, skus, ctx)


def close_short_purchase_order(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.CloseShortPurchaseOrder)
    po = uow.purchasing.get(cmd.po_number)
    if po is None:
        raise DomainError(f"no purchase order {cmd.po_number!r}")
    short = po.close_short()
    uow.purchasing.save(po)
    uow.stock.lock_skus(short)
    refresh_etas(uow, short, ctx)
    check_thresholds(uow, short, ctx)


def change_priority(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.ChangePriority)
    order = uow.orders.get(cmd.order_id)
    if order is None:
        raise UnknownOrder(cmd.order_id)
    uow.orders.save_priority(order.id, cmd.priority)
    refresh_etas(uow, {line.sku for line in order.lines if line.is_open}, ctx)


HANDLERS: dict[type[commands.Command], Handler] = {
    commands.PlaceOrder: place_order,
    commands.CancelOrder: cancel_order,
    commands.ShipLine: ship_line,
    commands.ReceiveStock: receive_stock,
    commands.AdjustStock: adjust_stock,
    commands.SetStockLevel: set_stock_level,
    commands.RunBackorderProcessing: run_backorder_processing,
    commands.RecomputeEtas: recompute_etas,
    commands.SendDuePurchaseOrders: send_due_purchase_orders,
    commands.SendPurchaseOrder: send_purchase_order,
    commands.ChangePriority: change_priority,
    commands.CloseShortPurchaseOrder: close_short_purchase_order,
    commands.AcknowledgePurchaseOrder: acknowledge_purchase_order,
    commands.UpsertSupplier: upsert_supplier,
    commands.UpsertSku: upsert_sku,
}


# --- issue 3 (channels) ---------------------------------------------------------------------


def ship_sku(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.ShipSku)
    if cmd.quantity <= 0:
        raise InvalidQuantity(f"shipment of {cmd.sku} on {cmd.order_id}: quantity must be positive")
    order = _locked_order(uow, cmd.order_id)
    # Under the order's SKU locks: a replay of the same shipment waits here and then sees it.
    if cmd.shipment_ref and uow.orders.shipment_recorded(order.id, cmd.shipment_ref):
        raise DuplicateShipment(order.id, cmd.shipment_ref)
    left = cmd.quantity
    for line in sorted(order.lines, key=lambda x: x.line_no):
        if left == 0:
            break
        if line.sku != cmd.sku or not line.is_open:
            continue
        take = min(left, line.quantity - line.shipped)
        if take > 0:
            ship_line(commands.ShipLine(order.id, line.line_no, take, cmd.location), uow, ctx, cmd.shipment_ref)
            left -= take
    if left == cmd.quantity:
        if any(line.sku == cmd.sku for line in order.lines):
            raise NothingLeftToShip(order.id, cmd.sku)
        raise DomainError(f"order {cmd.order_id} has no line of {cmd.sku} to ship")


def redact_customer(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.RedactCustomer)
    uow.orders.redact_customer(cmd.channel, cmd.email, cmd.order_ids)


HANDLERS[commands.ShipSku] = ship_sku
HANDLERS[commands.RedactCustomer] = redact_customer


# --- issue 5 (staff dashboard, self-service) ------------------------------------------------


def edit_draft_purchase_order_line(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.EditDraftPurchaseOrderLine)
    if cmd.quantity < 0:
        raise InvalidQuantity(f"purchase order {cmd.po_number}: quantity cannot be negative")
    po = uow.purchasing.get(cmd.po_number)
    if po is None:
        raise DomainError(f"no purchase order {cmd.po_number!r}")
    if po.status is not PoStatus.DRAFT:
        raise InvalidTransition(f"purchase order {po.number} is {po.status.value}: only drafts can be edited")
    line = po.line_for(cmd.sku)
    if line is None:
        raise DomainError(f"purchase order {po.number} has no line for {cmd.sku}")
    if line.quantity == cmd.quantity:
        return
    line.quantity = cmd.quantity
    uow.purchasing.save(po)
    uow.stock.lock_skus([cmd.sku])
    refresh_etas(uow, [cmd.sku], ctx)


def ship_available_now(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.ShipAvailableNow)
    order = _locked_order(uow, cmd.order_id)
    if order.ship_complete:
        raise InvalidTransition(f"order {order.id} ships complete: it cannot ship in part")
    ready = [
        (line.line_no, line.unshipped_allocated)
        for line in order.lines
        if line.is_open and line.unshipped_allocated > 0
    ]
    if not ready:
        raise InvalidTransition(f"order {order.id} has nothing in stock to ship now")
    # A request to staff, not a shipment: the stock stays on the books (and held for the order)
    # until the parcel leaves and the channel's fulfilment (or `backorder ship`) records it.
    lines = tuple(events.RequestedLine(no, order.line(no).sku, units) for no, units in ready)
    uow.record(events.PartialShipmentRequested(order.id, order.channel, lines))


def substitute_line(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.SubstituteLine)
    order = _locked_order(uow, cmd.order_id)
    line = order.line(cmd.line_no)
    if not line.is_open or line.backordered <= 0:
        raise InvalidTransition(f"order {order.id} line {line.line_no} is not waiting for stock")
    if cmd.substitute_sku == line.sku:
        raise DomainError("a substitute must be a different SKU")
    _require_skus(uow, [cmd.substitute_sku])
    units = line.quantity - line.shipped
    cancel_order(commands.CancelOrder(order.id, (line.line_no,), reason="substituted"), uow, ctx)
    fresh = uow.orders.get(order.id)
    assert fresh is not None
    new = OrderLine(order.id, max(x.line_no for x in fresh.lines) + 1, cmd.substitute_sku, units, backordered=units)
    uow.stock.lock_skus([cmd.substitute_sku])
    uow.orders.add_line(fresh, new)
    # By the contract, at the order's rank; a ship-complete order is judged whole again.
    scope = {new.sku} | ({x.sku for x in fresh.lines if x.is_open} if order.ship_complete else set())
    allocate_waiting(uow, scope, ctx, "substitute", f"substitute:{line.sku}", quiet_orders=frozenset({order.id}))
    after = uow.orders.get(order.id)
    assert after is not None
    placed = after.line(new.line_no)
    if placed.backordered > 0:
        uow.record(
            events.BackorderCreated(
                order.id,
                order.channel,
                (events.BackorderedLine(placed.line_no, placed.sku, placed.backordered, placed.eta),),
            )
        )
    check_thresholds(uow, [new.sku], ctx)


HANDLERS[commands.EditDraftPurchaseOrderLine] = edit_draft_purchase_order_line
HANDLERS[commands.ShipAvailableNow] = ship_available_now
HANDLERS[commands.SubstituteLine] = substitute_line


# --- issue 3 (channels): order edits ----------------------------------------------------------


def reduce_line(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.ReduceLine)
    if cmd.new_quantity < 0:
        raise InvalidQuantity(f"order {cmd.order_id} line {cmd.line_no}: quantity cannot be negative")
    order = _locked_order(uow, cmd.order_id)
    line = order.line(cmd.line_no)
    if not line.is_open or cmd.new_quantity == line.quantity:
        return
    if cmd.new_quantity > line.quantity:
        raise InvalidQuantity(
            f"order {order.id} line {line.line_no}: cannot raise {line.quantity} to {cmd.new_quantity} (add a line)"
        )
    if cmd.new_quantity <= line.shipped:  # nothing left to wait for: the rest is cancelled
        cancel_order(commands.CancelOrder(order.id, (line.line_no,), reason=cmd.reason), uow, ctx)
        return
    assert line.id is not None
    cut = line.quantity - cmd.new_quantity
    from_backorder = min(cut, line.backordered)
    release = cut - from_backorder
    levels = uow.stock.levels([line.sku])
    now = ctx.clock.now()
    records: list[AllocationRecord] = []
    held = uow.orders.held_at(line.id)
    left = release
    for location in reversed(list(held)):  # the least preferred location gives back first
        take = min(held[location], left)
        if take <= 0:
            continue
        _level(levels, line.sku, location).allocated -= take
        left -= take
        records.append(_ledger_row(line, location, -take, "release", "reduce", cmd.reason, now))
    assert left == 0, f"line {line.id} holds less than its unshipped allocation"
    line.backordered -= from_backorder
    line.allocated -= release
    line.quantity = cmd.new_quantity
    if line.backordered == 0:
        line.eta = None
    uow.orders.save_lines([line])
    uow.orders.save_quantities([line])
    uow.stock.save_levels(levels.values())
    uow.orders.record_allocations(records)
    uow.record(
        events.BackorderCancelled(
            order.id, order.channel, cmd.reason, (events.CancelledLine(line.line_no, line.sku, cut),)
        )
    )
    if release:
        uow.record(events.StockLevelChanged(line.sku))
        scope = {line.sku} | ({x.sku for x in order.lines if x.is_open} if order.ship_complete else set())
        allocate_waiting(uow, scope, ctx, "release", f"reduce:{order.id}")
    refresh_etas(uow, [line.sku], ctx)


def _view(lines: Iterable[commands.NewLine]) -> dict[str, int]:
    units: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.quantity < 0:
            raise InvalidQuantity(f"quantity of {line.sku} cannot be negative")
        units[line.sku] += line.quantity
    return dict(units)


def channel_order(cmd: commands.Command, uow: UnitOfWork, ctx: HandlerContext) -> None:
    assert isinstance(cmd, commands.ChannelOrder)
    placed = cmd.order
    view = _view(placed.lines)
    first = uow.orders.get(placed.order_id)
    if first is None:  # DuplicateOrder if another transaction placed it meanwhile
        _place_order(placed, uow, ctx, channel_view=view)
        return
    order = _locked_order(uow, placed.order_id, first)
    before = uow.orders.channel_view(order.id)
    if before == view:
        return
    uow.orders.save_channel_view(order.id, view)
    if before is None:
        return  # held from before views were kept: nothing to compare with, the view is kept now
    added = {sku: n - before.get(sku, 0) for sku, n in sorted(view.items()) if n > before.get(sku, 0)}
    removed = {sku: n - view.get(sku, 0) for sku, n in sorted(before.items()) if n > view.get(sku, 0)}
    _require_skus(uow, added)
    uow.stock.lock_skus(added)
    for sku, cut in removed.items():
        for line in sorted(order.lines, key=lambda x: -x.line_no):  # the latest line gives back first
            if cut <= 0:
                break
            if line.sku != sku or not line.is_open:
                continue
            take = min(cut, line.quantity - line.shipped)
            reduce_line(commands.ReduceLine(order.id, line.line_no, line.quantity - take, cmd.reason), uow, ctx)
            cut -= take
    if not added:
        return
    fresh = uow.orders.get(order.id)
    assert fresh is not None
    next_no = max(x.line_no for x in fresh.lines) + 1
    new_nos = []
    for offset, (sku, units) in enumerate(added.items()):
        line = OrderLine(order.id, next_no + offset, sku, units, backordered=units)
        uow.orders.add_line(fresh, line)
        new_nos.append(line.line_no)
    # By the contract, at the order's rank; a ship-complete order is judged whole again.
    scope = set(added) | ({x.sku for x in fresh.lines if x.is_open} if order.ship_complete else set())
    allocate_waiting(uow, scope, ctx, "arrival", f"amend:{order.id}", quiet_orders=frozenset({order.id}))
    after = uow.orders.get(order.id)
    assert after is not None
    waiting = [after.line(no) for no in new_nos if after.line(no).backordered > 0]
    if waiting:
        uow.record(
            events.BackorderCreated(
                order.id,
                order.channel,
                tuple(events.BackorderedLine(x.line_no, x.sku, x.backordered, x.eta) for x in waiting),
            )
        )
    check_thresholds(uow, added, ctx)


HANDLERS[commands.ReduceLine] = reduce_line
HANDLERS[commands.ChannelOrder] = channel_order
