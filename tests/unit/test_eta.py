"""ETAs: each SKU's expected supply handed to waiting lines in allocation order."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from backorder.domain.eta import Supply, assign_etas, fallback_eta

TODAY = date(2025, 3, 3)
FALLBACK = date(2025, 3, 17)
MARCH_10 = date(2025, 3, 10)
MARCH_20 = date(2025, 3, 20)


def test_a_line_no_purchase_order_covers_gets_today_plus_lead_time() -> None:
    assert fallback_eta(TODAY, 14) == FALLBACK
    assert assign_etas([("a", 3)], [], fallback_eta(TODAY, 14)) == {"a": FALLBACK}


def test_lines_take_supply_in_allocation_order() -> None:
    etas = assign_etas([("first", 4), ("second", 4)], [Supply(MARCH_10, 4), Supply(MARCH_20, 4)], FALLBACK)
    assert etas == {"first": MARCH_10, "second": MARCH_20}


def test_supply_is_walked_by_expected_date_whatever_order_it_comes_in() -> None:
    etas = assign_etas([("first", 4), ("second", 4)], [Supply(MARCH_20, 4), Supply(MARCH_10, 4)], FALLBACK)
    assert etas == {"first": MARCH_10, "second": MARCH_20}


def test_a_line_gets_the_date_of_the_supply_that_covers_its_last_unit() -> None:
    etas = assign_etas([("a", 6)], [Supply(MARCH_10, 4), Supply(MARCH_20, 4)], FALLBACK)
    assert etas == {"a": MARCH_20}


def test_one_purchase_order_line_can_cover_several_backorder_lines() -> None:
    etas = assign_etas([("a", 2), ("b", 3), ("c", 1)], [Supply(MARCH_10, 6)], FALLBACK)
    assert etas == {"a": MARCH_10, "b": MARCH_10, "c": MARCH_10}


def test_a_line_only_partly_covered_gets_the_fallback_and_so_do_lines_after_it() -> None:
    etas = assign_etas([("a", 3), ("b", 4), ("c", 1)], [Supply(MARCH_10, 5)], FALLBACK)
    assert etas == {"a": MARCH_10, "b": FALLBACK, "c": FALLBACK}


def test_supply_already_promised_is_not_handed_out_twice() -> None:
    etas = assign_etas([("a", 5), ("b", 5)], [Supply(MARCH_10, 5)], FALLBACK)
    assert etas["b"] == FALLBACK


def test_empty_lots_are_ignored() -> None:
    etas = assign_etas([("a", 2)], [Supply(date(2025, 3, 5), 0), Supply(MARCH_20, 2)], FALLBACK)
    assert etas == {"a": MARCH_20}


def test_a_late_purchase_order_can_promise_later_than_the_fallback() -> None:
    late = date(2025, 5, 1)
    assert assign_etas([("a", 2)], [Supply(late, 2)], FALLBACK) == {"a": late}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(1, 10), max_size=8),
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 10)), max_size=5),
)
def test_etas_never_go_backwards_along_the_queue_while_supply_lasts(
    needs: list[int], lots: list[tuple[int, int]]
) -> None:
    supply = [Supply(date.fromordinal(TODAY.toordinal() + days), qty) for days, qty in lots]
    waiting = list(enumerate(needs))
    etas = assign_etas(waiting, supply, FALLBACK)
    assert set(etas) == set(range(len(needs)))
    covered = 0
    total = sum(s.quantity for s in supply)
    previous = date.min
    for i, need in waiting:
        covered += need
        if covered <= total:
            assert etas[i] >= previous
            assert etas[i] in {s.expected_on for s in supply}
            previous = etas[i]
        else:
            assert etas[i] == FALLBACK
