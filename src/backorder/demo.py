"""`backorder demo`: a month of an art-materials shop on a fresh SQLite database.

Loads the bundled catalog (suppliers, SKUs, stock), then replays simulated days: orders from
four channels of three kinds — a Shopify storefront (``web``) and a WooCommerce wholesale shop
(``wholesale``) whose orders arrive as signed webhooks in each platform's own shape through the
real ingress (signature check, inbox commit, channel processor), and a shop-floor POS and a B2B
portal that use the order API — threshold breaches and backorders, purchase orders consolidated
per supplier and sent, supplier receipts (some short), the allocations they cause, shipments
(Shopify fulfillments and WooCommerce completions come back as webhooks too), a few
cancellations, every message in the sandbox, and the sellable quantities, tags and notes pushed
to the two platforms (an in-process stand-in for their APIs: nothing leaves the machine)."""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr
from sqlalchemy import func, select

from backorder import demo_platforms as platforms
from backorder.bootstrap import Application, bootstrap, read_config
from backorder.config import Config
from backorder.connectors.base import ApiChannelSettings, ConnectorSettings, InboundRequest
from backorder.connectors.errors import WebhookRejected
from backorder.connectors.items import HttpChannelConnector
from backorder.connectors.shopify.settings import ShopifySettings
from backorder.connectors.woocommerce.settings import WooCommerceSettings
from backorder.domain import commands as c
from backorder.domain.errors import DomainError
from backorder.importer import import_file
from backorder.services.ports import ManualClock
from backorder.store import tables as t
from backorder.store.sandbox import sandbox_counts

CHANNELS = (("web", 0.45), ("wholesale", 0.2), ("pos", 0.2), ("b2b", 0.15))
"""Channel id and its share of the orders: ``web`` is a Shopify storefront, ``wholesale`` a
WooCommerce shop (both feed orders by signed webhooks), ``pos`` and ``b2b`` use the order API."""
PLATFORMS = {"web": "shopify", "wholesale": "woocommerce", "pos": "pos", "b2b": "b2b"}
API_KEYS = {"pos": "demo-pos-till-key", "b2b": "demo-b2b-portal-key"}
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
            "orders_by_channel": self.extra.get("orders_by_channel", {}),
            "orders_by_platform": self.extra.get("orders_by_platform", {}),
            "channels": self.extra.get("channels", {}),
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
            "channels": demo_channels(),
        }
    )


def demo_channels() -> dict[str, ConnectorSettings]:
    """The demo's channels. The two platform channels have (demo) API credentials, so their
    outbound calls are made — to the in-process stand-in of :mod:`backorder.demo_platforms`."""
    common: dict[str, Any] = {"push_window_seconds": 300.0, "reconcile_minutes": 0.0, "rate_per_second": 0.0}
    return {
        "web": ShopifySettings(
            platform="shopify",
            shop_domain=platforms.SHOP_DOMAIN,
            access_token=SecretStr("shpat_demo_sandbox"),
            webhook_secret=SecretStr(platforms.SHOPIFY_SECRET),
            location_map={platforms.SHOPIFY_LOCATION: "warehouse"},
            **common,
        ),
        "wholesale": WooCommerceSettings(
            platform="woocommerce",
            store_url=platforms.WOO_STORE,
            consumer_key=SecretStr("ck_demo_sandbox"),
            consumer_secret=SecretStr("cs_demo_sandbox"),
            webhook_secret=SecretStr(platforms.WOO_SECRET),
            stock_location="warehouse",
            **common,
        ),
        "pos": ApiChannelSettings(platform="pos", api_key=SecretStr(API_KEYS["pos"])),
        "b2b": ApiChannelSettings(platform="b2b", api_key=SecretStr(API_KEYS["b2b"])),
    }


class Ingress(Protocol):
    """How the demo hands orders to the application: the way the platforms and the POS do."""

    def webhook(self, platform: str, channel: str, headers: dict[str, str], body: bytes) -> int:
        """POST /webhooks/<platform>/<channel>; returns the HTTP status."""

    def api_order(self, api_key: str, idempotency_key: str, body: bytes) -> int:
        """POST /api/v1/orders; returns the HTTP status."""


