"""`backorder demo`: a month of an art-materials shop on a fresh SQLite database.

Loads the bundled catalog (suppliers, SKUs, stock), then replays simulated days: orders from
three channels (web shop, shop-floor POS, B2B portal), threshold breaches and backorders,
purchase orders consolidated per supplier and sent, supplier receipts (some short), the
allocations they cause, shipments, a few cancellations, and every message in the sandbox."""

from __future__ import annotations

import csv
import importlib.resources
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from backorder.bootstrap import Application, bootstrap, read_config
from backorder.config import Config
from backorder.domain import commands as c
from backorder.domain.errors import DomainError
from backorder.importer import import_file
from backorder.services.ports import ManualClock
from backorder.store.sandbox import sandbox_counts

CHANNELS = (("web", 0.6), ("pos", 0.25), ("b2b", 0.15))
FIRST_NAMES = ("Ada", "Berthe", "Claude", "Dora", "Egon", "Frida", "Gustav", "Hilma", "Isamu", "Joan", "Kathe", "Lee")
LAST_NAMES = (
    "Lovelace",
    "Morisot",
    "Monet",
    "Carrington",
    "Schiele",
    "Kahlo",
    "Klimt",
    "af Klint",
    "Noguchi",
    "Mitchell",
)


@dataclass
class DemoSummary:
    days: int
    counts: dict[str, int]
    messages: dict[str, int]
    purchase_orders: list[dict[str, Any]]
    receipts: int
    shipped_lines: int
    cancelled_orders: int
    explain_example: dict[str, Any] | None
    database_url: str
    sandbox_folder: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "orders": self.counts["orders"],
            "order_lines": self.counts["order_lines"],
            "backorder_lines": self.counts["backorder_lines"],
            "purchase_orders": len(self.purchase_orders),
            "notifications": self.counts["notifications"],
            "allocated_from_receipts": self.counts["allocated_from_receipts"],
            "open_backorders": self.counts["open_backorders"],
            "open_backorder_units": self.counts["open_backorder_units"],
            "receipts": self.receipts,
            "shipped_lines": self.shipped_lines,
            "cancelled_orders": self.cancelled_orders,
            "messages_by_type": self.messages,
            "purchase_orders_by_supplier": _by_supplier(self.purchase_orders),
            "days": self.days,
            "database_url": self.database_url,
            "sandbox_folder": self.sandbox_folder,
        }


def _by_supplier(pos: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"purchase_orders": 0, "lines": 0, "units": 0})
    for po in pos:
        entry = out[po["supplier"]]
        entry["purchase_orders"] += 1
        entry["lines"] += po["lines"]
        entry["units"] += po["units"]
    return dict(out)


def demo_config(workdir: Path) -> Config:
    # `backorder --config X demo` uses X (its [notify] providers, [messages]…); BACKORDER_CONFIG too.
    import click

    context = click.get_current_context(silent=True)
    chosen = context.find_root().params.get("config") if context is not None else None
    base = read_config(chosen)
    messages = base.messages
    if "messages" not in base.model_fields_set:  # the demo shop's checkout collects SMS consent
        messages = messages.model_copy(update={"sms_consent_from_order": True, "shop_name": "Backorder demo shop"})
    return base.model_copy(
        update={
            "database_url": f"sqlite:///{workdir / 'demo.db'}",
            "engine": base.engine.model_copy(
                update={"auto_send_purchase_orders": True, "po_consolidation_minutes": 240}
            ),
            "sandbox": base.sandbox.model_copy(update={"folder": str(workdir / "sandbox_outbox")}),
            "worker": base.worker.model_copy(update={"bop_interval_minutes": 0}),
            "messages": messages,
        }
    )


def _catalog_rows(name: str) -> list[dict[str, str]]:
    path = importlib.resources.files("backorder") / "demo_data" / name
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run_demo(
    workdir: Path,
    *,
    orders: int = 400,
    seed: int = 7,
    days: int = 42,
    progress: Callable[[str, int, int], None] | None = None,
    config: Config | None = None,
) -> tuple[Application, DemoSummary]:
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    start = datetime.combine(today - timedelta(days=days), time(8, 0), tzinfo=UTC)
    clock = ManualClock(start)
    config = config or demo_config(workdir)
    app = bootstrap(config, clock=clock)
    report = progress or (lambda stage, done, total: None)

    data = importlib.resources.files("backorder") / "demo_data"
    for i, kind in enumerate(("suppliers", "skus", "stock")):
        with importlib.resources.as_file(data / f"{kind}.csv") as path:
            import_file(app.bus, path, kind)
        report("catalog", i + 1, 3)

    skus = _catalog_rows("skus.csv")
    weights = [1 + int(row["reorder_point"] or 0) for row in skus]
    plan = _plan_orders(rng, skus, weights, orders, start, days)
    receipts = shipped = cancelled = 0
    waiting_since: dict[str, datetime] = {}
    step = timedelta(hours=4)
    now, end, index = start, start + timedelta(days=days), 0
    total_steps = int((end - start) / step)
    step_no = 0
    while now < end:
        now += step
        step_no += 1
        clock.set(now)
        while index < len(plan) and plan[index].placed_at <= now:
            order = plan[index]
            index += 1
            clock.set(order.placed_at)
            happened = app.bus.handle(order)
            if any(e.name == "BackorderCreated" for e in happened):
                waiting_since[order.order_id] = order.placed_at
        clock.set(now)
        app.bus.handle(c.SendDuePurchaseOrders())
        _acknowledge_sent(app, rng, now)
        receipts += _deliver_due_receipts(app, rng, now)
        if now.hour == 16:  # the afternoon pick: ship complete orders, a few customers give up
            shipped += _ship_ready_orders(app)
            cancelled += _cancel_some(app, rng, waiting_since, now)
        app.dispatcher.drain()
        report("days", step_no, total_steps)
    app.dispatcher.drain()
    counts = app.read.counts()
    messages = {f"{kind}:{template}": n for (kind, template), n in sorted(sandbox_counts(app.engine).items())}
    example = _explain_example(app)
    summary = DemoSummary(
        days,
        counts,
        messages,
        app.read.purchase_orders(),
        receipts,
        shipped,
        cancelled,
        example,
        config.database_url,
        config.sandbox.folder or "",
    )
    return app, summary


