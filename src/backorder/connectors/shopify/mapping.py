"""Shopify data ↔ ours: webhook bodies (REST JSON shape) into canonical commands, order ids,
GraphQL ids, and the item directory the connector resolves SKUs through."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from backorder.connectors.errors import MalformedPayload
from backorder.connectors.items import ItemDirectory, ItemRef, MemoryDirectory, load_json
from backorder.domain import commands

__all__ = ["ItemDirectory", "ItemRef", "MemoryDirectory", "load_json"]


def parse_time(value: Any, what: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"{what} is missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedPayload(f"{what} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise MalformedPayload(f"{what} has no time zone: {value!r}")
    return parsed.astimezone(UTC)


def gid_number(gid: Any) -> str | None:
    """``gid://shopify/Order/820982911946154508`` → ``820982911946154508`` (exact: the numeric
    ``id`` fields of published samples lost precision in JSON tooling, the gid strings did not)."""
    if isinstance(gid, str) and gid.startswith("gid://shopify/"):
        tail = gid.rsplit("/", 1)[-1].split("?", 1)[0]
        return tail if tail.isdigit() else None
    return None


def external_order_id(data: Mapping[str, Any]) -> str:
    exact = gid_number(data.get("admin_graphql_api_id"))
    if exact:
        return exact
    raw = data.get("id")
    if isinstance(raw, (int, str)) and str(raw).isdigit():
        return str(raw)
    raise MalformedPayload("order has no id")


def order_id_for(channel: str, external_id: str) -> str:
    return f"{channel}-{external_id}"


def external_from_order_id(channel: str, order_id: str) -> str:
    return order_id.removeprefix(f"{channel}-")


def _customer(data: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    customer = data.get("customer") or {}
    billing = data.get("billing_address") or {}
    email = data.get("email") or data.get("contact_email") or customer.get("email")
    phone = data.get("phone") or customer.get("phone") or billing.get("phone")
    first = customer.get("first_name") or billing.get("first_name") or ""
    last = customer.get("last_name") or billing.get("last_name") or ""
    name = f"{first} {last}".strip() or billing.get("name") or None
    return (email or None), (phone or None), name


def place_order(channel: str, data: Mapping[str, Any]) -> commands.PlaceOrder:
    external = external_order_id(data)
    items = data.get("line_items")
    if not isinstance(items, list):
        raise MalformedPayload("order has no line_items list")
    lines = []
    refunded = refunded_units(data)
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise MalformedPayload(f"line_items[{position - 1}] is not an object")
        sku = (item.get("sku") or "").strip()
        quantity = item.get("current_quantity")
        if quantity is None and isinstance(item.get("quantity"), int):
            # API versions before 2024-01 have no current_quantity: the refunds say what was removed
            quantity = max(item["quantity"] - refunded.get(_line_key(item) or "", 0), 0)
        if not sku:
            continue  # custom items, tips and gift cards carry no SKU: nothing of ours to back-order
        if not isinstance(quantity, int) or quantity < 0:
            raise MalformedPayload(f"line_items[{position - 1}].quantity is not a whole number")
        if quantity == 0:
            continue  # removed by an order edit
        lines.append(commands.NewLine(position, sku, quantity))
    if not lines:
        raise MalformedPayload("order has no line item with a SKU")
    email, phone, name = _customer(data)
    return commands.PlaceOrder(
        order_id=order_id_for(channel, external),
        channel=channel,
        placed_at=parse_time(data.get("created_at") or data.get("processed_at"), "created_at"),
        lines=tuple(lines),
        customer_email=email,
        customer_phone=phone,
        customer_name=name,
        reference=_text(data.get("name")),  # "#1001": the number on the customer's confirmation
    )


def _text(value: Any, limit: int = 64) -> str | None:
    return (value.strip()[:limit] or None) if isinstance(value, str) else None


def _line_key(item: Mapping[str, Any]) -> str | None:
    return _digits(item.get("id")) or gid_number(item.get("admin_graphql_api_id"))


def refunded_units(data: Mapping[str, Any]) -> dict[str, int]:
    """Units refunded per line item id, from the order's ``refunds`` (each a REST Refund:
    ``refund_line_items[].line_item_id`` / ``.line_item`` and ``.quantity``). Shopify's
    ``current_quantity`` already subtracts them; this serves bodies that lack it."""
    found: dict[str, int] = {}
    for refund in data.get("refunds") or []:
        for item in (refund.get("refund_line_items") or []) if isinstance(refund, dict) else []:
            if not isinstance(item, dict) or not isinstance(item.get("quantity"), int):
                continue
            line: Mapping[str, Any] = item["line_item"] if isinstance(item.get("line_item"), dict) else {}
            key = _digits(item.get("line_item_id")) or _line_key(line)
            if key:
                found[key] = found.get(key, 0) + item["quantity"]
    return found


def order_commands(channel: str, data: Mapping[str, Any]) -> list[commands.Command]:
    """orders/create and orders/updated: the order (one we already hold is left as it is: the
    processor treats the duplicate as known). A cancelled order is only a cancellation: one we
    never held is not created just to be cancelled."""
    if data.get("cancelled_at"):
        return cancel_commands(channel, data)
    return [place_order(channel, data)]


def cancel_commands(channel: str, data: Mapping[str, Any]) -> list[commands.Command]:
    external = external_order_id(data)
    reason = data.get("cancel_reason") or "no reason"
    return [commands.CancelOrder(order_id_for(channel, external), reason=f"cancelled on shopify: {reason}")]


def fulfillment_commands(
    channel: str, data: Mapping[str, Any], location_map: Mapping[str, str]
) -> list[commands.Command]:
    order = data.get("order_id")
    if not isinstance(order, (int, str)) or not str(order).isdigit():
        raise MalformedPayload("fulfillment has no order_id")
    status = data.get("status")
    if status in ("cancelled", "error", "failure"):
        return []
    location = location_map.get(str(data.get("location_id"))) if data.get("location_id") is not None else None
    fulfillment = gid_number(data.get("admin_graphql_api_id")) or _digits(data.get("id"))
    order_id = order_id_for(channel, str(order))
    found: list[commands.Command] = []
    for position, item in enumerate(data.get("line_items") or []):
        sku = (item.get("sku") or "").strip() if isinstance(item, dict) else ""
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if not sku or not isinstance(quantity, int) or quantity <= 0:
            continue
        assert isinstance(item, dict)
        line = gid_number(item.get("admin_graphql_api_id")) or _digits(item.get("id")) or f"#{position}"
        # The platform's identity of this shipment: a replay of the webhook (a new event id, or the
        # same row processed again) finds it in the ledger and ships nothing more.
        ref = f"shopify:fulfillment:{fulfillment}:{line}" if fulfillment else None
        found.append(commands.ShipSku(order_id, sku, quantity, location, shipment_ref=ref))
    return found


def _digits(value: Any) -> str | None:
    return str(value) if isinstance(value, (int, str)) and str(value).isdigit() else None


def inventory_item_id(data: Mapping[str, Any]) -> str:
    """The exact inventory item id of an inventory_levels/update body."""
    gid = data.get("admin_graphql_api_id")
    if isinstance(gid, str) and "inventory_item_id=" in gid:
        tail = gid.split("inventory_item_id=", 1)[1].split("&", 1)[0]
        if tail.isdigit():
            return tail
    raw = data.get("inventory_item_id")
    if isinstance(raw, (int, str)) and str(raw).isdigit():
        return str(raw)
    raise MalformedPayload("inventory level has no inventory_item_id")


def redact_commands(channel: str, topic: str, data: Mapping[str, Any]) -> list[commands.Command]:
    if topic == "shop/redact":
        return [commands.RedactCustomer(channel)]
    customer = data.get("customer")
    if not isinstance(customer, dict):
        raise MalformedPayload("customers/redact has no customer")
    email = customer.get("email") or None
    ids = tuple(order_id_for(channel, str(o)) for o in data.get("orders_to_redact") or [] if str(o).isdigit())
    if not email and not ids:
        return []  # nothing of this customer can be found in our orders
    return [commands.RedactCustomer(channel, email, ids)]


def order_from_graphql(node: Mapping[str, Any]) -> dict[str, Any]:
    """A GraphQL ``Order`` node (reconciliation) in the webhook body's shape, so it goes through
    the same inbox path and parser as ``orders/updated``."""
    customer = node.get("customer") or {}
    return {
        "id": int(gid_number(node.get("id")) or 0),
        "admin_graphql_api_id": node.get("id"),
        "name": node.get("name"),
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "email": node.get("email"),
        "phone": node.get("phone"),
        "customer": {"first_name": customer.get("firstName"), "last_name": customer.get("lastName")},
        "line_items": [
            {"admin_graphql_api_id": li.get("id"), "sku": li.get("sku"), "quantity": li.get("quantity")}
            for li in ((node.get("lineItems") or {}).get("nodes") or [])
        ],
    }


def level_from_graphql(item: str, location: str, available: Any, updated_at: Any) -> dict[str, Any]:
    """A GraphQL inventory level (reconciliation) in the ``inventory_levels/update`` body's shape,
    so it goes through the same inbox path and parser as the webhook."""
    return {
        "inventory_item_id": int(item),
        "location_id": int(location) if str(location).isdigit() else location,
        "available": available,
        "updated_at": updated_at,
        "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}",
    }
