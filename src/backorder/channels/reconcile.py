"""Periodic reconciliation: pull orders updated since the last pull from each channel's API and
feed them into the inbox as if they were webhooks, so a dropped webhook is caught within the
channel's ``reconcile_minutes``. They go through the same processor (and its version check), so
an order already seen changes nothing.

Channels whose inventory reports are authoritative also have their current stock levels pulled
first (``connector.current_stock()``: (event key, body) or (event key, body, topic) entries), each
recorded under the topic of the platform's own stock event (``STOCK_TOPICS``) so the connector's
inbound parser turns it into the same ``SetStockLevel(observed_at=…)`` a webhook would: a level
older than one already applied changes nothing, and an unchanged level (same key) adds no row.
A channel is such a stock source when its connector says so (``reads_stock()``: Magento maps a
source in ``source_locations``, SFCC an inventory list in ``inventory_locations``), else when its
settings say ``stock_source = true`` (Shopify ``inventory_levels/update``, WooCommerce
``product.updated`` applied as on-hand)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from backorder.connectors.base import Connector
from backorder.connectors.errors import ConnectorError
from backorder.store.inbox import ChannelStore, InboxStore

log = logging.getLogger(__name__)

RECONCILE_TOPICS = {
    "shopify": "orders/updated",
    "woocommerce": "order.updated",
    # Magento and SFCC name each pulled order's topic themselves (placed / cancelled); these are
    # the topics of an entry that does not.
    "magento": "order.placed",
    "sfcc": "order.created",
}
STOCK_TOPICS = {
    "shopify": "inventory_levels/update",
    "woocommerce": "product.updated",
    "magento": "stock.source_items",  # the Backorder_Sync module's MSI event
    "sfcc": "inventory.records",  # the int_backorder job step's event
}
RECORD_BATCH = 500
"""Pulled rows committed to the inbox per transaction."""
OVERLAP = timedelta(minutes=2)
"""Each pull starts this long before the newest change seen (clock skew; keys dedupe)."""
FIRST_LOOKBACK = timedelta(hours=1)


class Reconciler:
    def __init__(self, inbox: InboxStore, store: ChannelStore, channels: Mapping[str, Connector]) -> None:
        self.inbox = inbox
        self.store = store
        self.channels = channels

    def due(self, now: datetime) -> list[str]:
        found = []
        for cid, connector in sorted(self.channels.items()):
            minutes = float(getattr(connector.settings, "reconcile_minutes", 0) or 0)
            if not minutes or not hasattr(connector, "recent_orders") or connector.settings.missing_credentials():
                continue
            last, _ = self.store.sync_state(cid)
            if last is None or now - last >= timedelta(minutes=minutes):
                found.append(cid)
        return found

    def run_due(self, now: datetime) -> dict[str, Any]:
        return {cid: self.reconcile_channel(cid, now) for cid in self.due(now)}

    def is_stock_source(self, cid: str) -> bool:
        """Whether the channel's stock levels are pulled: it can pull them (``current_stock``) and
        its connector reads stock (``reads_stock()``) or, for connectors without that, its
        settings say ``stock_source = true``."""
        connector = self.channels.get(cid)
        if connector is None or not hasattr(connector, "current_stock"):
            return False
        reads_stock = getattr(connector, "reads_stock", None)
        if callable(reads_stock):
            return bool(reads_stock())
        return bool(getattr(connector.settings, "stock_source", False))

    def stock_due(self, now: datetime) -> list[str]:
        """Channels whose stock levels the next round pulls (due, and a stock source)."""
        return [cid for cid in self.due(now) if self.is_stock_source(cid)]

    def reconcile_channel(self, cid: str, now: datetime) -> dict[str, Any]:
        """Pull one channel's stock levels (if it is a stock source), then its recent orders
        (unless its settings say ``pull_orders = false``: stock only)."""
        stock = self.reconcile_stock(cid, now) if self.is_stock_source(cid) else None
        if getattr(self.channels[cid].settings, "pull_orders", True):
            result = self.reconcile(cid, now)
        else:  # the round is done all the same: due again after reconcile_minutes
            _, watermark = self.store.sync_state(cid)
            self.store.save_sync_state(cid, now, watermark, None)
            result = {"orders": "not pulled (pull_orders = false)"}
        if stock is not None:
            result["stock"] = stock
        return result

    def reconcile_stock(self, cid: str, now: datetime) -> dict[str, Any]:
        """Pull a stock-source channel's current levels into the inbox; returns counts (or the error)."""
        connector: Any = self.channels[cid]
        kind = connector.settings.kind
        try:
            found = connector.current_stock()
        except ConnectorError as exc:
            log.warning("stock pull of %s failed (%s); see `backorder reconcile %s`", cid, type(exc).__name__, cid)
            return {"error": exc.detail}
        topic = STOCK_TOPICS.get(kind, "stock")
        # (key, body) or (key, body, topic)
        new = self._record(kind, cid, [(e[0], e[2] if len(e) > 2 else topic, e[1]) for e in found], now)
        return {"pulled": len(found), "new": new}

    def _record(self, kind: str, cid: str, rows: list[tuple[str, str, bytes]], now: datetime) -> int:
        """Put pulled (key, topic, body) rows into the inbox, ``RECORD_BATCH`` per transaction (a
        catalogue's levels are tens of thousands of rows; one commit each would take minutes on a
        disk that syncs every commit); returns how many were new (the rest were duplicates)."""
        headers = {"x-backorder-source": "reconciliation"}
        new = 0
        for start in range(0, len(rows), RECORD_BATCH):
            batch = rows[start : start + RECORD_BATCH]
            results = self.inbox.record_many(
                [(kind, cid, key, topic, headers, body, now) for key, topic, body in batch]
            )
            new += sum(1 for _, created in results if created)
        return new

    def reconcile(self, cid: str, now: datetime) -> dict[str, Any]:
        """Pull one channel now; returns counts (or the error, which is also saved)."""
        connector: Any = self.channels[cid]
        _, watermark = self.store.sync_state(cid)
        since = (watermark - OVERLAP) if watermark else now - FIRST_LOOKBACK
        topic = RECONCILE_TOPICS.get(connector.settings.kind, "orders/updated")
        try:
            found = connector.recent_orders(since)
        except ConnectorError as exc:
            # the provider's answer (which may quote customers) is saved, not logged
            log.warning("reconciliation of %s failed (%s); see `backorder channels`", cid, type(exc).__name__)
            self.store.save_sync_state(cid, now, None, exc.detail)
            return {"error": exc.detail}
        newest = watermark
        for entry in found:  # (key, body, updated) or (key, body, updated, topic)
            newest = entry[2] if newest is None or entry[2] > newest else newest
        rows = [(e[0], e[3] if len(e) > 3 else topic, e[1]) for e in found]
        new = self._record(connector.settings.kind, cid, rows, now)
        self.store.save_sync_state(cid, now, newest, None)
        return {"pulled": len(found), "new": new, "since": since.isoformat()}
