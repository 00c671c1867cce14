"""The issue-5 commands through the real bus over fakes: editing a draft PO line, shipping what is
in stock now, and substituting a waiting line."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tests.fakes import START, FakeUnitOfWork, make_bus, outbox_rows, seed_catalog

from backorder.domain import commands, events
from backorder.domain.commands import NewLine
from backorder.domain.errors import DomainError, InvalidQuantity, InvalidTransition
from backorder.domain.model import LineStatus, PoStatus, Sku, Supplier, SupplierItem
from backorder.services.messagebus import MessageBus

SUP = Supplier("SUP", "Supplier", email="po@sup.example", lead_time_days=7)


def world() -> tuple[MessageBus, FakeUnitOfWork]:
    bus, uow, _ = make_bus()
    seed_catalog(
        uow,
        skus=[
            Sku("BLUE", "Blue", preferred_supplier="SUP", reorder_point=5, order_up_to=20, unit_price=Decimal("9")),
            Sku("BLUE2", "Other blue", unit_price=Decimal("10")),
            Sku("RED", "Red", unit_price=Decimal("8")),
        ],
        suppliers=[SUP],
        items=[SupplierItem("SUP", "BLUE", "S-BLUE", Decimal("4"))],
    )
    bus.handle(commands.SetStockLevel("BLUE2", "main", 10))
    bus.handle(commands.SetStockLevel("RED", "main", 10))
    return bus, uow


def order(bus: MessageBus, order_id: str, ship_complete: bool = False) -> None:
    bus.handle(
        commands.PlaceOrder(
            order_id, "web", START, (NewLine(1, "RED", 2), NewLine(2, "BLUE", 3)), ship_complete=ship_complete
        )
    )


def test_editing_a_draft_po_line_changes_its_quantity_and_only_drafts_can_be_edited() -> None:
    bus, uow = world()
    order(bus, "O1")
    (draft,) = uow.purchasing.drafts()
    line = draft.line_for("BLUE")
    assert line is not None
    bus.handle(commands.EditDraftPurchaseOrderLine(draft.number, "BLUE", line.quantity + 7))
    edited = uow.purchasing.get(draft.number)
    assert edited is not None and edited.line_for("BLUE").quantity == line.quantity + 7  # type: ignore[union-attr]
    with pytest.raises(InvalidQuantity):
        bus.handle(commands.EditDraftPurchaseOrderLine(draft.number, "BLUE", -1))
    with pytest.raises(DomainError, match="no line"):
        bus.handle(commands.EditDraftPurchaseOrderLine(draft.number, "RED", 3))
    bus.handle(commands.SendPurchaseOrder(draft.number))
    with pytest.raises(InvalidTransition, match="only drafts"):
        bus.handle(commands.EditDraftPurchaseOrderLine(draft.number, "BLUE", 1))
    sent = uow.purchasing.get(draft.number)
    assert sent is not None and sent.status is PoStatus.SENT


def test_ship_available_now_asks_staff_to_ship_the_allocated_units_and_books_nothing_yet() -> None:
    """Nothing has left the shelf when the customer asks: the request goes to staff, and the stock
    stays on hand and held until the shipment is recorded."""
    bus, uow = world()
    order(bus, "O1")
    before = uow.orders.get("O1"), dict(uow.state.levels)
    happened = bus.handle(commands.ShipAvailableNow("O1"))
    assert not [e for e in happened if isinstance(e, events.LineShipped)]
    [asked] = [e for e in happened if isinstance(e, events.PartialShipmentRequested)]
    assert asked.lines == (events.RequestedLine(1, "RED", 2),)
    assert (uow.orders.get("O1"), dict(uow.state.levels)) == before
    assert [m.action for m in outbox_rows(uow, "PartialShipmentRequested")] == ["notify_staff"]


def test_ship_available_now_is_refused_for_ship_complete_orders_and_when_nothing_is_ready() -> None:
    bus, _ = world()
    order(bus, "SC", ship_complete=True)
    with pytest.raises(InvalidTransition, match="ships complete"):
        bus.handle(commands.ShipAvailableNow("SC"))
    bus.handle(commands.PlaceOrder("ONLYBLUE", "web", START, (NewLine(1, "BLUE", 1),)))
    with pytest.raises(InvalidTransition, match="nothing in stock"):
        bus.handle(commands.ShipAvailableNow("ONLYBLUE"))


def test_substituting_a_waiting_line_cancels_it_and_allocates_a_new_line_of_the_substitute() -> None:
    bus, uow = world()
    order(bus, "O1")
    happened = bus.handle(commands.SubstituteLine("O1", 2, "BLUE2"))
    stored = uow.orders.get("O1")
    assert stored is not None
    assert stored.line(2).status is LineStatus.CANCELLED
    new = stored.line(3)
    assert (new.sku, new.quantity, new.allocated, new.backordered) == ("BLUE2", 3, 3, 0)
    cancelled = [e for e in happened if isinstance(e, events.BackorderCancelled)]
    assert cancelled and cancelled[0].reason == "substituted"
    assert uow.stock.levels(["BLUE2"])[("BLUE2", "main")].allocated == 3
    assert outbox_rows(uow, "BackorderCancelled")


def test_substitution_is_refused_for_lines_not_waiting_and_changes_nothing() -> None:
    bus, uow = world()
    order(bus, "O1")
    before = uow.orders.get("O1")
    with pytest.raises(InvalidTransition):
        bus.handle(commands.SubstituteLine("O1", 1, "BLUE2"))  # line 1 is fully allocated
    assert uow.orders.get("O1") == before
