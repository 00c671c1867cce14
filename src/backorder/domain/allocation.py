"""The allocation contract (backorder processing), exactly as the product promises it.

Open lines are ranked by order priority (descending), then the order's ``placed_at``, then the
order id, then the line number. Walking that ranking each line takes
``min(remaining stock, its open quantity)`` — except lines of a ``ship_complete`` order: that
order is taken as a whole, at the rank of its first line, and gets the full open quantity of
every line if all can be covered from what remains, else nothing (the stock stays for lines
ranked after it). A line draws from its channel's locations in their preferred order.

Two implementations live here and agree by test: :func:`allocate`, the general walk used for
one SKU's queue after a receipt, and :func:`allocate_ranked_bulk`, a vectorised form of the
same contract for queues with no ship-complete orders and no location restrictions, used by a
full run over millions of lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

Pools = Mapping[str, Mapping[str, int]]
"""Available units by SKU, then by location in the default preference order."""


@dataclass(frozen=True, slots=True)
class Claim:
    """An open line waiting for ``wanted`` units."""

    line_key: int
    order_id: str
    line_no: int
    sku: str
    wanted: int
    priority: int
    placed_at: datetime
    ship_complete: bool = False
    locations: tuple[str, ...] | None = None  # None: every location, in the pool's order


@dataclass(frozen=True, slots=True)
class Grant:
    """Units of one SKU at one location handed to one line."""

    line_key: int
    order_id: str
    line_no: int
    sku: str
    location: str
    quantity: int


def order_rank(priority: int, placed_at: datetime, order_id: str) -> tuple[int, datetime, str]:
    return (-priority, placed_at, order_id)


def claim_rank(claim: Claim) -> tuple[int, datetime, str, int]:
    return (-claim.priority, claim.placed_at, claim.order_id, claim.line_no)


def rank_claims(claims: Iterable[Claim]) -> list[Claim]:
    return sorted(claims, key=claim_rank)


def _take(remaining: dict[str, dict[str, int]], claim: Claim, wanted: int) -> list[Grant]:
    pool = remaining.get(claim.sku)
    if not pool or wanted <= 0:
        return []
    grants: list[Grant] = []
    locations = claim.locations if claim.locations is not None else tuple(pool)
    for location in locations:
        here = pool.get(location, 0)
        if here <= 0:
            continue
        got = min(here, wanted)
        pool[location] = here - got
        wanted -= got
        grants.append(Grant(claim.line_key, claim.order_id, claim.line_no, claim.sku, location, got))
        if wanted == 0:
            break
    return grants


def allocate(claims: Sequence[Claim], pools: Pools) -> list[Grant]:
    """Hand available stock to waiting lines by the contract; returns the grants made.

    ``pools`` is not modified. Every line of a ship-complete order that still waits must be in
    ``claims`` for that order to be judged as a whole.
    """
    remaining: dict[str, dict[str, int]] = {
        sku: {loc: max(qty, 0) for loc, qty in locs.items()} for sku, locs in pools.items()
    }
    by_order: dict[str, list[Claim]] = {}
    for claim in claims:
        if claim.wanted > 0:
            by_order.setdefault(claim.order_id, []).append(claim)
    ordered = sorted(by_order.values(), key=lambda cs: order_rank(cs[0].priority, cs[0].placed_at, cs[0].order_id))
    grants: list[Grant] = []
    for order_claims in ordered:
        order_claims.sort(key=lambda c: c.line_no)
        if order_claims[0].ship_complete:
            trial = {c.sku: dict(remaining.get(c.sku, {})) for c in order_claims}
            tentative: list[Grant] = []
            complete = True
            for claim in order_claims:
                got = _take(trial, claim, claim.wanted)
                if sum(g.quantity for g in got) < claim.wanted:
                    complete = False
                    break
                tentative.extend(got)
            if complete:
                remaining.update(trial)
                grants.extend(tentative)
        else:
            for claim in order_claims:
                grants.extend(_take(remaining, claim, claim.wanted))
    return grants


def allocate_ranked_bulk(
    sku_index: npt.NDArray[np.int64],
    wanted: npt.NDArray[np.int64],
    available: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Vectorised contract for queues without ship-complete orders or location limits.

    ``sku_index`` and ``wanted`` describe lines already sorted by SKU and then by rank;
    ``available[i]`` is the stock of SKU ``i``. Returns the units granted to each line.
    """
    if wanted.size == 0:
        return np.zeros(0, dtype=np.int64)
    before = np.cumsum(wanted) - wanted
    new_group = np.empty(sku_index.size, dtype=bool)
    new_group[0] = True
    np.not_equal(sku_index[1:], sku_index[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    group_of_line = np.cumsum(new_group) - 1
    prior_in_group = before - before[starts][group_of_line]
    pool = np.maximum(available[sku_index], 0)
    granted: npt.NDArray[np.int64] = np.clip(pool - prior_in_group, 0, wanted).astype(np.int64)
    return granted


@dataclass(frozen=True, slots=True)
class Holding:
    """Unshipped units a line holds at a location."""

    line_key: int
    order_id: str
    line_no: int
    sku: str
    location: str
    quantity: int
    priority: int
    placed_at: datetime


def release_for_shrinkage(holdings: Sequence[Holding], shortfall: Mapping[tuple[str, str], int]) -> list[Grant]:
    """When on hand at a location drops below what is allocated there, take units back from the
    lowest-ranked holders first (stock that no longer exists cannot stay promised). Returns the
    releases as grants of positive quantity to subtract."""
    releases: list[Grant] = []
    left = {key: qty for key, qty in shortfall.items() if qty > 0}
    ranked = sorted(holdings, key=lambda h: (-h.priority, h.placed_at, h.order_id, h.line_no), reverse=True)
    for holding in ranked:
        key = (holding.sku, holding.location)
        need = left.get(key, 0)
        if need <= 0 or holding.quantity <= 0:
            continue
        back = min(need, holding.quantity)
        left[key] = need - back
        releases.append(Grant(holding.line_key, holding.order_id, holding.line_no, holding.sku, holding.location, back))
    return releases
