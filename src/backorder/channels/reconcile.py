"""Periodic reconciliation: pull orders updated since the last pull from each channel's API and
feed them into the inbox as if they were webhooks, so a dropped webhook is caught within the
channel's ``reconcile_minutes``. They go through the same processor (and its version check), so
an order already seen changes nothing."""

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
        return {cid: self.reconcile(cid, now) for cid in self.due(now)}

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
        for key, body, updated in found:
            _, created = self.inbox.record(
                connector.settings.kind, cid, key, topic, {"x-backorder-source": "reconciliation"}, body, now
            )
            new += int(created)
            newest = updated if newest is None or updated > newest else newest
        self.store.save_sync_state(cid, now, newest, None)
        return {"pulled": len(found), "new": new, "since": since.isoformat()}
