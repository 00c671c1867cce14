"""WooCommerce data ↔ ours. Webhook bodies are the REST v3 resource as ``GET`` would return it
(https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from backorder.connectors.errors import MalformedPayload
from backorder.connectors.items import ItemDirectory, ItemRef, MemoryDirectory, load_json
from backorder.domain import commands

__all__ = ["ItemDirectory", "ItemRef", "MemoryDirectory", "load_json"]

CANCELLED = frozenset({"cancelled", "refunded", "failed", "trash"})


def gmt_time(data: Mapping[str, Any], key: str) -> datetime:
    """WooCommerce ``*_gmt`` fields are ISO 8601 without an offset, in UTC."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"{key} is missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedPayload(f"{key} is not an ISO 8601 time: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def order_external_id(data: Mapping[str, Any]) -> str:
    raw = data.get("id")
    if isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit()):
        return str(raw)
    raise MalformedPayload("order has no id")


def order_id_for(channel: str, external: str) -> str:
    return f"{channel}-{external}"


def external_from_order_id(channel: str, order_id: str) -> str:
    return order_id.removeprefix(f"{channel}-")


def place_order(channel: str, data: Mapping[str, Any]) -> commands.PlaceOrder:
    external = order_external_id(data)
    items = data.get("line_items")
    if not isinstance(items, list):
        raise MalformedPayload("order has no line_items list")
    lines = []
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise MalformedPayload(f"line_items[{position - 1}] is not an object")
        sku = (item.get("sku") or "").strip()
        quantity = item.get("quantity")
        if not sku:
            continue
        if not isinstance(quantity, int) or quantity < 0:
            raise MalformedPayload(f"line_items[{position - 1}].quantity is not a whole number")
        if quantity:
            lines.append(commands.NewLine(position, sku, quantity))
    if not lines:
        raise MalformedPayload("order has no line item with a SKU")
    billing = data.get("billing") or {}
    name = f"{billing.get('first_name') or ''} {billing.get('last_name') or ''}".strip() or None
    return commands.PlaceOrder(
        order_id=order_id_for(channel, external),
        channel=channel,
        placed_at=gmt_time(data, "date_created_gmt"),
        lines=tuple(lines),
        customer_email=billing.get("email") or None,
        customer_phone=billing.get("phone") or None,
        customer_name=name,
    )


def order_commands(
    channel: str, topic: str, data: Mapping[str, Any], location: str | None = None
) -> list[commands.Command]:
    if topic == "order.deleted":
        return [commands.CancelOrder(order_id_for(channel, order_external_id(data)), reason="deleted on woocommerce")]
    status = data.get("status")
    if status in CANCELLED:
        return [commands.CancelOrder(order_id_for(channel, order_external_id(data)), reason=f"{status} on woocommerce")]
    if status in ("pending", "checkout-draft"):
        return []  # not paid yet: WooCommerce has not reduced stock either; order.updated follows
    placed = place_order(channel, data)
    if status == "completed":
        return [placed, *completion_shipments(placed, data, location)]
    return [placed]


def completion_shipments(
    placed: commands.PlaceOrder, data: Mapping[str, Any], location: str | None
) -> list[commands.Command]:
    """WooCommerce has no fulfilment webhook: an order becoming ``completed`` means the shop sent
    it. Each line item ships what is still open of its SKU, once: the ref
    ``woocommerce:completed:<order id>:<line item id>`` is recorded with the shipment, so a repeated
    or later ``order.updated`` of the completed order ships nothing more."""
    external = order_external_id(data)
    found: list[commands.Command] = []
    for position, item in enumerate(data.get("line_items") or [], start=1):
        if not isinstance(item, dict):
            continue
        sku = (item.get("sku") or "").strip()
        quantity = item.get("quantity")
        if not sku or not isinstance(quantity, int) or quantity <= 0:
            continue
        line = item.get("id") if isinstance(item.get("id"), int) else f"#{position}"
        ref = f"woocommerce:completed:{external}:{line}"
        found.append(commands.ShipSku(placed.order_id, sku, quantity, location, shipment_ref=ref))
    return found


def items_of_product(data: Mapping[str, Any]) -> list[ItemRef]:
    raw = data.get("id")
    sku = (data.get("sku") or "").strip()
    if not sku or not isinstance(raw, int):
        return []
    parent = data.get("parent_id")
    return [ItemRef(sku, str(raw), None, str(parent) if isinstance(parent, int) and parent else None)]


def items_of_order(data: Mapping[str, Any]) -> list[ItemRef]:
    found = []
    for item in data.get("line_items") or []:
        if not isinstance(item, dict):
            continue
        sku = (item.get("sku") or "").strip()
        product = item.get("product_id")
        variation = item.get("variation_id")
        if not sku or not isinstance(product, int) or not product:
            continue
        if isinstance(variation, int) and variation:
            found.append(ItemRef(sku, str(variation), None, str(product)))
        else:
            found.append(ItemRef(sku, str(product)))
    return found
