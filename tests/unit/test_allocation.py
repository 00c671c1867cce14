"""The allocation contract: ranking, partial allocation, ship-complete orders, locations, and
the vectorised form agreeing with the general walk."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backorder.domain.allocation import (
    Claim,
    Grant,
    Holding,
    allocate,
    allocate_ranked_bulk,
    claim_rank,
    rank_claims,
    release_for_shrinkage,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def claim(
    key: int,
    order_id: str,
    wanted: int,
    sku: str = "RED",
    line_no: int = 1,
    priority: int = 0,
    minutes: int = 0,
    ship_complete: bool = False,
    locations: tuple[str, ...] | None = None,
) -> Claim:
    placed_at = T0 + timedelta(minutes=minutes)
    return Claim(key, order_id, line_no, sku, wanted, priority, placed_at, ship_complete, locations)


def granted(grants: list[Grant]) -> dict[int, int]:
    totals: dict[int, int] = defaultdict(int)
    for grant in grants:
        totals[grant.line_key] += grant.quantity
    return dict(totals)


# --- ranking ------------------------------------------------------------------------------


def test_lines_are_ranked_by_priority_then_placed_at_then_order_id_then_line_number() -> None:
    claims = [
        claim(1, "B", 1, line_no=2, minutes=5),
        claim(2, "B", 1, line_no=1, minutes=5),
        claim(3, "A", 1, minutes=5),
        claim(4, "Z", 1, minutes=1),
        claim(5, "Y", 1, priority=1, minutes=9),
    ]
    assert [c.line_key for c in rank_claims(claims)] == [5, 4, 3, 2, 1]


def test_higher_priority_order_is_served_first_even_when_placed_later() -> None:
    claims = [claim(1, "early", 3, minutes=0), claim(2, "vip", 3, priority=5, minutes=60)]
    assert granted(allocate(claims, {"RED": {"main": 4}})) == {2: 3, 1: 1}


def test_earlier_order_is_served_first_at_equal_priority() -> None:
    claims = [claim(1, "late", 2, minutes=10), claim(2, "early", 2, minutes=0)]
    assert granted(allocate(claims, {"RED": {"main": 2}})) == {2: 2}


def test_order_id_breaks_a_tie_in_priority_and_placed_at() -> None:
    claims = [claim(1, "O-2", 2), claim(2, "O-1", 2)]
    assert granted(allocate(claims, {"RED": {"main": 3}})) == {2: 2, 1: 1}


def test_line_number_breaks_a_tie_within_one_order() -> None:
    claims = [claim(1, "O", 2, line_no=3), claim(2, "O", 2, line_no=1)]
    assert granted(allocate(claims, {"RED": {"main": 3}})) == {2: 2, 1: 1}


# --- partial allocation -------------------------------------------------------------------


def test_each_line_takes_what_remains_up_to_its_open_quantity() -> None:
    claims = [claim(1, "A", 5, minutes=0), claim(2, "B", 5, minutes=1), claim(3, "C", 5, minutes=2)]
    assert granted(allocate(claims, {"RED": {"main": 7}})) == {1: 5, 2: 2}


def test_no_stock_means_no_grants() -> None:
    assert allocate([claim(1, "A", 5)], {"RED": {"main": 0}}) == []
    assert allocate([claim(1, "A", 5)], {}) == []


def test_negative_available_is_treated_as_no_stock() -> None:
    grants = allocate([claim(1, "A", 5)], {"RED": {"main": -3, "back": 2}})
    assert grants == [Grant(1, "A", 1, "RED", "back", 2)]


def test_lines_wanting_nothing_get_nothing() -> None:
    assert allocate([claim(1, "A", 0), claim(2, "B", 2, minutes=1)], {"RED": {"main": 5}}) == [
        Grant(2, "B", 1, "RED", "main", 2)
    ]


def test_allocate_does_not_modify_the_pools_it_is_given() -> None:
    pools = {"RED": {"main": 5}}
    allocate([claim(1, "A", 3)], pools)
    assert pools == {"RED": {"main": 5}}


def test_skus_are_allocated_from_their_own_pools() -> None:
    claims = [claim(1, "A", 3, sku="RED"), claim(2, "A", 3, sku="BLUE", line_no=2)]
    assert granted(allocate(claims, {"RED": {"main": 1}, "BLUE": {"main": 9}})) == {1: 1, 2: 3}


# --- locations ----------------------------------------------------------------------------


def test_a_line_draws_from_locations_in_the_pools_preference_order() -> None:
    grants = allocate([claim(1, "A", 5)], {"RED": {"main": 3, "back": 4}})
    assert grants == [Grant(1, "A", 1, "RED", "main", 3), Grant(1, "A", 1, "RED", "back", 2)]


def test_a_line_limited_to_locations_draws_only_from_them_in_its_own_order() -> None:
    pools = {"RED": {"main": 9, "back": 2, "store": 1}}
    grants = allocate([claim(1, "A", 5, locations=("store", "back"))], pools)
    assert grants == [Grant(1, "A", 1, "RED", "store", 1), Grant(1, "A", 1, "RED", "back", 2)]


def test_stock_a_restricted_line_cannot_reach_stays_for_lines_after_it() -> None:
    claims = [claim(1, "A", 5, locations=("store",)), claim(2, "B", 5, minutes=1)]
    assert granted(allocate(claims, {"RED": {"main": 4, "store": 1}})) == {1: 1, 2: 4}


# --- ship-complete ------------------------------------------------------------------------


def test_ship_complete_order_takes_every_line_in_full_when_all_are_covered() -> None:
    claims = [
        claim(1, "SC", 2, sku="RED", line_no=1, ship_complete=True),
        claim(2, "SC", 3, sku="BLUE", line_no=2, ship_complete=True),
    ]
    assert granted(allocate(claims, {"RED": {"main": 2}, "BLUE": {"main": 3}})) == {1: 2, 2: 3}


def test_ship_complete_order_takes_nothing_unless_every_line_is_covered() -> None:
    claims = [
        claim(1, "SC", 2, sku="RED", line_no=1, ship_complete=True),
        claim(2, "SC", 3, sku="BLUE", line_no=2, ship_complete=True),
    ]
    assert allocate(claims, {"RED": {"main": 2}, "BLUE": {"main": 2}}) == []


def test_stock_a_ship_complete_order_cannot_use_stays_for_lines_ranked_after_it() -> None:
    claims = [
        claim(1, "SC", 2, sku="RED", line_no=1, ship_complete=True, minutes=0),
        claim(2, "SC", 3, sku="BLUE", line_no=2, ship_complete=True, minutes=0),
        claim(3, "LATER", 5, sku="RED", minutes=10),
    ]
    assert granted(allocate(claims, {"RED": {"main": 4}, "BLUE": {"main": 1}})) == {3: 4}


def test_ship_complete_order_is_judged_at_the_rank_of_its_first_line() -> None:
    claims = [
        claim(1, "LATER", 4, sku="RED", minutes=10),
        claim(2, "SC", 1, sku="BLUE", line_no=1, ship_complete=True, minutes=0),
        claim(3, "SC", 3, sku="RED", line_no=2, ship_complete=True, minutes=0),
    ]
    assert granted(allocate(claims, {"RED": {"main": 4}, "BLUE": {"main": 1}})) == {2: 1, 3: 3, 1: 1}


def test_ship_complete_order_with_two_lines_of_one_sku_needs_both_covered() -> None:
    claims = [
        claim(1, "SC", 3, sku="RED", line_no=1, ship_complete=True),
        claim(2, "SC", 3, sku="RED", line_no=2, ship_complete=True),
        claim(3, "LATER", 9, sku="RED", minutes=1),
    ]
    assert granted(allocate(claims, {"RED": {"main": 5}})) == {3: 5}
    assert granted(allocate(claims, {"RED": {"main": 6}})) == {1: 3, 2: 3}


def test_ship_complete_order_may_be_covered_across_locations() -> None:
    claims = [claim(1, "SC", 5, ship_complete=True)]
    grants = allocate(claims, {"RED": {"main": 2, "back": 3}})
    assert granted(grants) == {1: 5}
    assert {g.location for g in grants} == {"main", "back"}


# --- the vectorised form ------------------------------------------------------------------


def test_bulk_grants_each_line_what_remains_of_its_skus_stock() -> None:
    sku_index = np.array([0, 0, 0, 1, 1], dtype=np.int64)
    wanted = np.array([3, 3, 3, 2, 5], dtype=np.int64)
    available = np.array([7, 4], dtype=np.int64)
    assert allocate_ranked_bulk(sku_index, wanted, available).tolist() == [3, 3, 1, 2, 2]


def test_bulk_with_no_lines_grants_nothing() -> None:
    empty = np.zeros(0, dtype=np.int64)
    result = allocate_ranked_bulk(empty, empty, np.array([5], dtype=np.int64))
    assert result.dtype == np.int64
    assert result.size == 0


def test_bulk_treats_negative_stock_as_none() -> None:
    result = allocate_ranked_bulk(
        np.array([0, 1], dtype=np.int64), np.array([2, 2], dtype=np.int64), np.array([-4, 1], dtype=np.int64)
    )
    assert result.tolist() == [0, 1]


# --- shrinkage ----------------------------------------------------------------------------


def test_shrinkage_takes_units_back_from_the_lowest_ranked_holders_first() -> None:
    holdings = [
        Holding(1, "VIP", 1, "RED", "main", 3, 5, T0),
        Holding(2, "EARLY", 1, "RED", "main", 3, 0, T0),
        Holding(3, "LATE", 1, "RED", "main", 2, 0, T0 + timedelta(hours=1)),
    ]
    releases = release_for_shrinkage(holdings, {("RED", "main"): 4})
    assert [(r.order_id, r.quantity) for r in releases] == [("LATE", 2), ("EARLY", 2)]


def test_shrinkage_only_touches_the_location_that_shrank() -> None:
    holdings = [Holding(1, "A", 1, "RED", "main", 3, 0, T0), Holding(2, "B", 1, "RED", "back", 3, 0, T0)]
    releases = release_for_shrinkage(holdings, {("RED", "back"): 1, ("RED", "main"): 0})
    assert releases == [Grant(2, "B", 1, "RED", "back", 1)]


# --- properties ---------------------------------------------------------------------------

SKUS = ("RED", "BLUE", "OCHRE")
Queue = tuple[list[Claim], dict[str, dict[str, int]]]


@st.composite
def plain_queues(draw: st.DrawFn) -> Queue:
    """Waiting lines of orders without ship-complete or location limits; one location per SKU."""
    n_orders = draw(st.integers(0, 12))
    claims: list[Claim] = []
    key = 0
    for i in range(n_orders):
        priority = draw(st.integers(0, 2))
        minutes = draw(st.integers(0, 5))
        order_id = f"O{draw(st.integers(0, 99)):02d}-{i}"
        for line_no in range(1, draw(st.integers(1, 3)) + 1):
            key += 1
            sku = draw(st.sampled_from(SKUS))
            claims.append(claim(key, order_id, draw(st.integers(0, 8)), sku, line_no, priority, minutes))
    pools = {sku: {"main": draw(st.integers(-3, 25))} for sku in SKUS}
    return claims, pools


@settings(max_examples=200, deadline=None)
@given(plain_queues())
def test_bulk_allocation_agrees_with_the_general_walk(queue: Queue) -> None:
    claims, pools = queue
    codes = sorted(pools)
    ranked = sorted(claims, key=lambda c: (codes.index(c.sku), *claim_rank(c)))
    sku_index = np.array([codes.index(c.sku) for c in ranked], dtype=np.int64)
    wanted = np.array([c.wanted for c in ranked], dtype=np.int64)
    available = np.array([pools[code]["main"] for code in codes], dtype=np.int64)

    bulk = allocate_ranked_bulk(sku_index, wanted, available)

    walked = granted(allocate(claims, pools))
    assert {c.line_key: int(q) for c, q in zip(ranked, bulk.tolist(), strict=True) if q > 0} == walked


@st.composite
def mixed_queues(draw: st.DrawFn) -> Queue:
    """Orders, some ship-complete, over several SKUs and two locations."""
    n_orders = draw(st.integers(1, 10))
    claims: list[Claim] = []
    key = 0
    for i in range(n_orders):
        ship_complete = draw(st.booleans())
        priority = draw(st.integers(0, 2))
        minutes = draw(st.integers(0, 5))
        for line_no in range(1, draw(st.integers(1, 3)) + 1):
            key += 1
            sku = draw(st.sampled_from(SKUS))
            wanted = draw(st.integers(1, 6))
            claims.append(claim(key, f"O{i:02d}", wanted, sku, line_no, priority, minutes, ship_complete))
    pools = {sku: {"main": draw(st.integers(-2, 12)), "back": draw(st.integers(0, 6))} for sku in SKUS}
    return claims, pools


def reference_walk(claims: list[Claim], pools: dict[str, dict[str, int]]) -> dict[int, int]:
    """The contract read literally, with each SKU's locations summed into one pile."""
    left = {sku: sum(max(q, 0) for q in locs.values()) for sku, locs in pools.items()}
    orders: dict[str, list[Claim]] = defaultdict(list)
    for c in claims:
        orders[c.order_id].append(c)
    result: dict[int, int] = {}
    for lines in sorted(orders.values(), key=lambda ls: (-ls[0].priority, ls[0].placed_at, ls[0].order_id)):
        lines.sort(key=lambda c: c.line_no)
        if lines[0].ship_complete:
            need: dict[str, int] = defaultdict(int)
            for c in lines:
                need[c.sku] += c.wanted
            if all(left.get(sku, 0) >= qty for sku, qty in need.items()):
                for c in lines:
                    left[c.sku] -= c.wanted
                    result[c.line_key] = c.wanted
        else:
            for c in lines:
                got = min(left.get(c.sku, 0), c.wanted)
                if got:
                    left[c.sku] -= got
                    result[c.line_key] = got
    return result


@settings(max_examples=200, deadline=None)
@given(mixed_queues())
def test_ship_complete_orders_get_all_or_nothing_and_never_block_stock_they_cannot_use(
    queue: Queue,
) -> None:
    claims, pools = queue
    grants = allocate(claims, pools)
    got = granted(grants)

    for order_id in {c.order_id for c in claims if c.ship_complete}:
        lines = [c for c in claims if c.order_id == order_id]
        covered = [got.get(c.line_key, 0) == c.wanted for c in lines]
        untouched = [got.get(c.line_key, 0) == 0 for c in lines]
        assert all(covered) or all(untouched), f"{order_id} got part of what it needs"

    rejected = {c.order_id for c in claims if c.ship_complete and got.get(c.line_key, 0) == 0}
    without_rejected = [c for c in claims if c.order_id not in rejected]
    assert granted(allocate(without_rejected, pools)) == got, "a rejected order held stock back"

    assert got == reference_walk(claims, pools)

    for sku, locs in pools.items():
        for location, qty in locs.items():
            used = sum(g.quantity for g in grants if g.sku == sku and g.location == location)
            assert used <= max(qty, 0)
