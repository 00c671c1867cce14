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
from datetime import datetime, timedelta
from typing import Any

from backorder.channels.api_orders import StandardWebhookReceiver, parse_order
from backorder.channels.metrics import IngressMetrics
from backorder.connectors.base import ConnectorSettings, ReceivesWebhooks
from backorder.connectors.errors import WebhookRejected
from backorder.domain import commands
from backorder.domain.errors import DomainError, DuplicateOrder, DuplicateShipment, NothingLeftToShip, UnknownOrder
from backorder.services.messagebus import BatchItemFailed, MessageBus
from backorder.store.engine import is_unavailable
from backorder.store.inbox import ChannelItem, ChannelStore, InboxRow, InboxStore

log = logging.getLogger(__name__)

API_KINDS = frozenset({"api", "pos", "b2b"})


@dataclass(frozen=True)
class Outcome:
    status: str  # processed | ignored | failed
    detail: str = ""
    version: tuple[str, str, datetime] | None = None
    """(external id, our order id, source version) to record as applied with the outcome."""


@dataclass
class _Plan:
    """A row parsed into commands, ready to apply."""

    row: InboxRow
    cmds: list[commands.Command]
    version: tuple[str, str, datetime] | None
    orders: frozenset[str]
    """Our order ids the commands name (a group holds each order at most once)."""
    batchable: bool
    """Only orders (ChannelOrder / PlaceOrder): applied with other rows in one transaction."""


