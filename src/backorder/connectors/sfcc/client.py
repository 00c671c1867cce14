"""Outbound SFCC calls, all with one Account Manager client-credentials token (cached until shortly
before it expires, dropped on a 401 and fetched again once):

- stock: OCAPI Data API ``PATCH {base_url}/s/-/dw/data/{version}/inventory_lists/{list}/
  product_inventory_records/{product_id}`` with ``{"allocation": {"amount": n}}``; for
  reconciliation, ``GET .../inventory_lists/{list}/product_inventory_records`` of each list in
  ``inventory_locations`` (``start``/``count`` paging up to ``total``);
- orders: SCAPI Orders (``orders-oas-v1``) ``PUT .../orders/{orderNo}/export-status`` (hold from /
  release to export) and ``PATCH .../orders/{orderNo}`` setting the note and status custom attributes.

Calls are made once; the outbox dispatcher owns retries.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

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
from backorder.connectors.sfcc import mapping
from backorder.connectors.sfcc.settings import SfccSettings
from backorder.connectors.standard_webhooks import identify_standard, parse_envelope, verify_signed
from backorder.domain.commands import Command

PROVIDER = "sfcc"
RECONCILE_LIMIT = 200
RECONCILE_MAX_PAGES = 40
STOCK_PAGE_COUNT = 200
STOCK_MAX_PAGES = 250
"""At most 50,000 records per mapped inventory list in one pull."""
TOKEN_MARGIN_SECONDS = 60.0


class AccountManagerToken:
    """Client-credentials token from Account Manager, cached until ``expires_in`` minus a margin."""

    def __init__(self, http: ProviderClient, settings: SfccSettings, clock: Callable[[], float]) -> None:
        self._http = http
        self._settings = settings
        self._clock = clock
        self._token: str | None = None
        self._until = 0.0
        self._lock = threading.Lock()  # one fetch at a time: deliveries run on several threads

    def get(self) -> tuple[str, bool]:
        """The token and whether it came from the cache."""
        with self._lock:
            return self._get()

    def _get(self) -> tuple[str, bool]:
        if self._token is not None and self._clock() < self._until:
            return self._token, True
        s = self._settings
        if not s.client_id or s.client_secret is None:
            raise NotConfigured("channels.<id>.client_id / client_secret", provider=PROVIDER)
        data = {"grant_type": "client_credentials"}
        if s.scopes:
            data["scope"] = " ".join(s.scopes)
        answer = self._http.request(
            "POST", s.token_url, data=data, auth=(s.client_id, s.client_secret.get_secret_value())
        )
        try:
            body = answer.json()
            token = str(body["access_token"])
            expires_in = float(body.get("expires_in", 1799))
        except (ValueError, KeyError, TypeError) as exc:
            raise Rejected(
                answer.status_code, provider=PROVIDER, detail="Account Manager answered without an access_token"
            ) from exc
        self._token = token
        self._until = self._clock() + max(0.0, expires_in - TOKEN_MARGIN_SECONDS)
        return token, False

    def drop(self) -> None:
        with self._lock:
            self._token = None


class SfccConnector(Connector, ReceivesWebhooks, SyncsStock, TagsOrders):
    def __init__(
        self, name: str, settings: SfccSettings, http: ProviderClient, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(name, settings)
        self.settings: SfccSettings = settings
        self._http = http
        self._token = AccountManagerToken(http, settings, clock)
        self.channel = name.removeprefix("channels.")

    # ---- inbound -------------------------------------------------------------------------
    def verify(self, request: InboundRequest) -> None:
        verify_signed(request, self.settings.all_webhook_secrets())

    def identify(self, request: InboundRequest) -> InboundIdentity:
        return identify_standard(request)

    def parse(self, topic: str, headers: Mapping[str, str], body: bytes) -> list[Command]:
        return mapping.from_cartridge_event(self.channel, parse_envelope(body), self.settings.inventory_locations)

    # ---- outbound ------------------------------------------------------------------------
    def _call(
        self, method: str, url: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        token, cached = self._token.get()
        try:
            return self._http.request(
                method, url, json=json, params=params, headers={"Authorization": f"Bearer {token}"}
            )
        except Rejected as exc:
            if exc.status_code != 401 or not cached:
                raise
            self._token.drop()  # revoked or expired early: one fresh token, one more try
            token, _ = self._token.get()
            return self._http.request(
                method, url, json=json, params=params, headers={"Authorization": f"Bearer {token}"}
            )

    def _require(self, *keys: str) -> None:
        for key in keys:
            if not getattr(self.settings, key):
                raise NotConfigured(f"channels.{self.channel}.{key}", provider=PROVIDER)

    def _inventory_list_url(self, list_id: str) -> str:
        s = self.settings
        return (
            f"{(s.base_url or '').rstrip('/')}/s/-/dw/data/{s.ocapi_version}/inventory_lists/{quote(list_id, safe='')}"
        )

    def push_stock(self, updates: Sequence[StockUpdate]) -> DeliveryReceipt:
        self._require("base_url", "inventory_list_id")
        s = self.settings
        root = self._inventory_list_url(s.inventory_list_id or "")
        for update in updates:
            url = f"{root}/product_inventory_records/{quote(update.sku, safe='')}"
            self._call("PATCH", url, json=mapping.inventory_patch_body(update.available))
        shown = ", ".join(f"{u.sku}={u.available}" for u in updates[:5])
        return DeliveryReceipt(detail=f"set allocation of {len(updates)} record(s) in {s.inventory_list_id}: {shown}")

    def tag_order(self, tag: OrderTag) -> DeliveryReceipt:
        self._require("organization_id", "site_id")
        root = self.settings.scapi_root()
        if not root:
            raise NotConfigured(f"channels.{self.channel}.short_code", provider=PROVIDER)
        order_no = mapping.order_no_of(self.channel, tag.channel_order_ref)
        base = (
            f"{root}/checkout/orders/v1/organizations/{quote(self.settings.organization_id or '', safe='')}"
            f"/orders/{quote(order_no, safe='')}"
        )
        params = {"siteId": self.settings.site_id}
        done = []
        if self.settings.hold_via_export_status:
            status = "not_exported" if tag.backordered else "ready"
            self._call("PUT", f"{base}/export-status", json={"status": status}, params=params)
            done.append(f"export status {status}")
        body = mapping.order_update_body(
            self.settings.note_attribute, self.settings.status_attribute, tag.backordered, tag.note
        )
        self._call("PATCH", base, json=body, params=params)
        done.append("note set")
        return DeliveryReceipt(provider_ref=order_no, detail=f"order {order_no}: {', '.join(done)}")

    def recent_orders(self, since: datetime) -> list[tuple[str, bytes, datetime, str]]:
        """Orders modified since ``since`` (SCAPI Orders ``GET .../orders`` with
        ``lastModifiedDateFrom``, ``sortBy=last_modified_date``, oldest first) as (event key, body,
        modified at, topic); each body is the envelope the int_backorder job step sends
        (``order.created`` / ``order.cancelled``), so it goes through the same parser."""
        self._require("organization_id", "site_id")
        root = self.settings.scapi_root()
        if not root:
            raise NotConfigured(f"channels.{self.channel}.short_code", provider=PROVIDER)
        url = f"{root}/checkout/orders/v1/organizations/{quote(self.settings.organization_id or '', safe='')}/orders"
        found = []
        for page in range(RECONCILE_MAX_PAGES):
            params = {
                "siteId": self.settings.site_id,
                "lastModifiedDateFrom": since.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "sortBy": "last_modified_date",
                "sortOrder": "asc",
                "limit": RECONCILE_LIMIT,
                "offset": page * RECONCILE_LIMIT,
            }
            answer = self._call("GET", url, params=params).json()
            orders = answer.get("data") if isinstance(answer, dict) else None
            for order in orders or []:
                try:
                    entry = mapping.reconciled_order(order) if isinstance(order, dict) else None
                except MalformedPayload:  # no usable time: the next pull (or the event) brings it
                    entry = None
                if entry is not None:
                    topic, envelope, modified = entry
                    key = f"reconcile:{order.get('orderNo')}:{order.get('lastModified')}"
                    found.append((key, json.dumps(envelope).encode(), modified, topic))
            if not orders or len(orders) < RECONCILE_LIMIT:
                break
        return found

    # ---- stock pull (reconciliation) -----------------------------------------------------
    def reads_stock(self) -> bool:
        """Whether this channel's stock is read (a stock source for reconciliation): it maps at
        least one inventory list to one of our locations."""
        return bool(self.settings.inventory_locations)

    def current_stock(self) -> list[tuple[str, bytes]]:
        """Every product inventory record of each mapped inventory list (OCAPI Data
        ``GET .../inventory_lists/{list}/product_inventory_records?start=&count=&select=(**)``,
        ``ProductInventoryRecords``: ``data``, ``count``, ``start``, ``total``), each as (event key,
        the job step's ``inventory.records`` envelope), so the job step's parser turns it into
        ``SetStockLevel`` at the allocation's ``reset_date``. Records without an allocation are
        left out."""
        self._require("base_url")
        found: list[tuple[str, bytes]] = []
        for list_id in sorted(self.settings.inventory_locations):
            url = f"{self._inventory_list_url(list_id)}/product_inventory_records"
            start = 0
            for _ in range(STOCK_MAX_PAGES):
                params = {"start": start, "count": STOCK_PAGE_COUNT, "select": "(**)"}
                records, total = _inventory_record_page(self._call("GET", url, params=params), list_id)
                for record in records:
                    entry = mapping.pulled_inventory_record(list_id, record) if isinstance(record, dict) else None
                    if entry is not None:
                        key, envelope = entry
                        found.append((key, json.dumps(envelope).encode()))
                start += len(records)
                if not records or start >= total:
                    break
        return found


def _inventory_record_page(response: httpx.Response, list_id: str) -> tuple[list[Any], int]:
    """The records and ``total`` of a ``ProductInventoryRecords`` answer (``data`` may be absent
    when there are none); anything else is refused."""
    answer = json_answer(response, PROVIDER, f"SFCC's inventory records of {list_id}")
    total = answer.get("total") if isinstance(answer, dict) else None
    records = answer.get("data", []) if isinstance(answer, dict) else None
    if not isinstance(records, list) or not isinstance(total, int) or isinstance(total, bool):
        raise Rejected(
            response.status_code,
            provider=PROVIDER,
            detail=f"SFCC's answer for the inventory records of {list_id} has no data / total",
        )
    return records, total


def build(name: str, settings: ConnectorSettings, deps: ConnectorDeps) -> SfccConnector:
    assert isinstance(settings, SfccSettings)
    factory = deps.http_client_factory or (lambda _name: httpx.Client())
    hosts = {httpx.URL(u).host for u in (settings.base_url, settings.token_url, settings.scapi_root()) if u}
    http_settings = HttpSettings(
        connect_timeout=min(5.0, settings.timeout_seconds),
        read_timeout=settings.timeout_seconds,
        max_attempts=1,
        allowed_hosts=sorted(h for h in hosts if h),
    )
    clock = deps.extras.get("monotonic_clock") or time.monotonic
    return SfccConnector(name, settings, ProviderClient(factory(name), http_settings, provider=PROVIDER), clock)