class DirectIngress:
    """The ingress steps of ``POST /webhooks/...`` and ``POST /api/v1/orders`` without HTTP, in
    the same order: channel lookup, signature over the raw body, inbox commit (the answer), then
    the processor. (``backorder demo`` passes the real routes instead, see cli.py.)"""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.services = app.channel_services

    def webhook(self, platform: str, channel: str, headers: dict[str, str], body: bytes) -> int:
        settings = self.services.settings.get(channel)
        receiver = self.services.receivers.get(channel)
        if settings is None or receiver is None or settings.kind != platform:
            return 404
        lowered = {k.lower(): v for k, v in headers.items()}
        now = self.app.clock.now()
        request = InboundRequest(platform, channel, f"/webhooks/{platform}/{channel}", lowered, body, now)
        try:
            receiver.verify(request)
        except WebhookRejected as exc:
            return exc.status_code
        identity = receiver.identify(request)
        self.services.inbox.record(platform, channel, identity.event_key, identity.topic, lowered, body, now)
        return 200

    def api_order(self, api_key: str, idempotency_key: str, body: bytes) -> int:
        channel = self.services.api_channel_for_key(api_key)
        if channel is None:
            return 401
        headers = {"idempotency-key": idempotency_key, "content-type": "application/json"}
        row_id, created = self.services.inbox.record(
            "api", channel, f"idem:{idempotency_key}", "order", headers, body, self.app.clock.now()
        )
        if created and row_id is not None:
            self.services.processor.process_id(row_id)
        return 201 if created else 200


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
    ingress: Callable[[Application], Ingress] | None = None,
) -> tuple[Application, DemoSummary]:
    """``ingress`` builds what delivers webhooks and API orders (default :class:`DirectIngress`;
    ``backorder demo`` passes one that calls the real HTTP routes in process)."""
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
    shop = Shop(app, (ingress or DirectIngress)(app), platforms.Catalog([row["sku"] for row in skus]))
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
            our_id = shop.place(order)
            if our_id is not None and shop.waiting(our_id):
                waiting_since[our_id] = order.placed_at
        clock.set(now)
        app.bus.handle(c.SendDuePurchaseOrders())
        _acknowledge_sent(app, rng, now)
        receipts += _deliver_due_receipts(app, rng, now)
        if now.hour == 16:  # the afternoon pick: ship complete orders, a few customers give up
            shipped += shop.ship_ready()
            cancelled += _cancel_some(shop, rng, waiting_since, now)
        shop.sync(now)
        report("days", step_no, total_steps)
    shop.sync(now + timedelta(days=1))  # the last stock pushes of the month go out too
    close = getattr(shop.ingress, "close", None)
    if callable(close):
        close()
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
        extra=shop.report(),
    )
    return app, summary


