"""Outbound Magento REST (Admin API, Swagger 2.0 ``admin-schema-2.4.8``):

- stock: ``POST /V1/inventory/source-items`` (MSI), the sellable quantity set on ``push_source_code``;
  and, for reconciliation, ``GET /V1/inventory/source-items`` of each source in ``source_locations``;
- orders: ``GET /V1/orders`` (find the entity id of an increment id), ``POST /V1/orders/{id}/hold`` /
  ``/unhold`` (only when the order's state allows it), then ``POST /V1/orders/{id}/comments``.

Every call is made once (``idempotent=False``); the outbox dispatcher owns retries. Hold/unhold run
before the comment so a retried delivery does not usually repeat the comment.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from backorder.connectors.base import (
    Connector,
    ConnectorDeps,
    ConnectorSettings,
    DeliveryReceipt,
    InboundIdentity,
    InboundRequest,
    OrderTag,
    ReceivesWebhooks,
    StockUpdate,
    SyncsStock,
    TagsOrders,
)
from backorder.connectors.errors import MalformedPayload, NotConfigured, Rejected
from backorder.connectors.http import HttpSettings, ProviderClient, json_answer
from backorder.connectors.magento import inbound, mapping
from backorder.connectors.magento.settings import MagentoSettings
from backorder.domain.commands import Command

PROVIDER = "magento"
SOURCE_ITEMS_BATCH = 500
RECONCILE_PAGE_SIZE = 50
RECONCILE_MAX_PAGES = 40
STOCK_PAGE_SIZE = 200
STOCK_MAX_PAGES = 250
"""At most 50,000 source items per mapped source in one pull."""
#: Order states from which Magento allows ``hold`` (Order::canHold) — ours is a subset that is safe.
HOLDABLE_STATES = frozenset({"new", "pending_payment", "processing"})


class MagentoConnector(Connector, ReceivesWebhooks, SyncsStock, TagsOrders):
    def __init__(
        self,
        name: str,
        settings: MagentoSettings,
        http: ProviderClient,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(name, settings)
        self.settings: MagentoSettings = settings
        self._http = http
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self.channel = name.removeprefix("channels.")

    # ---- inbound -------------------------------------------------------------------------
    def verify(self, request: InboundRequest) -> None:
        inbound.verify(self.settings, request)

    def identify(self, request: InboundRequest) -> InboundIdentity:
        return inbound.identify(request)

    def parse(self, topic: str, headers: Mapping[str, str], body: bytes) -> list[Command]:
        return inbound.parse(self.settings, self.channel, topic, headers, body)

    # ---- outbound ------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        if not self.settings.base_url:
            raise NotConfigured("base_url", provider=PROVIDER)
        return f"{self.settings.base_url.rstrip('/')}/rest/{self.settings.store_code}/V1{path}"

    def _headers(self) -> dict[str, str]:
        token = self.settings.access_token
        if token is None or not token.get_secret_value():
            raise NotConfigured(f"channels.{self.channel}.access_token", provider=PROVIDER)
        return {"Authorization": f"Bearer {token.get_secret_value()}", "Accept": "application/json"}

    def _call(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        return self._http.request(method, self._url(path), json=json, params=params, headers=self._headers())

    def push_stock(self, updates: Sequence[StockUpdate]) -> DeliveryReceipt:
        source = self.settings.push_source_code
        if not source:
            return DeliveryReceipt(detail="stock push disabled (push_source_code is not set)")
        for start in range(0, len(updates), SOURCE_ITEMS_BATCH):
            chunk = updates[start : start + SOURCE_ITEMS_BATCH]
            self._call("POST", "/inventory/source-items", json=mapping.source_items_body(chunk, source))
        shown = ", ".join(f"{u.sku}={u.available}" for u in updates[:5])
        return DeliveryReceipt(detail=f"set {len(updates)} source item(s) at {source}: {shown}")

    def _find_order(self, increment_id: str) -> Mapping[str, Any]:
        prefix = "searchCriteria[filterGroups][0][filters][0]"
        answer = self._call(
            "GET",
            "/orders",
            params={
                f"{prefix}[field]": "increment_id",
                f"{prefix}[value]": increment_id,
                f"{prefix}[conditionType]": "eq",
                "searchCriteria[pageSize]": 1,
            },
        ).json()
        items = answer.get("items") if isinstance(answer, dict) else None
        if not items:
            raise Rejected(404, provider=PROVIDER, detail=f"Magento has no order {increment_id}")
        order = items[0]
        if not isinstance(order, dict) or not isinstance(order.get("entity_id"), int):
            raise Rejected(200, provider=PROVIDER, detail=f"Magento's answer for order {increment_id} has no entity_id")
        return order

    def tag_order(self, tag: OrderTag) -> DeliveryReceipt:
        increment_id = mapping.increment_id_of(self.channel, tag.channel_order_ref)
        order = self._find_order(increment_id)
        entity_id = int(order["entity_id"])
        state = str(order.get("state") or "")
        done = []
        if self.settings.hold_backordered_orders:
            if tag.backordered and state in HOLDABLE_STATES:
                self._call("POST", f"/orders/{entity_id}/hold")
                done.append("held")
            elif not tag.backordered and state == "holded":
                self._call("POST", f"/orders/{entity_id}/unhold")
                done.append("released")
        self._call("POST", f"/orders/{entity_id}/comments", json=mapping.comment_body(entity_id, tag.note))
        done.append("commented")
        return DeliveryReceipt(provider_ref=str(entity_id), detail=f"order {increment_id}: {', '.join(done)}")

    def recent_orders(self, since: datetime) -> list[tuple[str, bytes, datetime, str]]:
        """Orders updated after ``since`` (``GET /V1/orders``, ``searchCriteria`` on ``updated_at``,
        oldest first) as (event key, body, updated at, topic); each body is the envelope the
        Backorder_Sync module sends (``order.placed`` / ``order.cancelled``), so it goes through the
        same parser. Orders already ``complete`` or ``closed`` are left out: a missed order that
        has shipped is nothing to back-order."""
        prefix = "searchCriteria[filterGroups][0][filters][0]"
        found = []
        for page in range(1, RECONCILE_MAX_PAGES + 1):
            answer = self._call(
                "GET",
                "/orders",
                params={
                    f"{prefix}[field]": "updated_at",
                    f"{prefix}[value]": since.strftime("%Y-%m-%d %H:%M:%S"),
                    f"{prefix}[conditionType]": "gt",
                    "searchCriteria[sortOrders][0][field]": "updated_at",
                    "searchCriteria[sortOrders][0][direction]": "ASC",
                    "searchCriteria[pageSize]": RECONCILE_PAGE_SIZE,
                    "searchCriteria[currentPage]": page,
                },
            ).json()
            items = answer.get("items") if isinstance(answer, dict) else None
            for order in items or []:
                try:
                    entry = mapping.reconciled_order(order) if isinstance(order, dict) else None
                except MalformedPayload:  # no usable time: the next pull (or the event) brings it
                    entry = None
                if entry is not None:
                    topic, envelope, updated = entry
                    key = f"reconcile:{order.get('entity_id')}:{order.get('updated_at')}"
                    found.append((key, json.dumps(envelope).encode(), updated, topic))
            total = answer.get("total_count") if isinstance(answer, dict) else None
            if not items or not isinstance(total, int) or page * RECONCILE_PAGE_SIZE >= total:
                break
        return found

    # ---- stock pull (reconciliation) -----------------------------------------------------
    def reads_stock(self) -> bool:
        """Whether this channel's stock is read (a stock source for reconciliation): it maps at
        least one Magento source to one of our locations."""
        return bool(self.settings.source_locations)

    def current_stock(self) -> list[tuple[str, bytes]]:
        """The quantity of every source item of each mapped source (``GET /V1/inventory/
        source-items``, ``searchCriteria`` ``source_code eq <source>``, sorted by SKU, pages of
        ``STOCK_PAGE_SIZE`` until ``total_count``), each as (event key, the module's
        ``stock.source_items`` envelope), so the module's parser turns it into ``SetStockLevel``.

        One source per query: sorted by SKU, the rows of one source have a total order, so pages
        neither overlap nor skip rows through ties (with several sources in one query, equal SKUs
        would tie and MySQL may order them differently per page); an item added or removed between
        two page requests can still shift one across a boundary, and the next pull reads it.
        ``observed_at`` is Magento's ``Date`` of the page (see ``mapping.server_time``): a newer
        module event wins over the pulled level, an older one does not."""
        prefix = "searchCriteria[filterGroups][0][filters][0]"
        found: list[tuple[str, bytes]] = []
        for source in sorted(self.settings.source_locations):
            for page in range(1, STOCK_MAX_PAGES + 1):
                sent_at = self._wall_clock()
                response = self._call(
                    "GET",
                    "/inventory/source-items",
                    params={
                        f"{prefix}[field]": "source_code",
                        f"{prefix}[value]": source,
                        f"{prefix}[conditionType]": "eq",
                        "searchCriteria[sortOrders][0][field]": "sku",
                        "searchCriteria[sortOrders][0][direction]": "ASC",
                        "searchCriteria[pageSize]": STOCK_PAGE_SIZE,
                        "searchCriteria[currentPage]": page,
                    },
                )
                items, total = _source_item_page(response, source)
                observed = mapping.server_time(response.headers.get("date"), sent_at)
                for item in items:
                    entry = mapping.pulled_source_item(item, observed, self.settings.stock_refresh_hours)
                    if entry is not None and item.get("source_code") == source:
                        key, envelope = entry
                        found.append((key, json.dumps(envelope).encode()))
                if not items or page * STOCK_PAGE_SIZE >= total:
                    break  # Magento answers a page past the end with the last page again
        return found


def _source_item_page(response: httpx.Response, source: str) -> tuple[list[Mapping[str, Any]], int]:
    """The items and ``total_count`` of a ``inventory-api-data-source-item-search-results-interface``
    answer; anything else is refused (a proxy's login page, a changed API)."""
    answer = json_answer(response, PROVIDER, f"Magento's source items of {source}")
    items = answer.get("items") if isinstance(answer, dict) else None
    total = answer.get("total_count") if isinstance(answer, dict) else None
    if items is None and total == 0:
        items = []
    if not isinstance(items, list) or not isinstance(total, int) or isinstance(total, bool):
        raise Rejected(
            response.status_code,
            provider=PROVIDER,
            detail=f"Magento's answer for the source items of {source} has no items / total_count",
        )
    return [i for i in items if isinstance(i, dict)], total


def build(name: str, settings: ConnectorSettings, deps: ConnectorDeps) -> MagentoConnector:
    assert isinstance(settings, MagentoSettings)
    factory = deps.http_client_factory or (lambda _name: httpx.Client())
    hosts = [httpx.URL(settings.base_url).host] if settings.base_url else []
    http_settings = HttpSettings(
        connect_timeout=min(5.0, settings.timeout_seconds),
        read_timeout=settings.timeout_seconds,
        max_attempts=1,
        allowed_hosts=[h for h in hosts if h],
    )
    return MagentoConnector(
        name,
        settings,
        ProviderClient(factory(name), http_settings, provider=PROVIDER),
        deps.extras.get("wall_clock"),
    )