def _plan_orders(
    rng: random.Random, skus: list[dict[str, str]], weights: list[int], count: int, start: datetime, days: int
) -> list[c.PlaceOrder]:
    plan = []
    for n in range(count):
        channel = rng.choices([ch for ch, _ in CHANNELS], [w for _, w in CHANNELS])[0]
        at = start + timedelta(seconds=rng.uniform(0, days * 86400 * 0.92))
        b2b = channel == "b2b"
        line_count = rng.randint(2, 6) if b2b else rng.choice((1, 1, 2, 2, 3, 4))
        chosen = {row["sku"] for row in rng.choices(skus, weights, k=line_count)}
        lines = tuple(
            c.NewLine(i + 1, sku, rng.randint(3, 12) if b2b else rng.choice((1, 1, 1, 2, 2, 3)))
            for i, sku in enumerate(sorted(chosen))
        )
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        handle = f"{first}.{last}".lower().replace(" ", "")
        plan.append(
            c.PlaceOrder(
                order_id=f"{channel.upper()}-{1001 + n}",
                channel=channel,
                placed_at=at,
                lines=lines,
                priority=1 if b2b else 0,
                ship_complete=b2b and rng.random() < 0.3,
                customer_email=None if channel == "pos" and rng.random() < 0.5 else f"{handle}{n}@example.com",
                customer_phone=f"+4477009{n:05d}" if rng.random() < 0.35 else None,
                customer_name=f"{first} {last}",
            )
        )
    plan.sort(key=lambda o: o.placed_at)
    return plan


def _acknowledge_sent(app: Application, rng: random.Random, now: datetime) -> None:
    """Suppliers confirm sent POs within a day; about one in five pushes the date back."""
    open_lines = {po["number"]: po["lines"] for po in app.read.purchase_orders_due(date.max)}
    for po in app.read.purchase_orders():
        if po["status"] != "sent" or po["sent_at"] is None or now - po["sent_at"] < timedelta(hours=20):
            continue
        expected = [line["expected_on"] for line in open_lines.get(po["number"], []) if line["expected_on"]]
        later = max(expected) + timedelta(days=rng.randint(3, 10)) if expected and rng.random() < 0.2 else None
        app.bus.handle(c.AcknowledgePurchaseOrder(po["number"], later))


def _deliver_due_receipts(app: Application, rng: random.Random, now: datetime) -> int:
    """Suppliers deliver sent POs on their expected date; about one delivery in six is short."""
    delivered = 0
    for po in app.read.purchase_orders_due(now.date()):
        received_at = now
        short = False
        for line in po["lines"]:
            outstanding = line["quantity"] - line["received"]
            if outstanding <= 0:
                continue
            quantity = outstanding if rng.random() > 0.17 else max(1, int(outstanding * rng.uniform(0.5, 0.9)))
            short = short or quantity < outstanding
            try:
                app.bus.handle(c.ReceiveStock(line["sku"], "warehouse", quantity, received_at, po["number"]))
                delivered += 1
            except DomainError:
                continue
        if short:
            app.bus.handle(c.CloseShortPurchaseOrder(po["number"]))
    return delivered


def _ship_ready_orders(app: Application) -> int:
    shipped = 0
    for order_id, lines in app.read.ready_to_ship():
        for line_no, quantity in lines:
            app.bus.handle(c.ShipLine(order_id, line_no, quantity))
            shipped += 1
    return shipped


def _cancel_some(app: Application, rng: random.Random, waiting_since: dict[str, datetime], now: datetime) -> int:
    cancelled = 0
    for order_id, since in list(waiting_since.items()):
        if now - since > timedelta(days=7) and rng.random() < 0.015:
            app.bus.handle(c.CancelOrder(order_id, reason="customer no longer needs the items"))
            del waiting_since[order_id]
            cancelled += 1
    return cancelled


def _explain_example(app: Application) -> dict[str, Any] | None:
    order_id = app.read.order_allocated_from_receipt()
    return app.read.explain(order_id) if order_id else None
