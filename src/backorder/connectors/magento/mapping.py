"""Magento data ↔ ours: event payloads into canonical commands, our updates into REST bodies.

Order ids are ``{channel}-{increment_id}`` (the number the customer sees); line numbers are
Magento's order ``item_id``, so a shipment or a partial cancellation names the same line.
"""

from __future__ import annotations

import email.utils
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from backorder.connectors.base import StockUpdate
from backorder.connectors.errors import MalformedPayload
from backorder.connectors.standard_webhooks import Envelope, as_int, as_text, parse_time
from backorder.domain.commands import CancelOrder, Command, NewLine, PlaceOrder, SetStockLevel, ShipLine

#: Event types the Backorder_Sync module sends (see integrations/magento/README.md).
MODULE_TOPICS = ("order.placed", "order.cancelled", "shipment.created", "stock.source_items", "stock.item")
#: Adobe Commerce webhook events we understand (``eventName`` of observer.* webhooks).
ADOBE_EVENTS = ("sales_order_place_after", "order_cancel_after")
#: The inbox keeps event keys up to this length; longer pulled keys are hashed.
EVENT_KEY_LIMIT = 200


def order_id(channel: str, increment_id: str) -> str:
    return f"{channel}-{increment_id}"


def increment_id_of(channel: str, our_order_id: str) -> str:
    return our_order_id.removeprefix(f"{channel}-")


