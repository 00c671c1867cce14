"""The inbox processor: claim ``received`` rows, parse each with its channel's connector, apply
the commands through the bus, and record the outcome on the row.

Outcomes: ``processed`` (commands applied), ``ignored`` (nothing to do: a topic we do not act on,
an order update older than the one applied, an order we already hold), ``failed`` (the payload
could not be understood, or the domain refused it: the reason is kept and ``backorder inbox
reprocess ID`` runs it again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backorder.channels.api_orders import StandardWebhookReceiver, parse_order
from backorder.channels.metrics import IngressMetrics
from backorder.connectors.base import ConnectorSettings, ReceivesWebhooks
from backorder.connectors.errors import WebhookRejected
from backorder.domain import commands
from backorder.domain.errors import DomainError, DuplicateOrder, DuplicateShipment, UnknownOrder
from backorder.services.messagebus import MessageBus
from backorder.store.inbox import ChannelItem, ChannelStore, InboxRow, InboxStore

log = logging.getLogger(__name__)

API_KINDS = frozenset({"api", "pos", "b2b"})


@dataclass(frozen=True)
class Outcome:
    status: str  # processed | ignored | failed
    detail: str = ""
    version: tuple[str, str, datetime] | None = None
    """(external id, our order id, source version) to record as applied with the outcome."""


class InboxProcessor:
    def __init__(
        self,
        inbox: InboxStore,
        store: ChannelStore,
        bus: MessageBus,
        receivers: Callable[[str], Any],
        settings: Callable[[str], ConnectorSettings | None],
        now: Callable[[], datetime],
        metrics: IngressMetrics | None = None,
    ) -> None:
        self.inbox = inbox
        self.store = store
        self.bus = bus
        self.receivers = receivers
        self.settings = settings
        self.now = now
        self.metrics = metrics

    def run(self, limit: int = 100) -> int:
        """Process up to ``limit`` received rows; returns how many were handled."""
        rows = self.inbox.claim(self.now(), limit)
        for row in rows:
            self._finish(row, self.process(row))
        return len(rows)

    def drain(self, limit: int = 100, max_rounds: int = 1000) -> int:
        total = 0
        for _ in range(max_rounds):
            handled = self.run(limit)
            total += handled
            if handled == 0:
                break
        return total

    def process_id(self, row_id: int) -> Outcome | None:
        """Claim and process one row now (the order API answers with the result)."""
        row = self.inbox.claim_one(row_id, self.now())
        if row is None:
            return None
        outcome = self.process(row)
        self._finish(row, outcome)
        return outcome

    def _finish(self, row: InboxRow, outcome: Outcome) -> None:
        version = outcome.version if outcome.status != "failed" else None
        self.inbox.finish(
            row.id, outcome.status, outcome.detail or None, self.now(), (row.channel, *version) if version else None
        )
        if self.metrics is not None:
            self.metrics.processed.labels(row.platform, outcome.status).inc()

    # --- one row ---------------------------------------------------------------------------

    def process(self, row: InboxRow) -> Outcome:
        try:
            return self._process(row)
        except (WebhookRejected, DomainError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            return Outcome("failed", f"{type(exc).__name__}: {reason}")
        except Exception as exc:  # a bug: keep the row failed and visible, never lose it
            log.exception("inbox row %s failed unexpectedly", row.id)
            return Outcome("failed", f"unexpected error: {type(exc).__name__}: {exc}"[:1000])

    def _process(self, row: InboxRow) -> Outcome:
        settings = self.settings(row.channel)
        if settings is None or (
            settings.kind != row.platform and not (row.platform == "api" and settings.kind in API_KINDS)
        ):
            return Outcome("failed", f"channel {row.channel!r} is not configured as {row.platform} any more")
        if settings.kind in API_KINDS:
            if row.platform == "api":
                cmds: list[commands.Command] = [parse_order(row.channel, row.body, row.received_at)]
            else:
                receiver = self.receivers(row.channel)
                assert isinstance(receiver, StandardWebhookReceiver)
                cmds = receiver.parse(row.topic, row.headers, row.body, row.received_at)
            version = None
        else:
            connector = self.receivers(row.channel)
            if not isinstance(connector, ReceivesWebhooks):
                return Outcome("failed", f"channel {row.channel!r} has no connector that receives webhooks")
            refs = connector.item_refs(row.topic, row.body) if hasattr(connector, "item_refs") else []
            if refs:
                self.store.remember_items(
                    row.channel, [ChannelItem(r.sku, r.item_ref, r.variant_ref, r.parent_ref) for r in refs], self.now()
                )
            version = connector.order_version(row.topic, row.body) if hasattr(connector, "order_version") else None
            if version is not None:
                applied = self.store.order_version(row.channel, version[0])
                if applied is not None and version[2] <= applied:
                    return Outcome(
                        "ignored",
                        f"order {version[0]} version {version[2].isoformat()} is not newer than "
                        f"the applied {applied.isoformat()}",
                    )
            # An order from a platform is the platform's current view of it: new orders are
            # placed, edits to one we hold are applied as the difference to the view last applied.
            cmds = [
                commands.ChannelOrder(cmd, reason=f"changed on {settings.kind}")
                if isinstance(cmd, commands.PlaceOrder)
                else cmd
                for cmd in connector.parse(row.topic, row.headers, row.body)
            ]
        if not cmds:
            return Outcome("ignored", f"nothing to do for {row.topic or 'this event'}", version)
        notes = [self._apply(cmd) for cmd in cmds]
        applied_any = any(n is None for n in notes)
        detail = "; ".join(n for n in notes if n)
        return Outcome("processed" if applied_any else "ignored", detail, version)

    def _apply(self, cmd: commands.Command, retry: bool = True) -> str | None:
        """Apply one command; None when applied, else why it changed nothing (harmless cases).
        Anything else the domain refuses is raised (the row fails, with the reason)."""
        try:
            changed = self.bus.handle(cmd)
        except DuplicateOrder as exc:
            if retry and isinstance(cmd, commands.ChannelOrder):
                return self._apply(cmd, retry=False)  # placed by another row meanwhile: now an edit
            return f"order {exc.order_id} is already recorded"
        except DuplicateShipment as exc:
            return f"shipment {exc.shipment_ref} of order {exc.order_id} is already recorded"
        except UnknownOrder as exc:
            if isinstance(cmd, (commands.CancelOrder, commands.ShipSku)):
                return f"order {exc.order_id} is not one we hold"
            raise
        if isinstance(cmd, commands.ChannelOrder) and not changed:
            return f"order {cmd.order.order_id} is already recorded as the channel shows it"
        return None
