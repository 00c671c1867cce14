"""A stateful model test: random sequences of commands through the real bus, with the
allocation invariants checked after every step.

The machine only talks to the store through the ports (a ``uow_factory`` and a ``reset``), so
the same class runs against the SQL store: ``build_machine(sql_uow_factory, truncate).TestCase``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from tests.fakes import START, FakeUnitOfWork, FixedClock

from backorder.domain import commands
from backorder.domain.commands import NewLine
from backorder.domain.errors import DuplicateOrder
from backorder.domain.model import Order, OrderLine, Sku, StockLevel, Supplier, SupplierItem
from backorder.services.handlers import HandlerContext
from backorder.services.messagebus import MessageBus
from backorder.services.policy import EnginePolicy
from backorder.services.ports import UnitOfWork
from backorder.services.rules import RuleSet

SKUS = ("BLUE", "OCHRE", "RED")
SUPPLIER = Supplier("ROYAL", "Royal Talens", "orders@royal.example", lead_time_days=10)
CATALOG = (
    Sku("BLUE", "Blue", preferred_supplier="ROYAL", reorder_point=4, order_up_to=12),
    Sku("OCHRE", "Ochre", preferred_supplier="ROYAL"),
    Sku("RED", "Red"),
)
ITEMS = (SupplierItem("ROYAL", "BLUE", moq=5, case_pack=3), SupplierItem("ROYAL", "OCHRE"))

order_lines = st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 5)), min_size=1, max_size=3)


def build_machine(
    uow_factory: Callable[[], UnitOfWork],
    reset: Callable[[], None],
    locations: tuple[str, ...] = ("main", "back"),
    extra_snapshot: Callable[[], Any] | None = None,
) -> type[RuleBasedStateMachine]:
    """A state machine over whatever store ``uow_factory`` opens. ``reset`` empties that store
    before each example; ``extra_snapshot`` adds store-specific state (say, the outbox) to what
    a refused duplicate must leave unchanged."""

    class BackorderStateMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            reset()
            self.clock = FixedClock(START)
            self.bus = MessageBus(uow_factory, HandlerContext(self.clock, EnginePolicy()), RuleSet())
            with uow_factory() as uow:
                for location in locations:
                    uow.catalog.ensure_location(location)
                uow.catalog.upsert_supplier(SUPPLIER)
                for sku in CATALOG:
                    uow.catalog.upsert_sku(sku)
                for item in ITEMS:
                    uow.catalog.upsert_supplier_item(item)
                uow.commit()
            self.placed: dict[str, commands.PlaceOrder] = {}
            self._seen: tuple[dict[tuple[str, str], StockLevel], list[Order]] | None = None

        def handle(self, cmd: commands.Command) -> None:
            self._seen = None
            self.bus.handle(cmd)

        # --- reading the store ------------------------------------------------------------

        def read(self) -> tuple[dict[tuple[str, str], StockLevel], list[Order]]:
            """Levels and orders as stored, read once per step."""
            if self._seen is None:
                with uow_factory() as uow:
                    levels = uow.stock.levels(SKUS)
                    found = [uow.orders.get(order_id) for order_id in sorted(self.placed)]
                orders = [order for order in found if order is not None]
                assert len(orders) == len(self.placed), "a placed order is missing from the store"
                self._seen = levels, orders
            return self._seen

        def open_lines(self) -> list[tuple[Order, OrderLine]]:
            _, orders = self.read()
            return [(order, line) for order in orders for line in order.lines if line.is_open]

        def snapshot(self) -> Any:
            with uow_factory() as uow:
                levels = sorted(uow.stock.levels(SKUS).items())
                orders = [uow.orders.get(order_id) for order_id in sorted(self.placed)]
                ledgers = [uow.orders.ledger(order_id) for order_id in sorted(self.placed)]
                positions = sorted(uow.stock.positions(SKUS).items())
                drafts = uow.purchasing.drafts()
            return levels, orders, ledgers, positions, drafts, extra_snapshot() if extra_snapshot else None

        # --- rules ------------------------------------------------------------------------

        @rule(
            lines=order_lines,
            priority=st.integers(0, 2),
            ship_complete=st.booleans(),
            minutes=st.integers(-120, 120),
        )
        def place_order(self, lines: list[tuple[str, int]], priority: int, ship_complete: bool, minutes: int) -> None:
            cmd = commands.PlaceOrder(
                f"O{len(self.placed) + 1:03d}",
                "web",
                self.clock.now() + timedelta(minutes=minutes),
                tuple(NewLine(no, sku, qty) for no, (sku, qty) in enumerate(lines, start=1)),
                priority=priority,
                ship_complete=ship_complete,
            )
            self.placed[cmd.order_id] = cmd
            self.handle(cmd)

        @precondition(lambda self: bool(self.placed))
        @rule(data=st.data())
        def cancel_order(self, data: st.DataObject) -> None:
            order_id = data.draw(st.sampled_from(sorted(self.placed)), label="order")
            line_nos = [line.line_no for line in self.placed[order_id].lines]
            chosen = data.draw(st.lists(st.sampled_from(line_nos), unique=True), label="lines")
            self.handle(commands.CancelOrder(order_id, tuple(chosen)))

        @rule(sku=st.sampled_from(SKUS), location=st.sampled_from(locations), quantity=st.integers(1, 8))
        def receive_stock(self, sku: str, location: str, quantity: int) -> None:
            self.handle(commands.ReceiveStock(sku, location, quantity, self.clock.now()))

        @rule(
            sku=st.sampled_from(SKUS),
            location=st.sampled_from(locations),
            delta=st.integers(-5, 5).filter(bool),
        )
        def adjust_stock(self, sku: str, location: str, delta: int) -> None:
            self.handle(commands.AdjustStock(sku, location, delta))

        @precondition(lambda self: bool(self.placed))
        @rule(data=st.data())
        def ship_some_of_an_allocated_line(self, data: st.DataObject) -> None:
            shippable = [(o.id, line) for o, line in self.open_lines() if line.unshipped_allocated > 0]
            if not shippable:
                return
            order_id, line = data.draw(st.sampled_from(shippable), label="line")
            quantity = data.draw(st.integers(1, line.unshipped_allocated), label="quantity")
            location = data.draw(st.none() | st.sampled_from(locations), label="location")
            self.handle(commands.ShipLine(order_id, line.line_no, quantity, location))

        @precondition(lambda self: bool(self.placed))
        @rule(data=st.data())
        def deliver_an_order_twice(self, data: st.DataObject) -> None:
            order_id = data.draw(st.sampled_from(sorted(self.placed)), label="order")
            before = self.snapshot()
            with pytest.raises(DuplicateOrder):
                self.bus.handle(self.placed[order_id])
            assert self.snapshot() == before

        @rule(hours=st.integers(1, 72))
        def time_passes(self, hours: int) -> None:
            self.clock.advance(hours=hours)

        # beyond the brief's five: paths that move stock or rank in other ways

        @rule(
            sku=st.sampled_from(SKUS),
            location=st.sampled_from(locations),
            on_hand=st.integers(-3, 10),
            minutes_ago=st.integers(0, 30),
        )
        def channel_reports_a_stock_level(self, sku: str, location: str, on_hand: int, minutes_ago: int) -> None:
            observed = self.clock.now() - timedelta(minutes=minutes_ago)
            self.handle(commands.SetStockLevel(sku, location, on_hand, observed, "shop"))

        @precondition(lambda self: bool(self.placed))
        @rule(data=st.data())
        def channel_ships_units_never_allocated(self, data: st.DataObject) -> None:
            waiting = [(o.id, line) for o, line in self.open_lines() if line.backordered > 0]
            if not waiting:
                return
            order_id, line = data.draw(st.sampled_from(waiting), label="line")
            low = line.unshipped_allocated + 1
            quantity = data.draw(st.integers(low, line.quantity - line.shipped), label="quantity")
            location = data.draw(st.none() | st.sampled_from(locations), label="location")
            self.handle(commands.ShipLine(order_id, line.line_no, quantity, location))

        @rule()
        def full_backorder_processing(self) -> None:
            self.handle(commands.RunBackorderProcessing())

        @precondition(lambda self: bool(self.placed))
        @rule(data=st.data(), priority=st.integers(0, 3))
        def change_priority(self, data: st.DataObject, priority: int) -> None:
            order_id = data.draw(st.sampled_from(sorted(self.placed)), label="order")
            self.handle(commands.ChangePriority(order_id, priority))

        @rule()
        def send_draft_purchase_orders(self) -> None:
            self.handle(commands.SendDuePurchaseOrders(force=True))

        # --- invariants -------------------------------------------------------------------

        @invariant()
        def allocation_never_exceeds_stock_on_hand(self) -> None:
            levels, _ = self.read()
            for key, level in levels.items():
                assert level.allocated >= 0, key
                if level.on_hand >= 0:
                    assert level.allocated <= level.on_hand, key

        @invariant()
        def every_open_line_is_allocated_or_backordered_in_full(self) -> None:
            for order, line in self.open_lines():
                where = f"{order.id} line {line.line_no}"
                assert line.allocated + line.backordered == line.quantity, where
                assert 0 <= line.shipped <= line.allocated, where
                assert line.backordered >= 0, where

        @invariant()
        def every_waiting_line_has_an_eta(self) -> None:
            for order, line in self.open_lines():
                if line.backordered > 0:
                    assert line.eta is not None, f"{order.id} line {line.line_no} waits with no ETA"

        @invariant()
        def no_stock_sits_idle_while_a_partial_line_waits(self) -> None:
            levels, orders = self.read()
            available: dict[str, int] = defaultdict(int)
            for level in levels.values():
                available[level.sku] += level.available
            for order in orders:
                if order.ship_complete:
                    continue
                for line in order.lines:
                    if line.is_open and line.backordered > 0:
                        assert available[line.sku] == 0, (
                            f"{order.id} line {line.line_no} waits for {line.backordered} {line.sku} "
                            f"while {available[line.sku]} are available"
                        )

        @invariant()
        def stock_allocated_matches_what_open_lines_hold(self) -> None:
            levels, orders = self.read()
            by_levels: dict[str, int] = defaultdict(int)
            for level in levels.values():
                by_levels[level.sku] += level.allocated
            by_lines: dict[str, int] = defaultdict(int)
            for order in orders:
                for line in order.lines:
                    if line.is_open:
                        by_lines[line.sku] += line.allocated - line.shipped
            for sku in SKUS:
                assert by_levels[sku] == by_lines[sku], sku

        @invariant()
        def what_lines_hold_at_each_location_is_what_the_location_has_allocated(self) -> None:
            levels, orders = self.read()
            held: dict[tuple[str, str], int] = defaultdict(int)
            with uow_factory() as uow:
                for order in orders:
                    for line in order.lines:
                        if line.is_open and line.id is not None:
                            at = uow.orders.held_at(line.id)
                            assert sum(at.values()) == line.unshipped_allocated, f"{order.id} line {line.line_no}"
                            for location, quantity in at.items():
                                held[(line.sku, location)] += quantity
            for key, level in levels.items():
                assert held.get(key, 0) == level.allocated, key

    return BackorderStateMachine


MACHINE_SETTINGS = settings(max_examples=60, stateful_step_count=30, deadline=None)


def _fake_store() -> tuple[Callable[[], UnitOfWork], Callable[[], None], Callable[[], Any]]:
    uow = FakeUnitOfWork()
    return (lambda: uow), uow.reset, (lambda: list(uow.state.outbox))


_factory, _reset, _outbox = _fake_store()
TestBackorderStateMachineOnFakes = build_machine(_factory, _reset, extra_snapshot=_outbox).TestCase
TestBackorderStateMachineOnFakes.settings = MACHINE_SETTINGS
