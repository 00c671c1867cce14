"""The model's own rules: line quantities, shipping, cancelling, stock levels and POs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from backorder.domain.errors import InvalidQuantity, InvalidTransition
from backorder.domain.model import (
    LineStatus,
    Order,
    OrderLine,
    PoStatus,
    PurchaseOrder,
    PurchaseOrderLine,
    StockLevel,
    StockPosition,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def line(quantity: int = 5, allocated: int = 0) -> OrderLine:
    return OrderLine("O-1", 1, "RED", quantity, allocated=allocated, backordered=quantity - allocated)


# --- order lines --------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -1])
def test_a_line_must_ask_for_a_positive_quantity(quantity: int) -> None:
    with pytest.raises(InvalidQuantity):
        OrderLine("O-1", 1, "RED", quantity)


def test_taking_stock_moves_units_from_backordered_to_allocated() -> None:
    subject = line(5)
    subject.take(3)
    assert (subject.allocated, subject.backordered) == (3, 2)


@pytest.mark.parametrize("quantity", [-1, 6])
def test_a_line_cannot_take_more_than_it_waits_for_or_a_negative_amount(quantity: int) -> None:
    subject = line(5)
    with pytest.raises(InvalidQuantity):
        subject.take(quantity)


def test_giving_back_returns_allocated_units_to_the_backorder() -> None:
    subject = line(5, allocated=4)
    subject.give_back(3)
    assert (subject.allocated, subject.backordered) == (1, 4)


def test_shipped_units_cannot_be_given_back() -> None:
    subject = line(5, allocated=4)
    subject.ship(3)
    with pytest.raises(InvalidQuantity):
        subject.give_back(2)


def test_shipping_draws_on_allocated_units_first() -> None:
    subject = line(5, allocated=3)
    assert subject.ship(2) == 0
    assert (subject.allocated, subject.shipped, subject.backordered) == (3, 2, 2)
    assert subject.unshipped_allocated == 1
    assert subject.is_open


def test_shipping_more_than_allocated_takes_the_rest_from_the_backorder() -> None:
    subject = line(5, allocated=2)
    assert subject.ship(4) == 2
    assert (subject.allocated, subject.shipped, subject.backordered) == (4, 4, 1)
    assert subject.allocated + subject.backordered == subject.quantity


def test_shipping_the_last_unit_closes_the_line() -> None:
    subject = line(2, allocated=2)
    subject.ship(2)
    assert subject.status is LineStatus.SHIPPED
    assert not subject.is_open


@pytest.mark.parametrize("quantity", [0, 6])
def test_a_line_cannot_ship_nothing_or_more_than_is_unshipped(quantity: int) -> None:
    subject = line(5, allocated=5)
    with pytest.raises(InvalidQuantity):
        subject.ship(quantity)


def test_a_closed_line_cannot_ship_again() -> None:
    subject = line(2, allocated=2)
    subject.ship(2)
    with pytest.raises(InvalidTransition):
        subject.ship(1)


def test_cancelling_releases_unshipped_allocation_and_drops_the_backorder() -> None:
    subject = line(6, allocated=4)
    subject.ship(1)
    subject.eta = date(2025, 4, 1)
    assert subject.cancel() == (3, 2)
    assert (subject.allocated, subject.shipped, subject.backordered) == (1, 1, 0)
    assert subject.status is LineStatus.CANCELLED
    assert subject.eta is None


def test_a_cancelled_line_cannot_be_cancelled_or_shipped() -> None:
    subject = line(3)
    subject.cancel()
    with pytest.raises(InvalidTransition):
        subject.cancel()
    with pytest.raises(InvalidTransition):
        subject.ship(1)


# --- orders -------------------------------------------------------------------------------


def test_an_order_needs_a_timezone_aware_placed_at() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Order("O-1", "web", datetime(2025, 3, 3, 9, 0))


def test_an_order_finds_its_lines_by_number() -> None:
    order = Order("O-1", "web", NOW, lines=[OrderLine("O-1", 1, "RED", 1), OrderLine("O-1", 2, "BLUE", 2)])
    assert order.line(2).sku == "BLUE"
    with pytest.raises(InvalidTransition):
        order.line(3)


def test_an_order_is_open_while_any_line_is_open() -> None:
    order = Order("O-1", "web", NOW, lines=[OrderLine("O-1", 1, "RED", 1), OrderLine("O-1", 2, "BLUE", 2)])
    order.line(1).cancel()
    assert order.is_open
    order.line(2).cancel()
    assert not order.is_open


# --- stock --------------------------------------------------------------------------------


def test_a_negative_on_hand_is_kept_as_reported_and_nothing_is_available() -> None:
    level = StockLevel("RED", "main", on_hand=-4, allocated=0)
    assert level.on_hand == -4
    assert level.available == 0


def test_available_is_on_hand_less_allocated() -> None:
    assert StockLevel("RED", "main", on_hand=7, allocated=3).available == 4


def test_a_position_never_reports_negative_availability() -> None:
    position = StockPosition("RED", on_hand=2, allocated=5, incoming=0, backordered=0)
    assert position.available == 0
    assert position.projected == -3


# --- purchase orders ----------------------------------------------------------------------


def purchase_order() -> PurchaseOrder:
    return PurchaseOrder(
        "PO-1",
        "S1",
        NOW,
        lines=[PurchaseOrderLine("RED", 10, Decimal("2.50")), PurchaseOrderLine("BLUE", 4, Decimal("3.10"))],
    )


def test_a_purchase_order_totals_its_lines_in_decimal() -> None:
    assert purchase_order().total == Decimal("37.40")


def test_sending_a_draft_sets_each_lines_expected_date_from_its_lead_time() -> None:
    po = purchase_order()
    po.mark_sent(NOW, {"RED": 7, "BLUE": 21})
    assert po.status is PoStatus.SENT
    assert po.sent_at == NOW
    assert po.line_for("RED").expected_on == date(2025, 3, 10)  # type: ignore[union-attr]
    assert po.line_for("BLUE").expected_on == date(2025, 3, 24)  # type: ignore[union-attr]


def test_only_a_draft_can_be_sent() -> None:
    po = purchase_order()
    po.mark_sent(NOW, {})
    with pytest.raises(InvalidTransition):
        po.mark_sent(NOW, {})


def test_receiving_books_no_more_than_is_outstanding() -> None:
    po = purchase_order()
    assert po.receive("RED", 12) == 10
    assert po.line_for("RED").outstanding == 0  # type: ignore[union-attr]
    assert po.status is PoStatus.DRAFT
    assert po.receive("RED", 1) == 0


def test_receiving_every_line_in_full_marks_the_order_received() -> None:
    po = purchase_order()
    po.mark_sent(NOW, {})
    po.receive("RED", 10)
    po.receive("BLUE", 3)
    assert po.status is PoStatus.SENT
    po.receive("BLUE", 1)
    assert po.status is PoStatus.RECEIVED
    assert not po.is_open


def test_receiving_a_sku_the_order_does_not_have_books_nothing() -> None:
    po = purchase_order()
    assert po.receive("OCHRE", 5) == 0
    assert po.receive("RED", 0) == 0
    assert po.receive("RED", -3) == 0
