"""Periodic reconciliation: pull orders updated since the last pull from each channel's API and
feed them into the inbox as if they were webhooks, so a dropped webhook is caught within the
channel's ``reconcile_minutes``. They go through the same processor (and its version check), so
an order already seen changes nothing.

Channels whose inventory reports are authoritative (``stock_source = true``: their
``inventory_levels/update`` / ``product.updated`` are applied as on-hand) also have their current
stock levels pulled, as ``inventory_levels/update`` / ``product.updated`` rows keyed by item and
the source's own update time: the processor applies them with ``SetStockLevel(observed_at=…)``,
so a level older than one already applied changes nothing, and an unchanged level adds no row."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from backorder.connectors.base import Connector
from backorder.connectors.errors import ConnectorError
from backorder.store.inbox import ChannelStore, InboxStore

log = logging.getLogger(__name__)

RECONCILE_TOPICS = {"shopify": "orders/updated", "woocommerce": "order.updated"}
STOCK_TOPICS = {"shopify": "inventory_levels/update", "woocommerce": "product.updated"}
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
        connector = self.channels.get(cid)
        return (
            connector is not None
            and bool(getattr(connector.settings, "stock_source", False))
            and hasattr(connector, "current_stock")
        )

    def stock_due(self, now: datetime) -> list[str]:
        """Channels whose stock levels the next round pulls (due, and a stock source)."""
        return [cid for cid in self.due(now) if self.is_stock_source(cid)]

    def reconcile_channel(self, cid: str, now: datetime) -> dict[str, Any]:
        """Pull one channel's stock levels (if it is a stock source), then its recent orders."""
        stock = self.reconcile_stock(cid, now) if self.is_stock_source(cid) else None
        result = self.reconcile(cid, now)
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
        new = 0
        headers = {"x-backorder-source": "reconciliation"}
        for key, body in found:
            _, created = self.inbox.record(kind, cid, key, STOCK_TOPICS.get(kind, "stock"), headers, body, now)
            new += int(created)
        return {"pulled": len(found), "new": new}

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
        new = 0
        newest = watermark
        for entry in found:  # (key, body, updated) or (key, body, updated, topic)
            key, body, updated = entry[0], entry[1], entry[2]
            row_topic = entry[3] if len(entry) > 3 else topic
            _, created = self.inbox.record(
                connector.settings.kind, cid, key, row_topic, {"x-backorder-source": "reconciliation"}, body, now
            )
            new += int(created)
            newest = updated if newest is None or updated > newest else newest
        self.store.save_sync_state(cid, now, newest, None)
        return {"pulled": len(found), "new": new, "since": since.isoformat()}
