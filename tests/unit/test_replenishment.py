"""Replenishment: breach detection and the proposed quantity (order-up-to, MOQ, case pack)."""

from __future__ import annotations

from backorder.domain.model import Sku, StockPosition, SupplierItem
from backorder.domain.replenishment import is_breach, proposal_quantity


def sku(reorder_point: int = 10, order_up_to: int = 30) -> Sku:
    return Sku(
        "CAD-RED",
        "Cadmium red 37ml",
        reorder_point=reorder_point,
        order_up_to=order_up_to,
        preferred_supplier="S1",
    )


def position(on_hand: int = 0, allocated: int = 0, incoming: int = 0, backordered: int = 0) -> StockPosition:
    return StockPosition("CAD-RED", on_hand, allocated, incoming, backordered)


def item(moq: int = 1, case_pack: int = 1) -> SupplierItem:
    return SupplierItem("S1", "CAD-RED", moq=moq, case_pack=case_pack)


def test_projected_stock_is_on_hand_plus_incoming_less_allocated_and_backordered() -> None:
    assert position(on_hand=20, allocated=5, incoming=7, backordered=4).projected == 18


def test_projected_stock_below_the_reorder_point_is_a_breach() -> None:
    assert is_breach(position(on_hand=9), sku(reorder_point=10))


def test_projected_stock_at_the_reorder_point_is_not_a_breach() -> None:
    assert not is_breach(position(on_hand=10), sku(reorder_point=10))


def test_incoming_stock_on_order_counts_against_a_breach() -> None:
    assert not is_breach(position(on_hand=2, incoming=20), sku(reorder_point=10))


def test_backorders_count_towards_a_breach() -> None:
    assert is_breach(position(on_hand=15, backordered=6), sku(reorder_point=10))


def test_without_a_reorder_point_only_uncovered_backorders_breach() -> None:
    assert not is_breach(position(on_hand=0), sku(reorder_point=0, order_up_to=0))
    assert is_breach(position(backordered=3), sku(reorder_point=0, order_up_to=0))


def test_no_breach_proposes_nothing() -> None:
    assert proposal_quantity(position(on_hand=50), sku(), item()) == 0


def test_proposal_orders_up_to_the_order_up_to_level() -> None:
    assert proposal_quantity(position(on_hand=4, backordered=1), sku(order_up_to=30), item()) == 27


def test_proposal_covers_backorders_below_zero() -> None:
    assert proposal_quantity(position(backordered=12), sku(reorder_point=5, order_up_to=20), item()) == 32


def test_proposal_is_raised_to_the_minimum_order_quantity() -> None:
    assert proposal_quantity(position(on_hand=8), sku(order_up_to=12), item(moq=25)) == 25


def test_proposal_is_rounded_up_to_a_whole_case_pack() -> None:
    assert proposal_quantity(position(on_hand=8), sku(order_up_to=30), item(case_pack=6)) == 24


def test_minimum_order_quantity_is_applied_before_case_pack_rounding() -> None:
    assert proposal_quantity(position(on_hand=8), sku(order_up_to=12), item(moq=10, case_pack=4)) == 12


def test_an_exact_case_multiple_is_not_rounded_further() -> None:
    assert proposal_quantity(position(on_hand=6), sku(order_up_to=30), item(case_pack=6)) == 24


def test_order_up_to_below_the_reorder_point_orders_up_to_the_reorder_point() -> None:
    assert proposal_quantity(position(on_hand=2), sku(reorder_point=10, order_up_to=0), item()) == 8


def test_with_no_levels_set_a_backorder_is_covered_exactly() -> None:
    assert proposal_quantity(position(backordered=7), sku(reorder_point=0, order_up_to=0), item()) == 7


def test_a_zero_case_pack_or_moq_is_treated_as_one() -> None:
    assert proposal_quantity(position(on_hand=8), sku(order_up_to=11), item(moq=0, case_pack=0)) == 3