class InboxProcessor:
    """Rows are claimed in batches; the order rows of a batch (the bulk of the traffic) are
    applied in groups of up to ``batch_size`` rows, ONE bus transaction each (an ImportBatch).
    If a command of a group fails, the rows before it are applied as a group again, the failing
    row alone (so it is marked failed with its reason, or its harmless case is recognised), and
    the rest as a group: one bad payload never holds back or loses the others. Every other row
    (cancellations, shipments, stock, privacy) is applied alone, in arrival order. The outcomes of
    the rows are recorded in one transaction per group."""

    def __init__(
        self,
        inbox: InboxStore,
        store: ChannelStore,
        bus: MessageBus,
        receivers: Callable[[str], Any],
        settings: Callable[[str], ConnectorSettings | None],
        now: Callable[[], datetime],
        metrics: IngressMetrics | None = None,
        batch_size: int = 20,
        lease: timedelta = timedelta(minutes=5),
    ) -> None:
        self.inbox = inbox
        self.store = store
        self.bus = bus
        self.receivers = receivers
        self.settings = settings
        self.now = now
        self.metrics = metrics
        self.batch_size = max(1, batch_size)
        self.lease = lease  # a claimed row left unfinished (a worker killed, the store away) is claimed again after it

    def run(self, limit: int = 100) -> int:
        """Process up to ``limit`` received rows; returns how many were handled."""
        rows = self.inbox.claim(self.now(), limit, self.lease)
        if rows:
            self._process_rows(rows)
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
        row = self.inbox.claim_one(row_id, self.now(), self.lease)
        if row is None:
            return None
        outcome = self.process(row)
        self._finish([(row, outcome)])
        return outcome

    def _finish(self, done: list[tuple[InboxRow, Outcome]]) -> None:
        if not done:
            return
        self.inbox.finish_many(
            [
                (
                    row.id,
                    outcome.status,
                    outcome.detail or None,
                    (row.channel, *outcome.version) if outcome.version and outcome.status != "failed" else None,
                )
                for row, outcome in done
            ],
            self.now(),
        )
        if self.metrics is not None:
            for row, outcome in done:
                self.metrics.processed.labels(row.platform, outcome.status).inc()

    # --- a claimed batch ---------------------------------------------------------------------

    def _process_rows(self, rows: list[InboxRow]) -> None:
        done: list[tuple[InboxRow, Outcome]] = []
        group: list[_Plan] = []
        grouped: set[str] = set()  # the order ids in the group
        applied = self._applied_versions(rows)  # read once for the batch, kept current below

        def flush() -> None:
            done.extend(self._apply_group(group))
            group.clear()
            grouped.clear()
            self._finish(done)
            for row, outcome in done:
                if outcome.version is not None and outcome.status != "failed":
                    key, version = (row.channel, outcome.version[0]), outcome.version[2]
                    current = applied.get(key)
                    if current is None or version > current:  # as advance_order_version records it
                        applied[key] = version
            done.clear()

        def before_check(order_id: str) -> None:
            if order_id in grouped:  # compare with the version its pending rows would record
                flush()

        for row in rows:
            try:
                plan = self._plan(row, before_check, applied)
            except Exception as exc:
                plan = _failure(row, exc)
            if isinstance(plan, Outcome):
                done.append((row, plan))
                if plan.version is not None:  # a later row of that order must see it recorded
                    flush()
            elif plan.batchable:
                if len(group) >= self.batch_size or plan.orders & grouped:
                    flush()
                group.append(plan)
                grouped.update(plan.orders)
            else:
                flush()  # in arrival order: the rows grouped before this one are applied first
                done.append((row, self._apply_alone(plan)))
                flush()
        flush()

    def _applied_versions(self, rows: list[InboxRow]) -> dict[tuple[str, str], datetime | None]:
        """The applied version of every order the rows name (None: none applied yet), read in
        one query per channel rather than one per row."""
        wanted: dict[str, set[str]] = {}
        for row in rows:
            connector = self.receivers(row.channel)
            if not hasattr(connector, "order_version"):
                continue
            try:
                version = connector.order_version(row.topic, row.body)
            except Exception:  # unreadable: the row fails in _plan, with its reason
                continue
            if version is not None:
                wanted.setdefault(row.channel, set()).add(version[0])
        applied: dict[tuple[str, str], datetime | None] = {}
        for channel, external_ids in wanted.items():
            found = self.store.order_versions(channel, sorted(external_ids))
            applied.update({(channel, ext): found.get(ext) for ext in external_ids})
        return applied

    def _apply_group(self, group: list[_Plan]) -> list[tuple[InboxRow, Outcome]]:
        if not group:
            return []
        if len(group) == 1:
            return [(group[0].row, self._apply_alone(group[0]))]
        views = self.store.order_views(
            [c.order.order_id for p in group for c in p.cmds if isinstance(c, commands.ChannelOrder)]
        )
        flat = [cmd for p in group for cmd in p.cmds]
        try:
            self.bus.handle(commands.ImportBatch(tuple(flat)))
        except BatchItemFailed as exc:
            failing, seen = 0, 0
            for failing, p in enumerate(group):  # noqa: B007 - the index of the row that failed
                seen += len(p.cmds)
                if exc.index < seen:
                    break
            return [
                *self._apply_group(group[:failing]),
                (group[failing].row, self._apply_alone(group[failing])),
                *self._apply_group(group[failing + 1 :]),
            ]
        except Exception:  # not the domain's refusal (a store error, a bug): isolate row by row
            log.warning("a group of %d inbox rows failed; applying them one by one", len(group), exc_info=True)
            return [(p.row, self._apply_alone(p)) for p in group]
        return [(p.row, self._grouped_outcome(p, views)) for p in group]

    def _grouped_outcome(self, plan: _Plan, views: dict[str, dict[str, int] | None]) -> Outcome:
        """What applying the row in a group did, judged as :meth:`_apply` judges it alone: a
        ChannelOrder changes nothing when the order is held and the channel's view is unchanged
        (or was never kept)."""
        notes: list[str | None] = []
        for cmd in plan.cmds:
            if isinstance(cmd, commands.ChannelOrder):
                order_id = cmd.order.order_id
                if order_id in views and views[order_id] in (None, _units(cmd.order)):
                    notes.append(f"order {order_id} is already recorded as the channel shows it")
                    continue
            notes.append(None)
        applied_any = any(n is None for n in notes)
        return Outcome("processed" if applied_any else "ignored", "; ".join(n for n in notes if n), plan.version)

    def _apply_alone(self, plan: _Plan) -> Outcome:
        try:
            notes = [self._apply(cmd) for cmd in plan.cmds]
        except Exception as exc:
            return _failure(plan.row, exc)
        applied_any = any(n is None for n in notes)
        detail = "; ".join(n for n in notes if n)
        return Outcome("processed" if applied_any else "ignored", detail, plan.version)

    # --- one row ---------------------------------------------------------------------------

    def process(self, row: InboxRow) -> Outcome:
        """Parse and apply one row on its own (its outcome is not recorded here)."""
        try:
            plan = self._plan(row)
        except Exception as exc:
            return _failure(row, exc)
        return plan if isinstance(plan, Outcome) else self._apply_alone(plan)

    def _plan(
        self,
        row: InboxRow,
        before_check: Callable[[str], object] | None = None,
        applied_versions: dict[tuple[str, str], datetime | None] | None = None,
    ) -> Outcome | _Plan:
        """The row's commands, or its outcome when there is nothing to apply. ``before_check``
        is told the order id of a versioned row before its version is compared with the applied
        one (the batch loop applies pending rows of that order first); ``applied_versions`` holds
        the applied versions the batch loop has read already."""
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
                if before_check is not None:
                    before_check(version[1])
                key = (row.channel, version[0])
                if applied_versions is not None and key in applied_versions:
                    applied = applied_versions[key]
                else:
                    applied = self.store.order_version(row.channel, version[0])
                if applied is not None and version[2] <= applied:
                    return Outcome(
                        "ignored",
                        f"order {version[0]} version {version[2].isoformat()} is not newer than "
                        f"the applied {applied.isoformat()}",
                    )
            # What the event itself lacks (WooCommerce refunds' line items), read from the
            # platform by the connector after the version check; parse stays pure.
            enrich = getattr(connector, "enrich", None)
            body = enrich(row.topic, row.body) if enrich is not None else row.body
            # An order from a platform is the platform's current view of it: new orders are
            # placed, edits to one we hold are applied as the difference to the view last applied.
            cmds = [
                commands.ChannelOrder(cmd, reason=f"changed on {settings.kind}")
                if isinstance(cmd, commands.PlaceOrder)
                else cmd
                for cmd in connector.parse(row.topic, row.headers, body)
            ]
        if not cmds:
            return Outcome("ignored", f"nothing to do for {row.topic or 'this event'}", version)
        orders = frozenset(_order_id(cmd) for cmd in cmds) - {""}
        batchable = all(isinstance(cmd, (commands.ChannelOrder, commands.PlaceOrder)) for cmd in cmds)
        return _Plan(row, cmds, version, orders | ({version[1]} if version else frozenset()), batchable)

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
        except NothingLeftToShip as exc:  # e.g. staff shipped it before the platform said so
            return str(exc)
        except UnknownOrder as exc:
            if isinstance(cmd, (commands.CancelOrder, commands.ShipSku)):
                return f"order {exc.order_id} is not one we hold"
            raise
        if isinstance(cmd, commands.ChannelOrder) and not changed:
            return f"order {cmd.order.order_id} is already recorded as the channel shows it"
        return None


