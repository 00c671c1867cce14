"""The issue-3 commands on the fakes: shipping by SKU, and redacting a customer's personal data."""

from __future__ import annotations

import pytest
from tests.fakes import START, make_bus, seed_catalog

from backorder.domain import commands
from backorder.domain.commands import NewLine
from backorder.domain.errors import DomainError, DuplicateShipment, UnknownOrder
from backorder.domain.model import LineStatus, Sku


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    bus, uow, _clock = make_bus()
    seed_catalog(uow, skus=[Sku("INK", "Ink"), Sku("PEN", "Pen")])
    bus.handle(commands.AdjustStock("INK", "main", 10))
    return bus, uow


def _order(bus, order_id: str, channel: str, email: str | None, lines: tuple[NewLine, ...]) -> None:  # type: ignore[no-untyped-def]
    bus.handle(
        commands.PlaceOrder(
            order_id, channel, START, lines, customer_email=email, customer_phone="+44 1", customer_name="Ada"
        )
    )


def test_ship_sku_ships_the_orders_lines_of_that_sku_in_line_order(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    _order(bus, "web-1", "web", "a@x.test", (NewLine(1, "INK", 2), NewLine(2, "PEN", 1), NewLine(3, "INK", 3)))
    bus.handle(commands.ShipSku("web-1", "INK", 4, "main"))
    shipped = {line.line_no: line.shipped for line in uow.state.orders["web-1"].lines}
    assert shipped == {1: 2, 2: 0, 3: 2}


def test_ship_sku_refuses_a_sku_the_order_does_not_have(world) -> None:  # type: ignore[no-untyped-def]
    bus, _ = world
    _order(bus, "web-1", "web", "a@x.test", (NewLine(1, "INK", 2),))
    with pytest.raises(DomainError):
        bus.handle(commands.ShipSku("web-1", "PEN", 1))
    with pytest.raises(UnknownOrder):
        bus.handle(commands.ShipSku("web-404", "INK", 1))


def test_redacting_a_customer_clears_their_contact_on_that_channel_only(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    _order(bus, "web-1", "web", "Ada@X.test", (NewLine(1, "INK", 1),))
    _order(bus, "web-2", "web", "bob@x.test", (NewLine(1, "INK", 1),))
    _order(bus, "web-3", "web", "carl@x.test", (NewLine(1, "INK", 1),))
    _order(bus, "pos-1", "pos", "ada@x.test", (NewLine(1, "INK", 1),))
    bus.handle(commands.RedactCustomer("web", "ada@x.test", ("web-3",)))
    contacts = {o.id: (o.customer_email, o.customer_phone, o.customer_name) for o in uow.state.orders.values()}
    assert contacts["web-1"] == (None, None, None)
    assert contacts["web-3"] == (None, None, None)
    assert contacts["web-2"] == ("bob@x.test", "+44 1", "Ada")
    assert contacts["pos-1"] == ("ada@x.test", "+44 1", "Ada")


def test_redacting_a_whole_shop_clears_every_order_of_the_channel(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    _order(bus, "web-1", "web", "a@x.test", (NewLine(1, "INK", 1),))
    _order(bus, "pos-1", "pos", "b@x.test", (NewLine(1, "INK", 1),))
    bus.handle(commands.RedactCustomer("web"))
    assert uow.state.orders["web-1"].customer_email is None
    assert uow.state.orders["pos-1"].customer_email == "b@x.test"


def test_a_shipment_already_recorded_under_its_ref_ships_nothing_more(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    _order(bus, "web-1", "web", "a@x.test", (NewLine(1, "INK", 2), NewLine(2, "INK", 3)))
    ref = "shopify:fulfillment:9:1"
    bus.handle(commands.ShipSku("web-1", "INK", 3, "main", shipment_ref=ref))
    before = [(line.shipped, line.status) for line in uow.state.orders["web-1"].lines]
    levels = dict(uow.state.levels)
    with pytest.raises(DuplicateShipment):
        bus.handle(commands.ShipSku("web-1", "INK", 3, "main", shipment_ref=ref))
    assert (
        [(line.shipped, line.status) for line in uow.state.orders["web-1"].lines]
        == before
        == [
            (2, LineStatus.SHIPPED),
            (1, LineStatus.OPEN),
        ]
    )
    assert uow.state.levels == levels
    shipped = [r for r in uow.state.ledger if r.kind in ("ship", "ship_direct")]
    assert {(r.source, r.source_ref) for r in shipped} == {("shipment", ref)}


def test_another_shipment_of_the_same_sku_under_a_new_ref_ships_again(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    _order(bus, "web-1", "web", "a@x.test", (NewLine(1, "INK", 4),))
    bus.handle(commands.ShipSku("web-1", "INK", 1, "main", shipment_ref="shopify:fulfillment:9:1"))
    bus.handle(commands.ShipSku("web-1", "INK", 2, "main", shipment_ref="shopify:fulfillment:10:1"))
    bus.handle(commands.ShipSku("web-1", "INK", 1, "main"))  # no ref: applied as it comes
    assert uow.state.orders["web-1"].lines[0].shipped == 4
