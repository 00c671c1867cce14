"""WooCommerce data ↔ ours. Webhook bodies are the REST v3 resource as ``GET`` would return it
(https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks).

Refunds: the order resource lists each refund only as ``{id, reason, total}``
(``WC_REST_Orders_V2_Controller::get_formatted_item_data``) and its ``line_items`` keep the quantity
ordered. Which items a refund took back, and how many, is on the refund itself
(``GET /orders/<id>/refunds``: each refund's ``line_items[]`` with a negative ``quantity`` and the
meta ``_refunded_item_id`` naming the order's line item; _order-refunds.md "List all refunds").
The connector reads those before parsing (:meth:`WooCommerceConnector.enrich`, I/O) and puts the
refunds the order lists under :data:`REFUNDS_KEY`; everything here stays pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from backorder.connectors.errors import MalformedPayload
from backorder.connectors.items import ItemDirectory, ItemRef, MemoryDirectory, load_json
from backorder.domain import commands

__all__ = ["ItemDirectory", "ItemRef", "MemoryDirectory", "load_json"]

CANCELLED = frozenset({"cancelled", "refunded", "failed", "trash"})
UNPAID = frozenset({"pending", "checkout-draft"})
ORDER_TOPICS = frozenset({"order.created", "order.updated"})
REFUNDS_KEY = "_backorder_refunds"
"""Where the connector puts the refunds the order lists, as WooCommerce's Refunds endpoint
returns them (never taken from the webhook itself: :meth:`enrich` replaces it)."""


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
    """The order as the channel shows it now: each line item's ``quantity`` less what its
    refunds took back (a line refunded in full is left out, as Shopify's ``current_quantity``
    of 0 is)."""
    lines, _ = _current_lines(data, refunded_units(data))
    if not lines:
        raise MalformedPayload("order has no line item with a SKU")
    return _placed(channel, data, lines)


def _placed(channel: str, data: Mapping[str, Any], lines: list[commands.NewLine]) -> commands.PlaceOrder:
    billing = data.get("billing") or {}
    name = f"{billing.get('first_name') or ''} {billing.get('last_name') or ''}".strip() or None
    return commands.PlaceOrder(
        order_id=order_id_for(channel, order_external_id(data)),
        channel=channel,
        placed_at=gmt_time(data, "date_created_gmt"),
        lines=tuple(lines),
        customer_email=billing.get("email") or None,
        customer_phone=billing.get("phone") or None,
        customer_name=name,
        reference=_order_number(data),
    )


def _order_number(data: Mapping[str, Any]) -> str | None:
    """The order number the customer sees (``number``; differs from ``id`` with a sequential
    order numbers plugin)."""
    number = data.get("number")
    if isinstance(number, int) and not isinstance(number, bool):
        return str(number)
    return (number.strip()[:64] or None) if isinstance(number, str) else None


def _current_lines(data: Mapping[str, Any], refunded: Mapping[str, int]) -> tuple[list[commands.NewLine], bool]:
    """(lines with units left, whether the order has a line item with a SKU and units at all)."""
    items = data.get("line_items")
    if not isinstance(items, list):
        raise MalformedPayload("order has no line_items list")
    lines = []
    ordered = False
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise MalformedPayload(f"line_items[{position - 1}] is not an object")
        sku = (item.get("sku") or "").strip()
        quantity = item.get("quantity")
        if not sku:
            continue
        if not isinstance(quantity, int) or quantity < 0:
            raise MalformedPayload(f"line_items[{position - 1}].quantity is not a whole number")
        ordered = ordered or quantity > 0
        left = max(quantity - refunded.get(_digits(item.get("id")) or "", 0), 0)
        if left:
            lines.append(commands.NewLine(position, sku, left))
    return lines, ordered


def refund_ids(data: Mapping[str, Any]) -> list[str]:
    """The ids of the refunds the order lists (``refunds[].id``)."""
    found = []
    for position, refund in enumerate(data.get("refunds") or []):
        ref = _digits(refund.get("id")) if isinstance(refund, dict) else None
        if ref is None:
            raise MalformedPayload(f"refunds[{position}] has no id")
        found.append(ref)
    return found


def needs_refund_lines(topic: str, data: Mapping[str, Any]) -> bool:
    """Whether parsing this event needs the refunds' line items from the Refunds endpoint: an
    order that is placed or edited from it (not cancelled, not unpaid) and lists refunds."""
    return topic in ORDER_TOPICS and data.get("status") not in CANCELLED | UNPAID and bool(data.get("refunds"))


def refunded_units(data: Mapping[str, Any]) -> dict[str, int]:
    """Units taken back per line item id by the refunds the order lists, read from the refunds
    the connector put under :data:`REFUNDS_KEY`. Only the refunds the order lists count (a
    refund made after this version of the order belongs to a later ``order.updated``), so the
    same body always gives the same view. A refund of money only (no line item, or quantity 0)
    takes back no unit."""
    ids = refund_ids(data)
    if not ids:
        return {}
    external = order_external_id(data)
    read = data.get(REFUNDS_KEY)
    if not isinstance(read, list):
        raise MalformedPayload(
            f"order {external} lists {len(ids)} refund(s) whose refunded items were not read from "
            "WooCommerce's Refunds API (GET /orders/<id>/refunds)"
        )
    by_id = {_digits(r.get("id")): r for r in read if isinstance(r, dict)}
    missing = [ref for ref in ids if ref not in by_id]
    if missing:
        raise MalformedPayload(
            f"refund(s) {', '.join(missing)} of order {external} are no longer in WooCommerce "
            "(deleted since this update?): a later order.updated shows the order without them"
        )
    found: dict[str, int] = {}
    for ref in ids:
        for position, item in enumerate(by_id[ref].get("line_items") or []):
            if not isinstance(item, dict):
                raise MalformedPayload(f"refund {ref} line_items[{position}] is not an object")
            quantity = item.get("quantity")
            if not isinstance(quantity, int) or isinstance(quantity, bool):
                raise MalformedPayload(f"refund {ref} line_items[{position}].quantity is not a whole number")
            if quantity == 0:
                continue  # money back on the line, no unit taken back
            line = _refunded_item_id(item) or _only_line_of_product(data, item)
            if line is None:
                raise MalformedPayload(
                    f"refund {ref} line_items[{position}] names no _refunded_item_id and its product "
                    "matches no single line item of the order"
                )
            found[line] = found.get(line, 0) + abs(quantity)  # WooCommerce stores it negative
    return found


def _refunded_item_id(item: Mapping[str, Any]) -> str | None:
    for meta in item.get("meta_data") or []:
        if isinstance(meta, dict) and meta.get("key") == "_refunded_item_id":
            return _digits(meta.get("value"))
    return None


def _only_line_of_product(data: Mapping[str, Any], item: Mapping[str, Any]) -> str | None:
    same = [
        line
        for line in data.get("line_items") or []
        if isinstance(line, dict)
        and line.get("product_id") == item.get("product_id")
        and (line.get("variation_id") or 0) == (item.get("variation_id") or 0)
    ]
    return _digits(same[0].get("id")) if len(same) == 1 else None


def _digits(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    return str(value) if isinstance(value, (int, str)) and str(value).isdigit() else None


def order_commands(
    channel: str, topic: str, data: Mapping[str, Any], location: str | None = None
) -> list[commands.Command]:
    if topic == "order.deleted":
        return [commands.CancelOrder(order_id_for(channel, order_external_id(data)), reason="deleted on woocommerce")]
    status = data.get("status")
    if status in CANCELLED:
        return [commands.CancelOrder(order_id_for(channel, order_external_id(data)), reason=f"{status} on woocommerce")]
    if status in UNPAID:
        return []  # not paid yet: WooCommerce has not reduced stock either; order.updated follows
    refunded = refunded_units(data)
    lines, ordered = _current_lines(data, refunded)
    if not lines:
        if ordered:  # every unit refunded while the order stays open (e.g. its shipping was not)
            return [
                commands.CancelOrder(order_id_for(channel, order_external_id(data)), reason="refunded on woocommerce")
            ]
        raise MalformedPayload("order has no line item with a SKU")
    placed = _placed(channel, data, lines)
    if status == "completed":
        return [placed, *completion_shipments(placed, data, location, refunded)]
    return [placed]


def completion_shipments(
    placed: commands.PlaceOrder,
    data: Mapping[str, Any],
    location: str | None,
    refunded: Mapping[str, int] | None = None,
) -> list[commands.Command]:
    """WooCommerce has no fulfilment webhook: an order becoming ``completed`` means the shop sent
    it. Each line item ships what is still open of its SKU, once: the ref
    ``woocommerce:completed:<order id>:<line item id>`` is recorded with the shipment, so a repeated
    or later ``order.updated`` of the completed order ships nothing more. Units refunded before
    the completion are not shipped."""
    external = order_external_id(data)
    refunded = refunded or {}
    found: list[commands.Command] = []
    for position, item in enumerate(data.get("line_items") or [], start=1):
        if not isinstance(item, dict):
            continue
        sku = (item.get("sku") or "").strip()
        quantity = item.get("quantity")
        if not sku or not isinstance(quantity, int) or quantity <= 0:
            continue
        quantity -= refunded.get(_digits(item.get("id")) or "", 0)
        if quantity <= 0:
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