def _failure(row: InboxRow, exc: Exception) -> Outcome:
    """The outcome of a row that could not be applied. The store being away is no outcome: it is
    raised, and the row, still claimed, is processed again when its lease ends."""
    if is_unavailable(exc):
        raise exc
    if isinstance(exc, (WebhookRejected, DomainError)):
        reason = getattr(exc, "reason", None) or str(exc)
        return Outcome("failed", f"{type(exc).__name__}: {reason}")
    # a bug: keep the row failed and visible, never lose it (the traceback is in the log)
    log.error("inbox row %s failed unexpectedly", row.id, exc_info=exc)
    return Outcome("failed", f"unexpected error: {type(exc).__name__}: {_first_line(exc)}"[:1000])


_STATEMENT_PARTS = ("[SQL:", "[parameters:", "(Background on this error")


def _first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, without what SQLAlchemy appends to it (the SQL
    statement, its parameters, a link): the reason is shown to API clients and staff, and the
    parameters may hold a customer's personal data."""
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    for part in _STATEMENT_PARTS:
        text = text.split(part, 1)[0].rstrip()
    return text or "(no message)"


def _order_id(cmd: commands.Command) -> str:
    if isinstance(cmd, commands.ChannelOrder):
        return cmd.order.order_id
    return str(getattr(cmd, "order_id", "") or "")


def _units(order: commands.PlaceOrder) -> dict[str, int]:
    units: dict[str, int] = {}
    for line in order.lines:
        units[line.sku] = units.get(line.sku, 0) + line.quantity
    return units
