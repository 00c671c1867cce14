"""SFCC data ↔ ours. Order ids are ``{channel}-{order_no}``; line numbers are the product line
items' ``position``. Stock read from SFCC is the record's ``allocation`` (the imported count) as of
its ``allocation_reset_date``: SFCC's stock level (allocation minus turnover) already subtracts
orders we also hold, so it is not on-hand stock."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from backorder.connectors.errors import MalformedPayload
from backorder.connectors.standard_webhooks import Envelope, as_int, as_text, parse_time
from backorder.domain.commands import CancelOrder, Command, NewLine, PlaceOrder, SetStockLevel

CARTRIDGE_TOPICS = ("order.created", "order.cancelled", "inventory.records")


def order_id(channel: str, order_no: str) -> str:
    return f"{channel}-{order_no}"


def order_no_of(channel: str, our_order_id: str) -> str:
    return our_order_id.removeprefix(f"{channel}-")


def _objects(data: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    items = data.get(key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise MalformedPayload(f"{where}: {key} must be a list of objects")
    return items


def _optional(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def from_cartridge_event(channel: str, envelope: Envelope, inventory_locations: Mapping[str, str]) -> list[Command]:
    data, kind = envelope.data, envelope.type
    if kind == "order.created":
        order_no = as_text(data, "order_no", kind)
        lines = tuple(
            NewLine(as_int(i, "position", kind), as_text(i, "product_id", kind), as_int(i, "quantity", kind))
            for i in _objects(data, "product_line_items", kind)
            if as_int(i, "quantity", kind) > 0
        )
        if not lines:
            raise MalformedPayload(f"{kind}: order {order_no} has no product line items")
        return [
            PlaceOrder(
                order_id=order_id(channel, order_no),
                channel=channel,
                placed_at=parse_time(data.get("creation_date"), f"{kind}: creation_date"),
                lines=lines,
                customer_email=_optional(data, "customer_email"),
                customer_phone=_optional(data, "phone"),
                customer_name=_optional(data, "customer_name"),
                reference=order_no[:64],
            )
        ]
    if kind == "order.cancelled":
        return [CancelOrder(order_id(channel, as_text(data, "order_no", kind)), reason="cancelled in SFCC")]
    if kind == "inventory.records":
        location = inventory_locations.get(as_text(data, "inventory_list_id", kind))
        records = _objects(data, "records", kind)
        if location is None:
            return []  # not a list we read (e.g. the one we push to): see SfccSettings.inventory_locations
        return [
            SetStockLevel(
                sku=as_text(r, "product_id", kind),
                location=location,
                on_hand=max(0, as_int(r, "allocation", kind)),
                observed_at=parse_time(r.get("allocation_reset_date"), f"{kind}: allocation_reset_date"),
                source=f"sfcc:{channel}",
            )
            for r in records
        ]
    raise MalformedPayload(f"unknown int_backorder event type {kind!r}; known: {', '.join(CARTRIDGE_TOPICS)}")


def inventory_patch_body(available: int) -> dict[str, Any]:
    """OCAPI Data ``PATCH .../product_inventory_records/{product_id}``: set the allocation."""
    return {"allocation": {"amount": max(0, available)}}


def order_update_body(settings_note: str, settings_status: str, backordered: bool, note: str) -> dict[str, Any]:
    """SCAPI Orders ``PATCH /orders/{orderNo}`` (OrderUpdateRequest: only ``c_`` attributes)."""
    return {settings_note: note[:4000], settings_status: "backordered" if backordered else "released"}


def reconciled_order(order: Mapping[str, Any]) -> tuple[str, dict[str, Any], datetime] | None:
    """A SCAPI Orders ``Order`` as the job step's envelope: (topic, envelope, modified at), or
    None for an order that was never placed (status ``created`` or ``failed``)."""
    status = order.get("status")
    if status in ("created", "failed"):
        return None
    modified = parse_time(order.get("lastModified") or order.get("creationDate"), "order lastModified")
    customer: Mapping[str, Any] = order["customerInfo"] if isinstance(order.get("customerInfo"), dict) else {}
    billing: Mapping[str, Any] = order["billingAddress"] if isinstance(order.get("billingAddress"), dict) else {}
    if status == "cancelled":
        topic, data = "order.cancelled", {"order_no": order.get("orderNo")}
    else:
        topic = "order.created"
        items = [i for i in order.get("productItems") or [] if isinstance(i, dict)]
        data = {
            "order_no": order.get("orderNo"),
            "creation_date": order.get("creationDate"),
            "customer_email": customer.get("email"),
            "customer_name": customer.get("customerName"),
            "phone": billing.get("phone"),
            "product_line_items": [
                {"position": i.get("position") or n, "product_id": i.get("productId"), "quantity": i.get("quantity")}
                for n, i in enumerate(items, start=1)
            ],
        }
    return topic, {"type": topic, "timestamp": modified.isoformat(), "data": data}, modified


#: The inbox keeps event keys up to this length; longer pulled keys are hashed.
EVENT_KEY_LIMIT = 200


def pulled_inventory_record(list_id: str, record: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """An OCAPI Data ``ProductInventoryRecord`` (``product_id``, ``allocation {amount,
    reset_date}``, ``stock_level``, ``ats``…) as (event key, the job step's ``inventory.records``
    envelope with this one record), so the job step's parser applies it. The key holds the
    allocation's reset date and amount: an unchanged allocation is a duplicate. None for a record
    without a product id or without an allocation (nothing to read as on-hand)."""
    product = record.get("product_id")
    allocation = record.get("allocation")
    if not isinstance(product, str) or not product.strip() or not isinstance(allocation, dict):
        return None
    amount, reset = allocation.get("amount"), allocation.get("reset_date")
    if not isinstance(amount, int | float) or isinstance(amount, bool) or not isinstance(reset, str) or not reset:
        return None
    key = f"reconcile-stock:{list_id}:{product}:{reset}:{format(Decimal(str(amount)).normalize(), 'f')}"
    if len(key) > EVENT_KEY_LIMIT:
        key = "reconcile-stock:sha256:" + hashlib.sha256(key.encode()).hexdigest()
    data = {
        "inventory_list_id": list_id,
        "records": [
            {
                "product_id": product,
                "allocation": amount,
                "allocation_reset_date": reset,
                "stock_level": record.get("stock_level"),
                "ats": record.get("ats"),
            }
        ],
    }
    return key, {"type": "inventory.records", "timestamp": reset, "data": data}
