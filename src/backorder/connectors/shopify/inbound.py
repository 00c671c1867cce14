"""Shopify webhooks: verify ``X-Shopify-Hmac-Sha256`` over the raw body, key the event by
``X-Shopify-Event-Id`` (else ``X-Shopify-Webhook-Id``, else a hash of the body), and turn each
topic into canonical commands."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from backorder.connectors.base import InboundIdentity, InboundRequest
from backorder.connectors.errors import InvalidSignature, MalformedPayload
from backorder.connectors.shopify import mapping
from backorder.connectors.shopify.settings import ShopifySettings
from backorder.connectors.signatures import verify_shopify
from backorder.domain import commands

TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "fulfillments/create",
    "inventory_levels/update",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
)
"""Topics we act on. The three privacy topics are mandatory for every Shopify app; they are
declared in the app's configuration, not subscribed through the API."""


class ShopifyInbound:
    settings: ShopifySettings
    channel: str
    directory: mapping.ItemDirectory

    def verify(self, request: InboundRequest) -> None:
        secrets = self.settings.webhook_secrets()
        if not secrets:
            raise InvalidSignature("no webhook_secret is configured for this channel")
        verify_shopify(request.body, request.headers.get("x-shopify-hmac-sha256"), secrets)

    def identify(self, request: InboundRequest) -> InboundIdentity:
        h = request.headers
        key = h.get("x-shopify-event-id") or h.get("x-shopify-webhook-id")
        key = f"event:{key}" if key else "sha256:" + hashlib.sha256(request.body).hexdigest()
        return InboundIdentity(key, (h.get("x-shopify-topic") or "").strip().lower())

    def parse(self, topic: str, headers: Mapping[str, str], body: bytes) -> list[commands.Command]:
        if topic not in TOPICS:
            return []
        data = mapping.load_json(body)
        channel = self.channel
        if topic in ("orders/create", "orders/updated"):
            return mapping.order_commands(channel, data)
        if topic == "orders/cancelled":
            return mapping.cancel_commands(channel, data)
        if topic == "fulfillments/create":
            return mapping.fulfillment_commands(channel, data, self.settings.location_map)
        if topic == "inventory_levels/update":
            return self._inventory(data)
        if topic in ("customers/redact", "shop/redact"):
            return mapping.redact_commands(channel, topic, data)
        return []  # customers/data_request: kept in the inbox for staff (see docs/channels.md)

    def _inventory(self, data: Mapping[str, Any]) -> list[commands.Command]:
        item = mapping.inventory_item_id(data)
        if not self.settings.stock_source:
            return []
        available = data.get("available")
        if available is None:
            return []  # the item is not tracked at this location
        if not isinstance(available, int):
            raise MalformedPayload("inventory level 'available' is not a whole number")
        location = self.settings.location_map.get(str(data.get("location_id")))
        if location is None:
            raise MalformedPayload(
                f"Shopify location {data.get('location_id')} is not in location_map of channel {channel_name(self)}"
            )
        sku = self.directory.sku_of(item)
        if sku is None:
            raise MalformedPayload(
                f"inventory item {item} is not mapped to a SKU yet (run `backorder connect shopify "
                f"{channel_name(self)}`, then reprocess)"
            )
        observed = mapping.parse_time(data.get("updated_at"), "updated_at")
        return [commands.SetStockLevel(sku, location, max(available, 0), observed_at=observed, source="shopify")]

    # --- what the processor asks besides commands ------------------------------------------------

    def order_version(self, topic: str, body: bytes) -> tuple[str, str, datetime] | None:
        """(external id, our order id, source version) of an order event, for ordering checks."""
        if topic not in ("orders/create", "orders/updated", "orders/cancelled"):
            return None
        data = mapping.load_json(body)
        external = mapping.external_order_id(data)
        stamp = data.get("updated_at")
        version = mapping.parse_time(stamp, "updated_at") if stamp else None
        if version is None:
            return None
        return external, mapping.order_id_for(self.channel, external), version

    def item_refs(self, topic: str, body: bytes) -> list[mapping.ItemRef]:
        return []  # order line items carry variant ids but not inventory item ids


def channel_name(inbound: ShopifyInbound) -> str:
    return inbound.channel
