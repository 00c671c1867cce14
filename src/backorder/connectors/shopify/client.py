"""Shopify Admin GraphQL: stock (``inventorySetQuantities`` with compare-and-set), order tags
and fulfillment holds, webhook subscriptions, and the reconciliation pull.

Idempotency: the vendored Admin SDL (Dec 2024 snapshot) has no ``@idempotent`` directive, so none
is sent. A stock push is safe to repeat anyway: it sets an absolute quantity, each attempt reads
the current quantity first and sends it as ``compareQuantity`` (a concurrent change makes Shopify
refuse the write, and the retry reads again), and ``referenceDocumentUri`` names our outbox
message so every adjustment is traceable to one delivery.
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
from backorder.connectors.errors import FatalError, NotConfigured, RateLimited, RetryableError
from backorder.connectors.items import HttpChannelConnector
from backorder.connectors.shopify import mapping
from backorder.connectors.shopify.inbound import ShopifyInbound
from backorder.connectors.shopify.settings import ShopifySettings

ITEMS_BY_SKU = """
query ItemsBySku($query: String!, $first: Int!) {
  productVariants(first: $first, query: $query) {
    nodes { id sku inventoryItem { id } }
  }
}
"""

CURRENT_LEVELS = """
query CurrentLevels($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $locationId) { quantities(names: ["available"]) { name quantity } }
    }
  }
}
"""

SET_QUANTITIES = """
mutation SetAvailable($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}
"""

TAGS_ADD = """
mutation TagOrder($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}
"""

TAGS_REMOVE = """
mutation UntagOrder($id: ID!, $tags: [String!]!) {
  tagsRemove(id: $id, tags: $tags) { node { id } userErrors { field message } }
}
"""

FULFILLMENT_ORDERS = """
query OrderFulfillmentOrders($id: ID!) {
  order(id: $id) {
    id
    fulfillmentOrders(first: 20) { nodes { id status fulfillmentHolds { id handle } } }
  }
}
"""

HOLD = """
mutation HoldFulfillmentOrder($id: ID!, $hold: FulfillmentOrderHoldInput!) {
  fulfillmentOrderHold(id: $id, fulfillmentHold: $hold) {
    fulfillmentHold { id }
    userErrors { field message }
  }
}
"""

RELEASE = """
mutation ReleaseFulfillmentOrder($id: ID!, $holdIds: [ID!]) {
  fulfillmentOrderReleaseHold(id: $id, holdIds: $holdIds) {
    fulfillmentOrder { id }
    userErrors { field message }
  }
}
"""

SUBSCRIBE = """
mutation Subscribe($topic: WebhookSubscriptionTopic!, $subscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $subscription) {
    webhookSubscription { id }
    userErrors { field message }
  }
}
"""

SUBSCRIPTIONS_PAGE = """
query Subscriptions($callbackUrl: URL!, $after: String) {
  webhookSubscriptions(first: 100, after: $after, callbackUrl: $callbackUrl) {
    pageInfo { hasNextPage endCursor }
    nodes { id topic endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } } }
  }
}
"""

VARIANTS_PAGE = """
query VariantsPage($after: String) {
  productVariants(first: 250, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id sku inventoryItem { id } }
  }
}
"""

RECENT_ORDERS = """
query RecentOrders($query: String!, $after: String) {
  orders(first: 50, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id name createdAt updatedAt cancelledAt email phone
      customer { firstName lastName }
      lineItems(first: 100) { nodes { id sku quantity } }
    }
  }
}
"""

LOCATION_LEVELS = """
query LocationLevels($id: ID!, $after: String) {
  location(id: $id) {
    id
    inventoryLevels(first: 250, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id
        updatedAt
        item { id sku }
        quantities(names: ["available"]) { name quantity updatedAt }
      }
    }
  }
}
"""

DOCUMENTS = {
    "ItemsBySku": ITEMS_BY_SKU,
    "CurrentLevels": CURRENT_LEVELS,
    "SetAvailable": SET_QUANTITIES,
    "TagOrder": TAGS_ADD,
    "UntagOrder": TAGS_REMOVE,
    "OrderFulfillmentOrders": FULFILLMENT_ORDERS,
    "HoldFulfillmentOrder": HOLD,
    "ReleaseFulfillmentOrder": RELEASE,
    "Subscribe": SUBSCRIBE,
    "VariantsPage": VARIANTS_PAGE,
    "RecentOrders": RECENT_ORDERS,
    "LocationLevels": LOCATION_LEVELS,
}
"""Every document we send (the contract test validates each against the vendored SDL)."""

SUBSCRIBED_TOPICS = {
    "orders/create": "ORDERS_CREATE",
    "orders/updated": "ORDERS_UPDATED",
    "orders/cancelled": "ORDERS_CANCELLED",
    "fulfillments/create": "FULFILLMENTS_CREATE",
    "inventory_levels/update": "INVENTORY_LEVELS_UPDATE",
}
HOLD_HANDLE = "backorder"
MAX_PAGES = 40


def _gid(kind: str, number: str) -> str:
    return number if number.startswith("gid://") else f"gid://shopify/{kind}/{number}"


class ShopifyConnector(ShopifyInbound, HttpChannelConnector, ReceivesWebhooks, SyncsStock, TagsOrders):
    settings: ShopifySettings
    provider = "shopify"

    def rate_limit_key(self, payload: Any) -> str | None:
        return f"shopify:{self.settings.shop_domain or self.settings.base_url}"

    # --- transport -------------------------------------------------------------------------

    def graphql(self, document: str, variables: dict[str, Any], *, idempotent: bool = False) -> dict[str, Any]:
        self.require_credentials()
        token = self.settings.access_token
        assert token is not None  # required by missing_credentials
        response = self._client().request(
            "POST",
            self.settings.graphql_path(),
            json={"query": document, "variables": variables},
            headers={"X-Shopify-Access-Token": token.get_secret_value()},
            idempotent=idempotent,
        )
        try:
            body = response.json()
        except ValueError:
            raise FatalError("shopify answered with something that is not JSON", provider="shopify") from None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            throttled = [e for e in errors if (e.get("extensions") or {}).get("code") == "THROTTLED"]
            if throttled:
                raise RateLimited(_throttle_wait(body), provider="shopify")
            raise FatalError(f"shopify GraphQL errors: {json.dumps(errors)[:400]}", provider="shopify")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise FatalError("shopify GraphQL answer has no data", provider="shopify")
        return data

    # --- items -----------------------------------------------------------------------------

    def resolve_items(self, skus: Sequence[str]) -> dict[str, mapping.ItemRef]:
        known = self.directory.find(skus)
        missing = [s for s in skus if s not in known]
        if missing:
            query = " OR ".join(f"sku:{json.dumps(s)}" for s in missing)
            data = self.graphql(ITEMS_BY_SKU, {"query": query, "first": min(250, len(missing) * 2)})
            found = []
            for node in (data.get("productVariants") or {}).get("nodes") or []:
                item = mapping.gid_number((node.get("inventoryItem") or {}).get("id"))
                if node.get("sku") in missing and item:
                    found.append(ItemRefFrom(node, item))
            self.directory.remember(found)
            known.update({i.sku: i for i in found})
        return known

    # --- SyncsStock ------------------------------------------------------------------------

    def push_stock(self, updates: Sequence[StockUpdate]) -> DeliveryReceipt:
        location = self.settings.push_location()
        if location is None:
            raise NotConfigured(f"channels.{self.channel}.stock_location_id", provider="shopify")
        items = self.resolve_items([u.sku for u in updates])
        present = [u for u in updates if u.sku in items]
        absent = sorted(u.sku for u in updates if u.sku not in items)
        if not present:
            return DeliveryReceipt(detail=f"no Shopify variant has SKU {', '.join(absent)}; nothing pushed")
        location_gid = _gid("Location", location)
        item_gids = {u.sku: _gid("InventoryItem", items[u.sku].item_ref) for u in present}
        levels = self.graphql(CURRENT_LEVELS, {"ids": list(item_gids.values()), "locationId": location_gid})
        current: dict[str, int | None] = {}
        for node in levels.get("nodes") or []:
            if not node:
                continue
            quantities = ((node.get("inventoryLevel") or {}).get("quantities")) or []
            current[node["id"]] = next((q["quantity"] for q in quantities if q.get("name") == "available"), None)
        quantities = []
        for update in present:
            entry: dict[str, Any] = {
                "inventoryItemId": item_gids[update.sku],
                "locationId": location_gid,
                "quantity": update.available,
                "compareQuantity": current.get(item_gids[update.sku]),
            }
            quantities.append(entry)
        data = self.graphql(
            SET_QUANTITIES,
            {
                "input": {
                    "name": "available",
                    "reason": "correction",
                    "referenceDocumentUri": f"backorder://outbox/{updates[0].message_id or 'manual'}",
                    "ignoreCompareQuantity": False,
                    "quantities": quantities,
                }
            },
        )
        errors = (data.get("inventorySetQuantities") or {}).get("userErrors") or []
        if any(e.get("code") == "COMPARE_QUANTITY_STALE" for e in errors):
            raise RetryableError(
                "shopify: the quantity changed while we set it (compare-and-set); will read again", provider="shopify"
            )
        if errors:
            raise FatalError(f"shopify refused the quantities: {json.dumps(errors)[:400]}", provider="shopify")
        group = ((data.get("inventorySetQuantities") or {}).get("inventoryAdjustmentGroup") or {}).get("id")
        detail = f"set available of {len(present)} SKU(s) at location {location}"
        if absent:
            detail += f"; not on Shopify: {', '.join(absent)}"
        return DeliveryReceipt(provider_ref=group, detail=detail)

    # --- TagsOrders ------------------------------------------------------------------------

    def tag_order(self, tag: OrderTag) -> DeliveryReceipt:
        external = mapping.external_from_order_id(self.channel, tag.channel_order_ref)
        order_gid = _gid("Order", external)
        tags = [self.settings.tag]
        document, field = (TAGS_ADD, "tagsAdd") if tag.backordered else (TAGS_REMOVE, "tagsRemove")
        data = self.graphql(document, {"id": order_gid, "tags": tags})
        _user_errors(data, field)
        found = self.graphql(FULFILLMENT_ORDERS, {"id": order_gid})
        orders = (((found.get("order") or {}).get("fulfillmentOrders") or {}).get("nodes")) or []
        changed = 0
        for fo in orders:
            ours = [h["id"] for h in fo.get("fulfillmentHolds") or [] if h.get("handle") == HOLD_HANDLE]
            if tag.backordered and fo.get("status") == "OPEN" and not ours:
                hold = {"reason": "INVENTORY_OUT_OF_STOCK", "reasonNotes": tag.note[:250], "handle": HOLD_HANDLE}
                _user_errors(self.graphql(HOLD, {"id": fo["id"], "hold": hold}), "fulfillmentOrderHold")
                changed += 1
            elif not tag.backordered and ours:
                data = self.graphql(RELEASE, {"id": fo["id"], "holdIds": ours})
                _user_errors(data, "fulfillmentOrderReleaseHold")
                changed += 1
        verb = "tagged and held" if tag.backordered else "untagged and released"
        return DeliveryReceipt(
            provider_ref=order_gid, detail=f"{verb} order {external} ({changed} fulfillment order(s))"
        )

    # --- connect and reconcile -------------------------------------------------------------

    def connect(self, public_url: str) -> list[str]:
        """Subscribe our webhook URL to every topic, and load the SKU ↔ inventory item map."""
        done = []
        for reg in self.register_webhooks(public_url):
            if reg["error"]:
                raise FatalError(f"shopify refused the {reg['topic']} subscription: {reg['error']}", provider="shopify")
            done.append(f"{reg['topic']} → {reg['address']}")
        done.append(f"{self.map_items()} variant(s) mapped by SKU")
        return done

    def register_webhooks(self, public_url: str, into: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """``webhookSubscriptionCreate`` for each topic; one entry per topic (appended to ``into`` as
        it goes, so a caller keeps what was done before a failure) with the address,
        Shopify's subscription id (None when it already existed: "Address for this topic has
        already been taken") and the refusal, if any. A transport or HTTP failure is raised."""
        callback = self.callback_url(public_url)
        found: list[dict[str, Any]] = [] if into is None else into
        for topic, enum in SUBSCRIBED_TOPICS.items():
            found.append(self._subscribe(topic, enum, callback))
        return found

    def _subscribe(self, topic: str, enum: str, callback: str) -> dict[str, Any]:
        data = self.graphql(SUBSCRIBE, {"topic": enum, "subscription": {"callbackUrl": callback, "format": "JSON"}})
        created = data.get("webhookSubscriptionCreate") or {}
        errors = created.get("userErrors") or []
        taken = bool(errors) and all("taken" in (e.get("message") or "").lower() for e in errors)
        subscription = (created.get("webhookSubscription") or {}).get("id")
        error = None if not errors or taken else json.dumps(errors)[:300]
        return {"topic": topic, "address": callback, "provider_ref": subscription, "error": error}

    def check_webhooks(self, public_url: str) -> list[dict[str, Any]]:
        """Compare Shopify's subscriptions to our webhook URL with the topics we need, and
        re-create the missing ones (Shopify deletes a subscription whose deliveries keep failing).
        One entry per topic, like :meth:`register_webhooks`, plus ``state``: present, re-created
        or failed. A transport or HTTP failure is raised."""
        callback = self.callback_url(public_url)
        present: dict[str, str] = {}
        after: str | None = None
        for _ in range(MAX_PAGES):
            page = (
                self.graphql(SUBSCRIPTIONS_PAGE, {"callbackUrl": callback, "after": after}).get("webhookSubscriptions")
                or {}
            )
            for node in page.get("nodes") or []:
                endpoint = node.get("endpoint") or {}
                if endpoint.get("callbackUrl") == callback and node.get("topic"):
                    present.setdefault(node["topic"], node.get("id"))
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            after = info.get("endCursor")
        found: list[dict[str, Any]] = []
        for topic, enum in SUBSCRIBED_TOPICS.items():
            if enum in present:
                found.append(
                    {
                        "topic": topic,
                        "address": callback,
                        "provider_ref": present[enum],
                        "error": None,
                        "state": "present",
                    }
                )
            else:
                entry = self._subscribe(topic, enum, callback)
                found.append({**entry, "state": "re-created" if entry["error"] is None else "failed"})
        return found

    def callback_url(self, public_url: str) -> str:
        return f"{public_url.rstrip('/')}/webhooks/shopify/{self.channel}"

    def map_items(self) -> int:
        """Read every product variant (up to ``MAX_PAGES`` of 250) into the SKU ↔ item map."""
        after: str | None = None
        mapped = 0
        for _ in range(MAX_PAGES):
            page = self.graphql(VARIANTS_PAGE, {"after": after}).get("productVariants") or {}
            found = [
                ItemRefFrom(n, mapping.gid_number((n.get("inventoryItem") or {}).get("id")) or "")
                for n in page.get("nodes") or []
                if n.get("sku")
            ]
            self.directory.remember([f for f in found if f.item_ref])
            mapped += len(found)
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            after = info.get("endCursor")
        return mapped

    def recent_orders(self, since: datetime) -> list[tuple[str, bytes, datetime]]:
        """Orders updated after ``since`` as (event key, webhook-shaped body, updated at)."""
        query = f"updated_at:>'{since.strftime('%Y-%m-%dT%H:%M:%SZ')}'"
        after: str | None = None
        found = []
        for _ in range(MAX_PAGES):
            page = self.graphql(RECENT_ORDERS, {"query": query, "after": after}).get("orders") or {}
            for node in page.get("nodes") or []:
                body = mapping.order_from_graphql(node)
                updated = mapping.parse_time(node.get("updatedAt"), "updatedAt")
                found.append(
                    (f"reconcile:{node.get('id')}:{node.get('updatedAt')}", json.dumps(body).encode(), updated)
                )
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            after = info.get("endCursor")
        return found

    def current_stock(self) -> list[tuple[str, bytes]]:
        """The ``available`` quantity of every item at each location of ``location_map`` (the
        stock-source pull), as (event key, ``inventory_levels/update``-shaped body). The time is
        the quantity's own ``updatedAt`` (else the level's), so the processor's ``observed_at``
        check keeps an older level from overwriting a newer one. Items with a SKU are mapped."""
        found: list[tuple[str, bytes]] = []
        for location in self.settings.location_map:
            after: str | None = None
            for _ in range(MAX_PAGES):
                data = self.graphql(LOCATION_LEVELS, {"id": _gid("Location", location), "after": after})
                page = ((data.get("location") or {}).get("inventoryLevels")) or {}
                refs = []
                for node in page.get("nodes") or []:
                    item = mapping.gid_number((node.get("item") or {}).get("id"))
                    available = next((q for q in node.get("quantities") or [] if q.get("name") == "available"), None)
                    if not item or available is None:
                        continue
                    sku = (node.get("item") or {}).get("sku")
                    if sku:
                        refs.append(mapping.ItemRef(sku, item))
                    updated = available.get("updatedAt") or node.get("updatedAt")
                    body = mapping.level_from_graphql(item, location, available.get("quantity"), updated)
                    found.append((f"reconcile-stock:{item}:{location}:{updated}", json.dumps(body).encode()))
                self.directory.remember(refs)
                info = page.get("pageInfo") or {}
                if not info.get("hasNextPage"):
                    break
                after = info.get("endCursor")
        return found


def ItemRefFrom(node: dict[str, Any], item: str) -> mapping.ItemRef:
    return mapping.ItemRef(node["sku"], item, mapping.gid_number(node.get("id")))


def _user_errors(data: dict[str, Any], field: str) -> None:
    errors = (data.get(field) or {}).get("userErrors") or []
    if errors:
        raise FatalError(f"shopify {field}: {json.dumps(errors)[:400]}", provider="shopify")


def _throttle_wait(body: dict[str, Any]) -> float:
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    try:
        needed = float(cost.get("requestedQueryCost", 0)) - float(status.get("currentlyAvailable", 0))
        rate = float(status.get("restoreRate", 50)) or 50.0
        return max(1.0, needed / rate)
    except (TypeError, ValueError):
        return 2.0


def build(name: str, settings: ConnectorSettings, deps: ConnectorDeps) -> Connector:
    assert isinstance(settings, ShopifySettings)
    return ShopifyConnector(name, settings, deps)
