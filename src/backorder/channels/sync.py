"""Omnichannel stock sync: coalesce and batch the sellable-quantity pushes.

The core dispatcher turns each ``push_stock`` row (one per SKU per transaction) into one
delivery per channel at once. Here a ``push_stock`` row instead queues ``(channel, SKU)`` in
``stock_push_pending`` due after the channel's push window; a SKU already pending for that
channel absorbs the new request. :meth:`StockSync.flush` turns due pending pushes into
``push_stock_batch`` outbox rows of at most the channel API's batch size, and the dispatcher
delivers those (reading the sellable quantity at delivery time: the freshest value wins) with
its usual retries, ``Retry-After`` and dead letters.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from backorder.connectors.base import DeliveryReceipt, StockUpdate, SyncsStock
from backorder.dispatch import Dispatcher, Skip, _require
from backorder.store.inbox import ChannelStore
from backorder.store.outbox import ClaimedDelivery


def _window(settings: Any) -> float:
    return float(getattr(settings, "push_window_seconds", 0.0) or 0.0)


def _batch(settings: Any) -> int:
    return int(getattr(settings, "batch_size", 50) or 50)


class ChannelDispatcher(Dispatcher):
    """The core dispatcher with coalesced, batched stock pushes."""

    channel_store: ChannelStore

    @classmethod
    def wrap(cls, base: Dispatcher, store: ChannelStore) -> ChannelDispatcher:
        made = cls.__new__(cls)
        made.__dict__.update(base.__dict__)
        made.channel_store = store
        return made

    def _do_push_stock(self, d: ClaimedDelivery) -> tuple[str, DeliveryReceipt]:  # type: ignore[override]
        channels = [cid for cid, c in sorted(self.routes.channels.items()) if isinstance(c, SyncsStock)]
        if not channels:
            raise Skip("no connected channel syncs stock")
        now = self.clock.now()
        queued = 0
        for cid in channels:
            due = now + timedelta(seconds=_window(self.routes.channel_settings.get(cid)))
            queued += self.channel_store.queue_push([cid], d.payload["sku"], due)
        merged = len(channels) - queued
        detail = f"queued for {len(channels)} channel(s)" + (f"; {merged} merged into pending pushes" if merged else "")
        return "stock-sync", DeliveryReceipt(detail=detail)

    def _do_push_stock_batch(self, d: ClaimedDelivery) -> tuple[str, DeliveryReceipt]:
        cid = d.payload["channel"]
        connector = _require(self.routes.channels.get(cid), SyncsStock, f"channel {cid}")
        settings = self.routes.channel_settings.get(cid)
        locations = tuple(getattr(settings, "locations", ()) or ())
        buffer = int(getattr(settings, "buffer", 0) or 0)
        updates = [
            StockUpdate(sku, self.read.sellable(sku, locations, buffer), f"bo-{d.id}") for sku in d.payload["skus"]
        ]
        self._limit(connector, d.payload)
        receipt = connector.push_stock(updates)
        self.channel_store.mark_pushed(cid, {u.sku: u.available for u in updates}, self.clock.now())
        return connector.name, receipt


class StockSync:
    def __init__(self, store: ChannelStore, channel_settings: Mapping[str, Any]) -> None:
        self.store = store
        self.channel_settings = channel_settings

    def flush(self, now: datetime) -> int:
        """Turn due pending pushes into batch outbox rows; returns how many rows were made."""
        sizes = {cid: _batch(s) for cid, s in self.channel_settings.items()}
        return len(self.store.take_due_pushes(now, sizes))
