"""What the composition root builds for sales channels, and the worker's one call into it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backorder.channels.api_orders import StandardWebhookReceiver
from backorder.channels.ingest import InboxWriter
from backorder.channels.metrics import IngressMetrics
from backorder.channels.processor import API_KINDS, InboxProcessor
from backorder.channels.reconcile import Reconciler
from backorder.channels.state import can_verify_webhooks
from backorder.channels.sync import StockSync
from backorder.connectors.base import ApiChannelSettings, ConnectorSettings
from backorder.connectors.errors import ConnectorError
from backorder.connectors.items import ItemRef
from backorder.connectors.shopify.client import SUBSCRIBED_TOPICS as SHOPIFY_TOPICS
from backorder.connectors.woocommerce.client import WEBHOOK_TOPICS as WOO_TOPICS
from backorder.services.ports import Clock
from backorder.store.inbox import ChannelItem, ChannelStore, InboxStore, Registration, RegistrationStore

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
    registrations: RegistrationStore | None = None
    """What `backorder connect` registered on each platform."""
    connectors: Mapping[str, Any] = field(default_factory=dict)
    """Channel id → its connector (for the subscription check)."""
    public_url: str | None = None
    """``server.public_url``: where the platforms send webhooks."""
    _checked: dict[str, datetime] = field(default_factory=dict)

    def tick(self, now: datetime, process_inbox: bool = True) -> int:
        """One worker round: process received webhooks (unless a thread of their own does),
        flush due stock pushes, reconcile."""
        handled = self.processor.run(self.process_limit) if process_inbox else 0
        self.sync.flush(now)
        try:
            self.reconciler.run_due(now)
        except Exception:  # a channel's pull must not stop the loop; it is retried next round
            log.exception("reconciliation failed; will retry")
        try:
            self.check_subscriptions(now)
        except Exception:  # the same: retried at the next check
            log.exception("webhook subscription check failed; will retry")
        return handled

    def subscriptions_due(self, now: datetime) -> list[str]:
        """Connected channels whose platform subscriptions are due a check: the connector can
        check (``check_webhooks``), has credentials, ``webhook_check_minutes`` is not 0, and
        `backorder connect` registered it (so its subscriptions are ours to keep)."""
        if not self.public_url or self.registrations is None:
            return []
        due = []
        for cid, connector in sorted(self.connectors.items()):
            settings = self.settings.get(cid)
            minutes = float(getattr(settings, "webhook_check_minutes", 0) or 0)
            if settings is None or not minutes or not hasattr(connector, "check_webhooks"):
                continue
            if settings.missing_credentials():
                continue
            last = self._checked.get(cid)
            if last is not None and now - last < timedelta(minutes=minutes):
                continue
            if self.registrations.for_channel(cid):
                due.append(cid)
            else:  # not connected from here: looked at again after the interval, not every tick
                self._checked[cid] = now
        return due

    def check_subscriptions(self, now: datetime, only: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Restore the webhook subscriptions a platform dropped or disabled (Shopify deletes those
        whose deliveries keep failing, WooCommerce disables them; reconciliation catches the
        orders meanwhile). Each due channel (or ``only``, due or not) is checked; what was
        re-created, re-enabled or refused replaces its row in the registrations, with the time.
        Returns the check's entries per channel (an ``{"error": ...}`` entry when the platform
        could not be asked)."""
        if self.registrations is None or not self.public_url:
            return {}
        channels = [only] if only is not None else self.subscriptions_due(now)
        results: dict[str, list[dict[str, Any]]] = {}
        for cid in channels:
            connector, settings = self.connectors[cid], self.settings[cid]
            self._checked[cid] = now
            try:
                entries: list[dict[str, Any]] = connector.check_webhooks(self.public_url)
            except ConnectorError as exc:
                log.warning("could not check the webhook subscriptions of %s (%s); will retry", cid, type(exc).__name__)
                results[cid] = [{"error": exc.detail}]
                continue
            changed = [e for e in entries if e.get("state") != "present"]
            rows = [
                Registration(cid, settings.kind, e["topic"], e["address"], e.get("provider_ref"), now, e.get("error"))
                for e in changed
            ]
            self.registrations.save(rows)
            for state in ("re-created", "re-enabled"):
                topics = [e["topic"] for e in entries if e.get("state") == state]
                if topics:
                    log.warning(
                        "%s had dropped or disabled our %s subscription(s) on channel %s: %s",
                        settings.kind,
                        ", ".join(topics),
                        cid,
                        state,
                    )
            refused = [e["topic"] for e in entries if e.get("state") == "failed"]
            if refused:
                log.error(
                    "%s subscription(s) %s of channel %s do not deliver and could not be restored; "
                    "see `backorder channels`",
                    settings.kind,
                    ", ".join(refused),
                    cid,
                )
            results[cid] = entries
        return results

    def webhook_only(self) -> dict[str, list[str]]:
        """Channels that receive webhooks but cannot call out yet, with what they lack (a channel
        without what its webhooks are verified against receives nothing: not listed)."""
        return {
            cid: s.missing_credentials()
            for cid, s in sorted(self.settings.items())
            if s.kind not in API_KINDS and s.missing_credentials() and can_verify_webhooks(s)
        }

    def record_registrations(
        self, channel: str, platform: str, done: list[dict[str, Any]], now: datetime, failure: str | None = None
    ) -> list[Registration]:
        """Keep what ``connector.register_webhooks`` reported (and, when it stopped on an error,
        that error for the topics it did not reach)."""
        rows = [
            Registration(channel, platform, d["topic"], d["address"], d.get("provider_ref"), now, d.get("error"))
            for d in done
        ]
        if failure is not None:
            reached = {d["topic"] for d in done}
            address = done[0]["address"] if done else ""
            rows += [
                Registration(channel, platform, topic, address, None, now, failure)
                for topic in WEBHOOK_TOPICS.get(platform, ())
                if topic not in reached
            ]
        if self.registrations is not None:
            self.registrations.save(rows)
        return rows

    def webhook_registrations(self, name: str) -> str | None:
        """What the dashboard's connectors page shows for a connector (``channels.<id>``): the
        webhook subscriptions `backorder connect` made, when, and any refusal."""
        if not name.startswith("channels."):
            return None
        channel = name.removeprefix("channels.")
        settings = self.settings.get(channel)
        if settings is None:
            return None
        if settings.kind in API_KINDS:
            return "none needed: orders come through POST /api/v1/orders"
        rows = self.registrations.for_channel(channel) if self.registrations is not None else []
        if not rows:
            if settings.kind in WEBHOOK_TOPICS:
                return f"not registered by `backorder connect {settings.kind} {channel}` yet"
            return "registered in the platform by its module/job (not by `backorder connect`)"
        return describe_registrations(rows)

    def api_channel_for_key(self, presented: str) -> str | None:
        import hmac

        match = None
        for cid, s in sorted(self.settings.items()):
            key = getattr(s, "api_key", None) if isinstance(s, ApiChannelSettings) else None
            if key is not None and hmac.compare_digest(key.get_secret_value().encode(), presented.encode()):
                match = cid
        return match


WEBHOOK_TOPICS: dict[str, tuple[str, ...]] = {
    "shopify": tuple(SHOPIFY_TOPICS),
    "woocommerce": tuple(WOO_TOPICS),
}
"""The topics `backorder connect` registers per platform (the connectors' own lists)."""


def describe_registrations(rows: Sequence[Registration]) -> str:
    ok = [r for r in rows if r.ok]
    latest = max(r.registered_at for r in rows)
    text = f"{len(ok)} of {len(rows)} topic(s) registered to {rows[0].address} ({latest:%Y-%m-%d %H:%M} UTC)"
    refused = [r for r in rows if not r.ok]
    if refused:
        text += "; refused: " + "; ".join(f"{r.topic}: {(r.error or '')[:120]}" for r in refused)
    return text


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
    processor = InboxProcessor(
        inbox,
        store,
        app.bus,
        receivers.get,
        app.config.channels.get,
        clock.now,
        metrics,
        lease=timedelta(seconds=app.config.worker.lease_seconds),
    )
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
        registrations=RegistrationStore(engine),
        connectors=dict(routes.channels),
        public_url=app.config.server.public_url,
    )