def _items(data: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    items = data.get(key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise MalformedPayload(f"{where}: {key} must be a list of objects")
    return items


def _name(first: Any, last: Any) -> str | None:
    name = " ".join(str(p).strip() for p in (first, last) if isinstance(p, str) and p.strip())
    return name or None


def place_order(channel: str, order: Mapping[str, Any], where: str) -> PlaceOrder:
    increment = as_text(order, "increment_id", where)
    lines = []
    for item in _items(order, "items", where):
        if item.get("parent_item_id"):  # configurable/bundle children: the parent line carries the SKU
            continue
        qty = as_int(item, "qty_ordered", f"{where} item")
        if qty <= 0:
            continue
        lines.append(NewLine(as_int(item, "item_id", f"{where} item"), as_text(item, "sku", f"{where} item"), qty))
    if not lines:
        raise MalformedPayload(f"{where}: order {increment} has no lines with a quantity")
    email = order.get("customer_email")
    phone = order.get("customer_telephone") or order.get("telephone")
    name = order.get("customer_name") or _name(order.get("customer_firstname"), order.get("customer_lastname"))
    return PlaceOrder(
        order_id=order_id(channel, increment),
        channel=channel,
        placed_at=parse_time(order.get("created_at"), f"{where}: created_at"),
        lines=tuple(lines),
        customer_email=email if isinstance(email, str) and email else None,
        customer_phone=phone if isinstance(phone, str) and phone else None,
        customer_name=name if isinstance(name, str) and name else None,
        reference=increment[:64],
    )


def stock_levels(
    channel: str,
    items: Iterable[Mapping[str, Any]],
    observed_at: datetime,
    source_locations: Mapping[str, str],
    where: str,
) -> list[Command]:
    commands: list[Command] = []
    for item in items:
        source = as_text(item, "source_code", where)
        location = source_locations.get(source)
        if location is None:
            continue  # not a source we read (e.g. the one we push to): see MagentoSettings.source_locations
        commands.append(
            SetStockLevel(
                sku=as_text(item, "sku", where),
                location=location,
                on_hand=max(0, as_int(item, "quantity", where)),
                observed_at=observed_at,
                source=f"magento:{channel}",
            )
        )
    return commands


def from_module_event(channel: str, envelope: Envelope, source_locations: Mapping[str, str]) -> list[Command]:
    data, kind = envelope.data, envelope.type
    if kind == "order.placed":
        return [place_order(channel, data, kind)]
    if kind == "order.cancelled":
        return [CancelOrder(order_id(channel, as_text(data, "increment_id", kind)), reason="cancelled in Magento")]
    if kind == "shipment.created":
        oid = order_id(channel, as_text(data, "order_increment_id", kind))
        source = data.get("source_code")
        location = source_locations.get(source) if isinstance(source, str) else None
        return [
            ShipLine(oid, as_int(i, "order_item_id", kind), as_int(i, "qty", kind), location)
            for i in _items(data, "items", kind)
            if as_int(i, "qty", kind) > 0
        ]
    if kind == "stock.source_items":
        return stock_levels(channel, _items(data, "items", kind), envelope.timestamp, source_locations, kind)
    if kind == "stock.item":
        item = {**data, "source_code": data.get("source_code") or "default", "quantity": data.get("qty")}
        return stock_levels(channel, [item], envelope.timestamp, source_locations, kind)
    raise MalformedPayload(f"unknown Backorder_Sync event type {kind!r}; known: {', '.join(MODULE_TOPICS)}")


def from_adobe_webhook(channel: str, payload: Mapping[str, Any]) -> list[Command]:
    """Adobe Commerce ``observer.*`` webhooks: ``{"eventName": ..., "data": {"order": {...}}}``."""
    event = str(payload.get("eventName") or "").removeprefix("observer.")
    data = payload.get("data")
    order = data.get("order") if isinstance(data, dict) else None
    if not isinstance(order, dict):
        raise MalformedPayload(f"Adobe Commerce webhook {event or '(no eventName)'}: data.order is missing")
    if event == "sales_order_place_after":
        return [place_order(channel, order, event)]
    if event == "order_cancel_after":
        return [CancelOrder(order_id(channel, as_text(order, "increment_id", event)), reason="cancelled in Magento")]
    raise MalformedPayload(f"Adobe Commerce webhook {event!r} is not handled; known: {', '.join(ADOBE_EVENTS)}")


def source_items_body(updates: Sequence[StockUpdate], source_code: str) -> dict[str, Any]:
    """``POST /V1/inventory/source-items``: absolute quantity per SKU at our push source; a
    source item is "in stock" (status 1) only when something can be sold."""
    return {
        "sourceItems": [
            {
                "sku": u.sku,
                "source_code": source_code,
                "quantity": max(0, u.available),
                "status": 1 if u.available > 0 else 0,
            }
            for u in updates
        ]
    }


def comment_body(entity_id: int, note: str) -> dict[str, Any]:
    """``POST /V1/orders/{id}/comments``: an internal note, not e-mailed, not shown to the customer."""
    return {
        "statusHistory": {"comment": note, "is_customer_notified": 0, "is_visible_on_front": 0, "parent_id": entity_id}
    }


def reconciled_order(order: Mapping[str, Any]) -> tuple[str, dict[str, Any], datetime] | None:
    """A ``GET /V1/orders`` item (``sales-data-order-interface``) as the module's envelope:
    (topic, envelope, updated at), or None for an order we have nothing to do with."""
    state = order.get("state")
    if state in ("complete", "closed"):
        return None
    updated = parse_time(order.get("updated_at") or order.get("created_at"), "order updated_at")
    billing: Mapping[str, Any] = order["billing_address"] if isinstance(order.get("billing_address"), dict) else {}
    data = {**order, "customer_telephone": order.get("customer_telephone") or billing.get("telephone")}
    topic = "order.cancelled" if state == "canceled" else "order.placed"
    return topic, {"type": topic, "timestamp": updated.isoformat(), "data": data}, updated


def _quantity_text(value: Any) -> str | None:
    """A source item's quantity as a canonical string (``12``, ``12.0`` and ``"12.0000"`` alike)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


def pulled_source_item(
    item: Mapping[str, Any], observed_at: datetime, refresh_hours: float
) -> tuple[str, dict[str, Any]] | None:
    """A ``GET /V1/inventory/source-items`` item (``inventory-api-data-source-item-interface``:
    sku, source_code, quantity, status) as (event key, the module's ``stock.source_items``
    envelope), so the module's parser applies it. The interface has no modification time: the
    key holds the quantity (an unchanged level is a duplicate) and, when ``refresh_hours`` is set,
    the period of ``observed_at`` it falls in (each level is recorded again once per period).
    None for an item without a SKU, source or quantity."""
    sku, source = item.get("sku"), item.get("source_code")
    quantity = _quantity_text(item.get("quantity"))
    if not isinstance(sku, str) or not sku.strip() or not isinstance(source, str) or not source or quantity is None:
        return None
    period = int(observed_at.timestamp() // (refresh_hours * 3600)) if refresh_hours > 0 else 0
    key = f"reconcile-stock:{source}:{sku}:{quantity}:{period}"
    if len(key) > EVENT_KEY_LIMIT:
        key = "reconcile-stock:sha256:" + hashlib.sha256(key.encode()).hexdigest()
    data = {"items": [{k: item.get(k) for k in ("sku", "source_code", "quantity", "status")}]}
    return key, {"type": "stock.source_items", "timestamp": observed_at.isoformat(), "data": data}


def server_time(date_header: str | None, fallback: datetime) -> datetime:
    """When Magento answered, by its own clock (the one that stamps the module's events): the
    HTTP ``Date`` header, one second back (it is cut to the second and written after the read);
    ``fallback`` (our clock when the request left) without a usable header."""
    if date_header:
        try:
            when = email.utils.parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            return when.astimezone(UTC) - timedelta(seconds=1)
    return fallback
