"""Order edits from a channel (issue 3), on the fakes: a reduced line gives up its backordered units
first and then its allocated ones, which go to the next waiting line; a line the channel adds is
allocated by the contract; a replayed view changes nothing; our own changes stand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.fakes import START, make_bus, seed_catalog

from backorder.domain import commands, events
from backorder.domain.commands import NewLine
from backorder.domain.errors import InvalidQuantity
from backorder.domain.model import LineStatus, Sku


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    bus, uow, _clock = make_bus()
    seed_catalog(uow, skus=[Sku("INK", "Ink"), Sku("PEN", "Pen"), Sku("PAD", "Pad")])
    bus.handle(commands.AdjustStock("INK", "main", 4))
    return bus, uow


def _place(order_id: str, lines: tuple[NewLine, ...], minutes: int = 0) -> commands.PlaceOrder:
    return commands.PlaceOrder(order_id, "web", START + timedelta(minutes=minutes), lines, customer_email="a@x.test")


def _line(uow, order_id: str, line_no: int = 1):  # type: ignore[no-untyped-def]
    return uow.state.orders[order_id].line(line_no)


def test_reducing_a_line_cuts_its_backordered_units_first(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    bus.handle(_place("web-1", (NewLine(1, "INK", 6),)))  # 4 allocated, 2 backordered
    bus.handle(commands.ReduceLine("web-1", 1, 5))
    line = _line(uow, "web-1")
    assert (line.quantity, line.allocated, line.backordered) == (5, 4, 1)
    assert uow.state.levels[("INK", "main")].allocated == 4


def test_reducing_below_the_allocation_releases_units_to_the_next_waiting_line(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    bus.handle(_place("web-1", (NewLine(1, "INK", 5),)))  # 4 allocated, 1 backordered
    bus.handle(_place("web-2", (NewLine(1, "INK", 3),), minutes=1))  # all 3 backordered
    produced = bus.handle(commands.ReduceLine("web-1", 1, 2))
    first, second = _line(uow, "web-1"), _line(uow, "web-2")
    assert (first.quantity, first.allocated, first.backordered) == (2, 2, 0)
    assert (second.allocated, second.backordered) == (2, 1)
    assert uow.state.levels[("INK", "main")].allocated == 4
    cancelled = [e for e in produced if isinstance(e, events.BackorderCancelled)]
    assert [(e.order_id, e.lines) for e in cancelled] == [("web-1", (events.CancelledLine(1, "INK", 3),))]
    released = [r for r in uow.state.ledger if r.kind == "release" and r.order_id == "web-1"]
    assert [(r.quantity, r.source) for r in released] == [(-2, "reduce")]


def test_reducing_a_line_to_what_shipped_cancels_the_rest(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    bus.handle(_place("web-1", (NewLine(1, "INK", 3),)))
    bus.handle(commands.ShipLine("web-1", 1, 1, "main"))
    bus.handle(commands.ReduceLine("web-1", 1, 1))
    line = _line(uow, "web-1")
    assert (line.status, line.shipped, line.allocated) == (LineStatus.CANCELLED, 1, 1)
    with pytest.raises(InvalidQuantity):
        bus.handle(commands.ReduceLine("web-1", 1, -1))


def test_a_channel_order_seen_again_unchanged_changes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    placed = _place("web-1", (NewLine(1, "INK", 2), NewLine(2, "PEN", 1)))
    assert bus.handle(commands.ChannelOrder(placed))
    state = (list(uow.state.ledger), dict(uow.state.levels), len(uow.state.outbox))
    assert bus.handle(commands.ChannelOrder(placed)) == []
    assert (list(uow.state.ledger), dict(uow.state.levels), len(uow.state.outbox)) == state


def test_an_edit_cuts_removed_units_and_adds_new_lines_once(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    bus.handle(commands.ChannelOrder(_place("web-1", (NewLine(1, "INK", 3), NewLine(2, "PEN", 2)))))
    edited = _place("web-1", (NewLine(1, "INK", 1), NewLine(3, "PAD", 2)))  # INK 3→1, PEN removed, PAD added
    produced = bus.handle(commands.ChannelOrder(edited, reason="changed on shopify"))
    order = uow.state.orders["web-1"]
    assert [(x.line_no, x.sku, x.quantity, x.status) for x in order.lines] == [
        (1, "INK", 1, LineStatus.OPEN),
        (2, "PEN", 2, LineStatus.CANCELLED),
        (3, "PAD", 2, LineStatus.OPEN),
    ]
    assert order.line(3).backordered == 2
    created = [e for e in produced if isinstance(e, events.BackorderCreated)]
    assert [[(x.line_no, x.sku, x.quantity) for x in e.lines] for e in created] == [[(3, "PAD", 2)]]
    assert bus.handle(commands.ChannelOrder(edited)) == []  # the same view again (a replay)
    assert len(uow.state.orders["web-1"].lines) == 3


def test_a_line_added_by_an_edit_is_allocated_at_the_orders_rank(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    bus.handle(commands.ChannelOrder(_place("web-1", (NewLine(1, "PEN", 1),))))
    bus.handle(commands.ChannelOrder(_place("web-1", (NewLine(1, "PEN", 1), NewLine(2, "INK", 3)))))
    line = _line(uow, "web-1", 2)
    assert (line.sku, line.allocated, line.backordered) == ("INK", 3, 0)


def test_our_own_changes_stand_when_the_channel_did_not_touch_that_sku(world) -> None:  # type: ignore[no-untyped-def]
    bus, uow = world
    placed = _place("web-1", (NewLine(1, "INK", 2), NewLine(2, "PEN", 1)))
    bus.handle(commands.ChannelOrder(placed))
    bus.handle(commands.CancelOrder("web-1", (2,), reason="customer chose to cancel"))
    bus.handle(commands.ChannelOrder(_place("web-1", (NewLine(1, "INK", 3), NewLine(2, "PEN", 1)))))
    order = uow.state.orders["web-1"]
    assert [(x.sku, x.quantity, x.status) for x in order.lines] == [
        ("INK", 2, LineStatus.OPEN),
        ("PEN", 1, LineStatus.CANCELLED),
        ("INK", 1, LineStatus.OPEN),
    ]
