"""WooCommerce REST API v3 (https://woocommerce.github.io/woocommerce-rest-api-docs/): stock
through the products and variations batch endpoints, a note and meta on backordered orders,
webhooks created by ``connect``, the reconciliation pull (``GET /orders?modified_after=``), and the
refunds of a partially refunded order (``GET /orders/<id>/refunds``), read before it is parsed.

Authentication is HTTP basic with the consumer key and secret (the docs' method over HTTPS).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from backorder.connectors.base import (
    Connector,
    ConnectorDeps,
    ConnectorSettings,
    DeliveryReceipt,
    OrderTag,
    ReceivesWebhooks,
    StockUpdate,
    SyncsStock,
    TagsOrders,
)
from backorder.connectors.errors import ConnectorError, FatalError, MalformedPayload, NotConfigured
from backorder.connectors.items import HttpChannelConnector
from backorder.connectors.woocommerce import mapping
from backorder.connectors.woocommerce.inbound import WooInbound
from backorder.connectors.woocommerce.settings import WooCommerceSettings

API = "/wp-json/wc/v3"
WEBHOOK_TOPICS = ("order.created", "order.updated", "order.deleted", "product.updated")
MAX_PAGES = 40
PER_PAGE = 50


class WooCommerceConnector(WooInbound, HttpChannelConnector, ReceivesWebhooks, SyncsStock, TagsOrders):
    settings: WooCommerceSettings
    provider = "woocommerce"

    def rate_limit_key(self, payload: Any) -> str | None:
        return f"woocommerce:{self.settings.api_base()}"

    def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> Any:
        self.require_credentials()
        key, secret = self.settings.consumer_key, self.settings.consumer_secret
        assert key is not None and secret is not None  # required by missing_credentials
        response = self._client().request(
            method,
            f"{API}{path}",
            json=json_body,
            params=params,
            auth=(key.get_secret_value(), secret.get_secret_value()),
            idempotent=idempotent,
        )
        try:
            return response.json()
        except ValueError:
            raise FatalError(
                f"woocommerce answered {method} {path} with something that is not JSON", provider="woocommerce"
            ) from None

    # --- items -----------------------------------------------------------------------------

    def resolve_items(self, skus: Sequence[str]) -> dict[str, mapping.ItemRef]:
        known = self.directory.find(skus)
        found = []
        for sku in [s for s in skus if s not in known]:
            products = self._call("GET", "/products", params={"sku": sku})
            for product in products if isinstance(products, list) else []:
                found.extend(mapping.items_of_product(product))
        self.directory.remember(found)
        known.update({i.sku: i for i in found if i.sku in skus})
        return known

    # --- SyncsStock ------------------------------------------------------------------------

    def push_stock(self, updates: Sequence[StockUpdate]) -> DeliveryReceipt:
        items = self.resolve_items([u.sku for u in updates])
        absent = sorted(u.sku for u in updates if u.sku not in items)
        products: list[dict[str, Any]] = []
        variations: dict[str, list[dict[str, Any]]] = {}
        for update in updates:
            item = items.get(update.sku)
            if item is None:
                continue
            change = {
                "id": int(item.item_ref),
                "manage_stock": True,
                "stock_quantity": update.available,
                "backorders": self.settings.backorders,
            }
            if item.parent_ref:
                variations.setdefault(item.parent_ref, []).append(change)
            else:
                products.append(change)
        size = self.settings.batch_size
        failed: list[str] = []
        sent = 0
        for start in range(0, len(products), size):
            answer = self._call("POST", "/products/batch", json_body={"update": products[start : start + size]})
            failed.extend(_batch_errors(answer))
            sent += len(products[start : start + size])
        for parent, changes in sorted(variations.items()):
            for start in range(0, len(changes), size):
                answer = self._call(
                    "POST",
                    f"/products/{parent}/variations/batch",
                    json_body={"update": changes[start : start + size]},
                )
                failed.extend(_batch_errors(answer))
                sent += len(changes[start : start + size])
        if failed:
            raise FatalError(
                f"woocommerce refused part of the batch: {'; '.join(failed)[:400]}", provider="woocommerce"
            )
        detail = f"set stock_quantity of {sent} product(s)/variation(s)"
        if absent:
            detail += f"; no WooCommerce product has SKU {', '.join(absent)}"
        return DeliveryReceipt(detail=detail)

    # --- TagsOrders ------------------------------------------------------------------------

    def tag_order(self, tag: OrderTag) -> DeliveryReceipt:
        external = mapping.external_from_order_id(self.channel, tag.channel_order_ref)
        if not external.isdigit():
            raise FatalError(
                f"order {tag.channel_order_ref} is not a WooCommerce order of {self.channel}", provider="woocommerce"
            )
        note = self._call(
            "POST",
            f"/orders/{external}/notes",
            json_body={"note": f"{tag.note} [{tag.message_id}]", "customer_note": False},
        )
        status = "backordered" if tag.backordered else "clear"
        self._call(
            "PUT",
            f"/orders/{external}",
            json_body={"meta_data": [{"key": self.settings.meta_key, "value": status}]},
        )
        ref = str(note.get("id")) if isinstance(note, dict) and note.get("id") is not None else None
        return DeliveryReceipt(
            provider_ref=ref, detail=f"note added to order {external}; {self.settings.meta_key}={status}"
        )

    # --- refunds: what an order event does not carry ---------------------------------------

    def enrich(self, topic: str, body: bytes) -> bytes:
        """The event's body with what parsing it needs from the API (the inbox processor calls
        this after the version check, before :meth:`parse`, which stays pure).

        An order that is placed or edited from this event and lists refunds gets those refunds,
        as ``GET /orders/<id>/refunds`` returns them, under ``mapping.REFUNDS_KEY``: the order
        resource says only ``{id, reason, total}`` per refund, the refunded line items and
        quantities are on the refunds. A value under that key in the body as received is never
        used. When the refunds cannot be read (WooCommerce down, no API credentials) the row
        fails with the reason and nothing is applied: reprocessing it, or the next
        reconciliation pull of the order, reads them again."""
        if topic not in mapping.ORDER_TOPICS:
            return body
        data = mapping.load_json(body)
        forged = data.pop(mapping.REFUNDS_KEY, None) is not None
        if not mapping.needs_refund_lines(topic, data):
            return json.dumps(data).encode() if forged else body
        external = mapping.order_external_id(data)
        listed = set(mapping.refund_ids(data))
        try:
            refunds = self.order_refunds(external)
        except ConnectorError as exc:
            raise MalformedPayload(
                f"the refunds of order {external} could not be read from WooCommerce "
                f"({type(exc).__name__}: {exc.detail}); nothing was applied: reprocess the row "
                "(or let reconciliation pull the order again) once the API answers"
            ) from exc
        data[mapping.REFUNDS_KEY] = [r for r in refunds if str(r.get("id")) in listed]
        return json.dumps(data).encode()

    def order_refunds(self, external: str) -> list[dict[str, Any]]:
        """Every refund of order ``external`` (``GET /orders/<id>/refunds``, 100 a page)."""
        if not external.isdigit():
            raise FatalError(f"{external!r} is not a WooCommerce order id", provider="woocommerce")
        return self._pages(f"/orders/{int(external)}/refunds")

    # --- connect and reconcile -------------------------------------------------------------

    def connect(self, public_url: str) -> list[str]:
        return [f"{reg['topic']} → {reg['address']}" for reg in self.register_webhooks(public_url)]

    def register_webhooks(self, public_url: str, into: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Our webhook for each topic, one entry per topic with the webhook id WooCommerce gave
        it: those already there (same topic and delivery URL) are kept, not made twice (each
        would deliver every event again), a disabled one is set active again, the missing ones
        are created (``POST /webhooks`` with the webhook secret). A failure is raised."""
        found: list[dict[str, Any]] = [] if into is None else into
        for entry in self.check_webhooks(public_url):
            found.append({k: entry[k] for k in ("topic", "address", "provider_ref", "error")})
        return found

    def check_webhooks(self, public_url: str) -> list[dict[str, Any]]:
        """Compare WooCommerce's webhooks to our URL with the topics we need (``GET /webhooks``,
        every page) and make each deliver again: WooCommerce disables a webhook after 5
        consecutive failed deliveries, and it "must be edited via the REST API to re-enable"
        (``PUT /webhooks/<id>`` status ``active``); a missing one is created. One an admin
        paused is left paused and reported as an error. One entry per topic with ``state``:
        present, re-enabled, re-created or failed. A transport or HTTP failure is raised."""
        secret = self.settings.webhook_secret
        if secret is None:
            raise NotConfigured(f"channels.{self.channel}.webhook_secret", provider="woocommerce")
        url = self.callback_url(public_url)
        ours: dict[str, dict[str, Any]] = {}
        for hook in self._pages("/webhooks"):
            topic = hook.get("topic")
            if hook.get("delivery_url") != url or topic not in WEBHOOK_TOPICS:
                continue
            if topic not in ours or (ours[topic].get("status") != "active" and hook.get("status") == "active"):
                ours[topic] = hook  # an active one wins over a disabled duplicate
        found: list[dict[str, Any]] = []
        for topic in WEBHOOK_TOPICS:
            hook = ours.get(topic)
            entry: dict[str, Any] = {"topic": topic, "address": url, "provider_ref": None, "error": None}
            if hook is None:
                answer = self._call(
                    "POST",
                    "/webhooks",
                    json_body={
                        "name": f"backorder {topic}",
                        "topic": topic,
                        "delivery_url": url,
                        "secret": secret.get_secret_value(),
                        "status": "active",
                    },
                )
                ref = answer.get("id") if isinstance(answer, dict) else None
                entry.update(provider_ref=str(ref) if ref is not None else None, state="re-created")
            else:
                entry["provider_ref"] = str(hook.get("id"))
                status = hook.get("status")
                if status == "active":
                    entry["state"] = "present"
                elif status == "disabled":
                    self._call("PUT", f"/webhooks/{int(hook['id'])}", json_body={"status": "active"})
                    entry["state"] = "re-enabled"
                else:
                    entry.update(
                        state="failed",
                        error=f"webhook {hook.get('id')} is {status!r} in WooCommerce (paused by an admin): "
                        "not re-enabled from here",
                    )
            found.append(entry)
        return found

    def callback_url(self, public_url: str) -> str:
        return f"{public_url.rstrip('/')}/webhooks/woocommerce/{self.channel}"

    def recent_orders(self, since: datetime) -> list[tuple[str, bytes, datetime]]:
        found = []
        for page in range(1, MAX_PAGES + 1):
            orders = self._call(
                "GET",
                "/orders",
                params={
                    "modified_after": since.strftime("%Y-%m-%dT%H:%M:%S"),
                    "dates_are_gmt": "true",
                    "per_page": PER_PAGE,
                    "page": page,
                    "orderby": "modified",
                    "order": "asc",
                },
            )
            if not isinstance(orders, list) or not orders:
                break
            for order in orders:
                modified = mapping.gmt_time(order, "date_modified_gmt")
                found.append(
                    (
                        f"reconcile:{order.get('id')}:{order.get('date_modified_gmt')}",
                        json.dumps(order).encode(),
                        modified,
                    )
                )
            if len(orders) < PER_PAGE:
                break
        return found

    def current_stock(self) -> list[tuple[str, bytes]]:
        """Every product and variation whose stock WooCommerce manages (the stock-source pull):
        ``GET /products`` and, for variable products, ``GET /products/<id>/variations``, each as
        (event key, ``product.updated`` body). The key holds ``date_modified_gmt``: an unchanged
        product adds no inbox row, and the processor's ``observed_at`` check keeps an older
        quantity from overwriting a newer one."""
        found: list[tuple[str, bytes]] = []
        for product in self._pages("/products"):
            if product.get("type") == "variable":
                for variation in self._pages(f"/products/{int(product['id'])}/variations"):
                    found.extend(_stock_entry(variation))
            else:
                found.extend(_stock_entry(product))
        return found

    def _pages(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            answer = self._call("GET", path, params={"per_page": 100, "page": page})
            if not isinstance(answer, list) or not answer:
                break
            items.extend(a for a in answer if isinstance(a, dict))
            if len(answer) < 100:
                break
        return items


def _stock_entry(product: dict[str, Any]) -> list[tuple[str, bytes]]:
    if product.get("manage_stock") is not True or not isinstance(product.get("stock_quantity"), int):
        return []  # not tracked here (or tracked by its parent product)
    if not (product.get("sku") or "").strip():
        return []
    key = f"reconcile-stock:{product.get('id')}:{product.get('date_modified_gmt')}"
    return [(key, json.dumps(product).encode())]


def _batch_errors(answer: Any) -> list[str]:
    errors = []
    for entry in (answer or {}).get("update", []) if isinstance(answer, dict) else []:
        if isinstance(entry, dict) and entry.get("error"):
            err = entry["error"]
            errors.append(f"{entry.get('id')}: {err.get('message') if isinstance(err, dict) else err}")
    return errors


def build(name: str, settings: ConnectorSettings, deps: ConnectorDeps) -> Connector:
    assert isinstance(settings, WooCommerceSettings)
    return WooCommerceConnector(name, settings, deps)
