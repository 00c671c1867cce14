"""WooCommerce webhooks: verify ``X-WC-Webhook-Signature`` (base64 HMAC-SHA256 of the raw body
with the webhook secret), key by ``X-WC-Webhook-Delivery-ID`` (else a hash of the body), topic
from ``X-WC-Webhook-Topic``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from backorder.connectors.base import InboundIdentity, InboundRequest
from backorder.connectors.errors import InvalidSignature, MalformedPayload
from backorder.connectors.signatures import verify_woocommerce
from backorder.connectors.woocommerce import mapping
from backorder.connectors.woocommerce.settings import WooCommerceSettings
from backorder.domain import commands

TOPICS = ("order.created", "order.updated", "order.deleted", "product.updated", "product.created")


class WooInbound:
    settings: WooCommerceSettings
    channel: str
    directory: mapping.ItemDirectory

    def verify(self, request: InboundRequest) -> None:
        secrets = self.settings.webhook_secrets()
        if not secrets:
            raise InvalidSignature("no webhook_secret is configured for this channel")
        verify_woocommerce(request.body, request.headers.get("x-wc-webhook-signature"), secrets)

    def identify(self, request: InboundRequest) -> InboundIdentity:
        h = request.headers
        delivery = h.get("x-wc-webhook-delivery-id")
        key = f"delivery:{h.get('x-wc-webhook-id', '')}:{delivery}" if delivery else None
        key = key or "sha256:" + hashlib.sha256(request.body).hexdigest()
        return InboundIdentity(key, (h.get("x-wc-webhook-topic") or "").strip().lower())

    def parse(self, topic: str, headers: Mapping[str, str], body: bytes) -> list[commands.Command]:
        if topic not in TOPICS:
            return []
        data = mapping.load_json(body)
        if topic.startswith("order."):
            return mapping.order_commands(self.channel, topic, data, self.settings.stock_location)
        return self._stock(data)

    def _stock(self, data: Mapping[str, object]) -> list[commands.Command]:
        if not self.settings.stock_source or not data.get("manage_stock"):
            return []
        sku = (str(data.get("sku") or "")).strip()
        quantity = data.get("stock_quantity")
        if not sku:
            return []
        if not isinstance(quantity, int):
            raise MalformedPayload("product stock_quantity is not a whole number")
        location = self.settings.stock_location
        if not location:
            raise MalformedPayload(f"channel {self.channel} has stock_source but no stock_location")
        observed = mapping.gmt_time(data, "date_modified_gmt")
        return [commands.SetStockLevel(sku, location, max(quantity, 0), observed_at=observed, source="woocommerce")]

    def order_version(self, topic: str, body: bytes) -> tuple[str, str, datetime] | None:
        if not topic.startswith("order.") or topic == "order.deleted":
            return None
        data = mapping.load_json(body)
        external = mapping.order_external_id(data)
        if not data.get("date_modified_gmt"):
            return None
        return external, mapping.order_id_for(self.channel, external), mapping.gmt_time(data, "date_modified_gmt")

    def item_refs(self, topic: str, body: bytes) -> list[mapping.ItemRef]:
        data = mapping.load_json(body)
        if topic.startswith("product."):
            return mapping.items_of_product(data)
        if topic in ("order.created", "order.updated"):
            return mapping.items_of_order(data)
        return []