class Shop:
    """The demo's sales channels: each order goes in the way its channel sends it."""

    def __init__(self, app: Application, ingress: Ingress, catalog: platforms.Catalog) -> None:
        self.app = app
        self.ingress = ingress
        self.catalog = catalog
        self.sandbox = platforms.PlatformSandbox(catalog)
        self.bodies: dict[str, dict[str, Any]] = {}
        """Our order id → the platform's order body last sent (for fulfilments and cancellations)."""
        self.refused: dict[str, int] = defaultdict(int)
        self._events = 0
        for cid in ("web", "wholesale"):
            connector: Any = app.routes.channels.get(cid)
            if isinstance(connector, HttpChannelConnector):
                base = connector.settings.api_base()  # type: ignore[attr-defined]
                connector.route_http(lambda cid=cid, base=base: self.sandbox.client(cid, base))

    def _event(self) -> str:
        self._events += 1
        return f"demo-{self._events}"

    def _send(self, platform: str, channel: str, topic: str, data: dict[str, Any]) -> int:
        body = json.dumps(data, separators=(",", ":")).encode()
        event, now = self._event(), self.app.clock.now()
        if platform == "shopify":
            headers = platforms.shopify_headers(topic, body, event, now)
        else:
            headers = platforms.woo_headers(topic, body, event)
        status = self.ingress.webhook(platform, channel, headers, body)
        if status != 200:
            self.refused[channel] += 1
        self.app.channel_services.processor.drain()  # the worker processes the inbox after the 200
        return status

    def place(self, order: c.PlaceOrder) -> str | None:
        number = int(order.order_id.rsplit("-", 1)[1])
        first, _, last = (order.customer_name or "Demo Customer").partition(" ")
        customer = platforms.Customer(first, last, order.customer_email, order.customer_phone)
        lines = [platforms.Line(line.sku, line.quantity) for line in order.lines]
        if order.channel == "web":
            data = platforms.shopify_order(number, order.placed_at, lines, customer)
            our_id = f"web-{data['id']}"
            self._send("shopify", "web", "orders/create", data)
        elif order.channel == "wholesale":
            data = platforms.woo_order(number, order.placed_at, lines, customer, self.catalog)
            our_id = f"wholesale-{data['id']}"
            self._send("woocommerce", "wholesale", "order.created", data)
        else:
            body = {
                "order_id": order.order_id,
                "placed_at": order.placed_at.isoformat(),
                "lines": [
                    {"sku": line.sku, "quantity": line.quantity, "line_no": line.line_no} for line in order.lines
                ],
                "customer": {"email": order.customer_email, "phone": order.customer_phone, "name": order.customer_name},
                "priority": order.priority,
                "ship_complete": order.ship_complete,
            }
            raw = json.dumps(body, separators=(",", ":")).encode()
            status = self.ingress.api_order(API_KEYS[order.channel], hashlib.sha256(raw).hexdigest()[:32], raw)
            if status not in (200, 201):
                self.refused[order.channel] += 1
            return f"{order.channel}-{order.order_id}"
        self.bodies[our_id] = data
        return our_id

    def waiting(self, order_id: str) -> bool:
        ol = t.order_lines.c
        with self.app.engine.connect() as conn:
            backordered = conn.execute(select(func.sum(ol.backordered)).where(ol.order_id == order_id)).scalar()
        return bool(backordered)

    def ship_ready(self) -> int:
        """Ship orders whose lines are all covered: Shopify sends ``fulfillments/create``,
        WooCommerce an ``order.updated`` with status ``completed``, the others are shipped here."""
        shipped = 0
        for order_id, lines in self.app.read.ready_to_ship():
            data = self.bodies.get(order_id)
            now = self.app.clock.now()
            if order_id.startswith("web-") and data is not None:
                self._send("shopify", "web", "fulfillments/create", platforms.shopify_fulfillment(data, now))
            elif order_id.startswith("wholesale-") and data is not None:
                data = {**data, "status": "completed", "date_modified_gmt": platforms._gmt(now)}
                data["date_completed_gmt"] = data["date_modified_gmt"]
                self.bodies[order_id] = data
                self._send("woocommerce", "wholesale", "order.updated", data)
            else:
                for line_no, quantity in lines:
                    self.app.bus.handle(c.ShipLine(order_id, line_no, quantity))
            shipped += len(lines)
        return shipped

    def cancel(self, order_id: str, reason: str) -> None:
        data = self.bodies.get(order_id)
        now = self.app.clock.now()
        if order_id.startswith("web-") and data is not None:
            stamp = platforms._shopify_time(now)
            data = {**data, "cancelled_at": stamp, "updated_at": stamp, "cancel_reason": "customer"}
            self._send("shopify", "web", "orders/cancelled", data)
        elif order_id.startswith("wholesale-") and data is not None:
            data = {**data, "status": "cancelled", "date_modified_gmt": platforms._gmt(now)}
            self._send("woocommerce", "wholesale", "order.updated", data)
        else:
            self.app.bus.handle(c.CancelOrder(order_id, reason=reason))

    def sync(self, now: datetime) -> None:
        """What the worker does each round: due stock pushes become batches, the outbox drains."""
        self.app.dispatcher.drain()
        self.app.channel_services.sync.flush(now)
        self.app.dispatcher.drain()

    def report(self) -> dict[str, Any]:
        o, i = t.orders.c, t.inbox.c
        with self.app.engine.connect() as conn:
            by_channel = {r[0]: int(r[1]) for r in conn.execute(select(o.channel, func.count()).group_by(o.channel))}
            inbox: dict[str, dict[str, int]] = defaultdict(dict)
            for channel, status, n in conn.execute(
                select(i.channel, i.status, func.count()).group_by(i.channel, i.status)
            ):
                inbox[channel][status] = int(n)
            topics: dict[str, dict[str, int]] = defaultdict(dict)
            for channel, topic, n in conn.execute(
                select(i.channel, i.topic, func.count()).group_by(i.channel, i.topic)
            ):
                topics[channel][topic] = int(n)
        by_platform: dict[str, int] = defaultdict(int)
        channels = {}
        for cid, _share in CHANNELS:
            platform = PLATFORMS[cid]
            by_platform[platform] += by_channel.get(cid, 0)
            entry: dict[str, Any] = {
                "platform": platform,
                "orders": by_channel.get(cid, 0),
                "ingress": "signed webhooks" if platform in ("shopify", "woocommerce") else "order API",
                "inbox": dict(sorted(inbox.get(cid, {}).items())),
                "topics": dict(sorted(topics.get(cid, {}).items())),
                "refused": self.refused.get(cid, 0),
            }
            connector = self.app.routes.channels.get(cid)
            if connector is not None:
                missing = connector.settings.missing_credentials()
                entry["outbound"] = (
                    f"waiting for credentials ({', '.join(missing)})"
                    if missing
                    else "demo platform sandbox (in process)"
                )
                entry["platform_calls"] = self.sandbox.summary(cid)
            channels[cid] = entry
        return {
            "orders_by_channel": dict(sorted(by_channel.items())),
            "orders_by_platform": dict(by_platform),
            "channels": channels,
        }


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


def _cancel_some(shop: Shop, rng: random.Random, waiting_since: dict[str, datetime], now: datetime) -> int:
    cancelled = 0
    for order_id, since in list(waiting_since.items()):
        if now - since > timedelta(days=7) and rng.random() < 0.015:
            shop.cancel(order_id, reason="customer no longer needs the items")
            del waiting_since[order_id]
            cancelled += 1
    return cancelled


def _explain_example(app: Application) -> dict[str, Any] | None:
    order_id = app.read.order_allocated_from_receipt()
    return app.read.explain(order_id) if order_id else None
