"""What the composition root builds for sales channels, and the worker's one call into it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backorder.channels.api_orders import StandardWebhookReceiver
from backorder.channels.ingest import InboxWriter
from backorder.channels.metrics import IngressMetrics
from backorder.channels.processor import API_KINDS, InboxProcessor
from backorder.channels.reconcile import Reconciler
from backorder.channels.sync import StockSync
from backorder.connectors.base import ApiChannelSettings, ConnectorSettings
from backorder.connectors.items import ItemRef
from backorder.services.ports import Clock
from backorder.store.inbox import ChannelItem, ChannelStore, InboxStore

log = logging.getLogger(__name__)


class BoundDirectory:
    """A channel's item map in the database, as a connector's ``ItemDirectory``."""

    def __init__(self, store: ChannelStore, channel: str, clock: Clock, make: Callable[..., Any]) -> None:
        self.store = store
        self.channel = channel
        self.clock = clock
        self.make = make

    def find(self, skus: Sequence[str]) -> dict[str, Any]:
        found = self.store.items_for_skus(self.channel, list(skus))
        return {s: self.make(i.sku, i.item_ref, i.variant_ref, i.parent_ref) for s, i in found.items()}

    def sku_of(self, item_ref: str) -> str | None:
        return self.store.sku_for_item(self.channel, item_ref)

    def remember(self, items: Sequence[Any]) -> None:
        self.store.remember_items(
            self.channel, [ChannelItem(i.sku, i.item_ref, i.variant_ref, i.parent_ref) for i in items], self.clock.now()
        )


@dataclass
class ChannelServices:
    inbox: InboxStore
    store: ChannelStore
    processor: InboxProcessor
    sync: StockSync
    reconciler: Reconciler
    metrics: IngressMetrics
    writer: InboxWriter
    receivers: dict[str, Any] = field(default_factory=dict)
    """Channel id → what verifies and identifies its webhooks (a connector, or the Standard
    Webhooks receiver of a POS/B2B channel)."""
    settings: dict[str, ConnectorSettings] = field(default_factory=dict)
    process_limit: int = 200

    def tick(self, now: datetime) -> int:
        """One worker round: process received webhooks, flush due stock pushes, reconcile."""
        handled = self.processor.run(self.process_limit)
        self.sync.flush(now)
        try:
            self.reconciler.run_due(now)
        except Exception:  # a channel's pull must not stop the loop; it is retried next round
            log.exception("reconciliation failed; will retry")
        return handled

    def webhook_only(self) -> dict[str, list[str]]:
        """Channels that receive webhooks but cannot call out yet, with what they lack."""
        return {
            cid: s.missing_credentials()
            for cid, s in sorted(self.settings.items())
            if s.kind not in API_KINDS and s.missing_credentials()
        }

    def api_channel_for_key(self, presented: str) -> str | None:
        import hmac

        match = None
        for cid, s in sorted(self.settings.items()):
            key = getattr(s, "api_key", None) if isinstance(s, ApiChannelSettings) else None
            if key is not None and hmac.compare_digest(key.get_secret_value().encode(), presented.encode()):
                match = cid
        return match


def build_channel_services(app: Any) -> ChannelServices:
    """Wire the channel services for an :class:`~backorder.bootstrap.Application` (called from
    bootstrap's issue-3 section)."""
    from backorder.channels.sync import ChannelDispatcher

    engine, clock, routes = app.engine, app.clock, app.routes
    inbox = InboxStore(engine)
    store = ChannelStore(engine)
    metrics = IngressMetrics()
    receivers: dict[str, Any] = {}
    for cid, settings in app.config.channels.items():
        connector = routes.channels.get(cid)
        if connector is not None:
            if hasattr(connector, "bind_directory"):
                connector.bind_directory(BoundDirectory(store, cid, clock, ItemRef))
            receivers[cid] = connector
        elif isinstance(settings, ApiChannelSettings):
            receivers[cid] = StandardWebhookReceiver(cid, settings, clock.now)
    processor = InboxProcessor(inbox, store, app.bus, receivers.get, app.config.channels.get, clock.now, metrics)
    app.dispatcher = ChannelDispatcher.wrap(app.dispatcher, store)
    return ChannelServices(
        inbox=inbox,
        store=store,
        processor=processor,
        sync=StockSync(store, routes.channel_settings),
        reconciler=Reconciler(inbox, store, routes.channels),
        metrics=metrics,
        writer=InboxWriter(inbox),
        receivers=receivers,
        settings=dict(app.config.channels),
    )
