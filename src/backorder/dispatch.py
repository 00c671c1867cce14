"""The outbox dispatcher: claim due rows, route each to its connector, record the attempt,
and decide: sent, retry later (full-jitter backoff, ``Retry-After`` honoured), or dead letter.

Fan-out actions (``notify_customer``, ``push_stock``) become child rows, one per recipient
channel or sales channel, so each delivery retries and dead-letters on its own.

A claimed batch is delivered on up to ``threads`` threads at once (a send mostly waits on the
provider), in lanes: the deliveries of one order share a lane and go one after another in claim
order (across workers too: see ``_behind_another_claim``; a retry's back-off can still let a later
one go first); other deliveries share a
lane per target.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from backorder.connectors.base import (
    Connector,
    DeliveryReceipt,
    NotifiesCustomers,
    NotifiesStaff,
    OrderTag,
    OutboundMessage,
    PlacesPurchaseOrders,
    PoDocumentLine,
    PurchaseOrderDocument,
    StaffMessage,
    StockUpdate,
    SyncsStock,
    TagsOrders,
)
from backorder.connectors.errors import ConnectorError, FatalError, RetryableError
from backorder.connectors.http import RateLimiter, full_jitter_delay
from backorder.notify.debounce import decide
from backorder.notify.links import LinkSigner
from backorder.notify.preferences import Recipients, has_sms_consent, resolve
from backorder.notify.render import Renderer
from backorder.notify.state import MessagingState
from backorder.services.ports import Clock
from backorder.store import tables as t
from backorder.store.outbox import AttemptOutcome, ClaimedDelivery, OutboxQueue
from backorder.store.readmodels import ReadModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_seconds: float = 5.0
    cap_seconds: float = 3600.0


@dataclass
class Routes:
    """Configured connectors by role; ``channels`` by channel id."""

    email: Connector | None = None
    sms: Connector | None = None
    staff: Connector | None = None
    purchasing: Connector | None = None
    channels: dict[str, Connector] = field(default_factory=dict)
    channel_settings: dict[str, Any] = field(default_factory=dict)


REVOCATION_SLOT = timedelta(minutes=1)
"""How long an order's ETA slot holds against a reservation taken back (``Dispatcher._do_notify_customer``)."""


@dataclass
class MessagingOptions:
    """Consent, suppression, debounce and link signing (issue 4). Without it the dispatcher
    sends as before: email when the order has an address, else SMS."""

    state: MessagingState
    signer: LinkSigner
    eta_min_change_days: int = 2
    eta_interval: timedelta = timedelta(hours=24)
    sms_consent_from_order: bool = False
    digest_hour: int | None = 8


_ROLE_OF_ACTION = {
    "send_email": "email",
    "send_sms": "sms",
    "send_sms_confirmation": "sms",
    "notify_staff": "staff",
    "send_purchase_order": "purchasing",
}
_CHANNEL_ACTIONS = frozenset({"push_stock_channel", "push_stock_batch", "tag_order"})
_CUSTOMER_ACTIONS = frozenset({"notify_customer", "send_email", "send_sms"})
EARLIER_MESSAGE_WAIT_SECONDS = 5.0
"""How long a customer message waits for an earlier one of its order that another worker holds."""


def lane_of(delivery: ClaimedDelivery) -> str:
    """Deliveries in one lane keep their claim order: an order's messages, else a target's."""
    order_id = delivery.payload.get("order_id")
    return f"order:{order_id}" if order_id else f"target:{delivery.target}"


class Skip(Exception):
    """Nothing to deliver (no recipient, no capable connector): recorded as skipped."""


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0
    deferred: int = 0
    lost_claims: int = 0

    def add(self, outcome: str) -> None:
        name = _STAT_FOR_OUTCOME[outcome]
        setattr(self, name, getattr(self, name) + 1)

    def merge(self, other: DispatchStats) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


_STAT_FOR_OUTCOME = {
    "sent": "sent",
    "retry": "retried",
    "dead": "dead",
    "skipped": "skipped",
    "deferred": "deferred",
    "lost": "lost_claims",
}


class Dispatcher:
    def __init__(
        self,
        queue: OutboxQueue,
        read: ReadModel,
        routes: Routes,
        renderer: Renderer,
        clock: Clock,
        retry: RetryPolicy,
        *,
        lease: timedelta = timedelta(minutes=2),
        rng: random.Random | None = None,
        limiters: Mapping[str, RateLimiter] | None = None,
        choices_url: Callable[[str], str | None] | None = None,
        messaging: MessagingOptions | None = None,
        threads: int = 1,
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.messaging = messaging
        self.queue = queue
        self.read = read
        self.routes = routes
        self.renderer = renderer
        self.clock = clock
        self.retry = retry
        self.lease = lease
        self.rng = rng or random.Random()
        self.limiters = dict(limiters or {})
        self.choices_url = choices_url or (lambda order_id: None)
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        self._lock = threading.Lock()  # the pool and the limiters are made on first use
        self._rest = _ProviderRest(retry)

    def run_once(self, limit: int = 50, worker: str | None = None) -> DispatchStats:
        claimed = self.queue.claim(self.clock.now(), limit, self.lease, worker)
        stats = DispatchStats(claimed=len(claimed))
        if not claimed:
            return stats
        waiting = self._behind_another_claim(claimed)
        if waiting:
            now = self.clock.now()
            later = AttemptOutcome(
                "deferred",
                "an earlier message of this order is not sent yet",
                next_attempt_at=now + timedelta(seconds=EARLIER_MESSAGE_WAIT_SECONDS),
            )
            for delivery in waiting:
                stats.add("deferred" if self.queue.finish(delivery, later, delivery.target, now, now) else "lost")
            held_back = {d.id for d in waiting}
            claimed = [d for d in claimed if d.id not in held_back]
        keeper = None
        if any(self._waits_on_provider(d) for d in claimed):  # only a provider can keep a round waiting
            keeper = _LeaseKeeper(self.queue, claimed, self.clock, self.lease)
        with keeper or contextlib.nullcontext():
            for outcome in self._deliver_all(claimed, keeper):
                stats.add(outcome)
        return stats

    def _deliver_all(self, claimed: Sequence[ClaimedDelivery], keeper: _LeaseKeeper | None = None) -> list[str]:
        """Lanes that wait on a provider run on the pool; the rest (fan-outs, the sandbox) here,
        meanwhile, one after another: threads are for waiting, not for taking the CPU."""
        if self.threads == 1:
            return self._deliver_lane(claimed, keeper)
        lanes: dict[str, list[ClaimedDelivery]] = {}
        for delivery in claimed:
            lanes.setdefault(lane_of(delivery), []).append(delivery)
        waiting: list[list[ClaimedDelivery]] = []
        local: list[ClaimedDelivery] = []
        for lane in lanes.values():
            if any(self._waits_on_provider(d) for d in lane):
                waiting.append(lane)
            else:
                local.extend(lane)
        pool = self._executor()
        if len(waiting) < 2 or pool is None:
            return self._deliver_lane(claimed, keeper)
        futures = []
        for i, lane in enumerate(waiting):
            try:
                futures.append(pool.submit(self._deliver_lane, lane, keeper))
            except RuntimeError:  # closed meanwhile (shutting down): the other lanes here
                local.extend(d for rest in waiting[i:] for d in rest)
                break
        try:
            here = self._deliver_lane(local, keeper)
        finally:
            wait_all(futures)  # every lane finishes (or fails) before a failure is raised
        return here + [outcome for future in futures for outcome in future.result()]

    def _waits_on_provider(self, delivery: ClaimedDelivery) -> bool:
        """Whether the delivery will call a provider (one without credentials is only deferred)."""
        connector = self._route(delivery)
        return connector is not None and not connector.local and not connector.settings.missing_credentials()

    def _route(self, delivery: ClaimedDelivery) -> Connector | None:
        """The connector a delivery goes to; None for the fan-outs, which are done here."""
        role = _ROLE_OF_ACTION.get(delivery.action)
        if role is not None:
            connector: Connector | None = getattr(self.routes, role)
            return connector
        if delivery.action in _CHANNEL_ACTIONS:
            return self.routes.channels.get(str(delivery.payload.get("channel", "")))
        return None

    def _deliver_lane(self, lane: Sequence[ClaimedDelivery], keeper: _LeaseKeeper | None = None) -> list[str]:
        """One after another; an error (the store failing) leaves the rest of the lane to be
        claimed again when its lease runs out, as it leaves the rest of a batch. A row whose
        claim was lost (another worker has it now) is left to that worker."""
        outcomes = []
        for delivery in lane:
            if keeper is not None and not keeper.holds(delivery.id):
                log.warning("outbox %s: claim lost before delivery (lease expired); left to its new claim", delivery.id)
                outcomes.append("lost")
            else:
                outcomes.append(self.deliver(delivery))
        return outcomes

    def _executor(self) -> ThreadPoolExecutor | None:
        """The delivery threads; None once closed (a round still under way finishes on its own
        thread)."""
        with self._lock:
            if self._pool is None and not self._closed:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="backorder-deliver")
            return self._pool

    def close(self) -> None:
        """Stop the delivery threads (after the deliveries under way)."""
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None:
            pool.shutdown(wait=True)

    def drain(self, limit: int = 50, max_rounds: int = 10_000) -> DispatchStats:
        """Dispatch until nothing is due now (for the demo, tests and `outbox flush`)."""
        total = DispatchStats()
        for _ in range(max_rounds):
            stats = self.run_once(limit)
            if stats.claimed == 0:
                break
            total.merge(stats)
        return total

    # --- one delivery -----------------------------------------------------------------------

    def deliver(self, delivery: ClaimedDelivery) -> str:
        started = self.clock.now()
        connector_name = delivery.target
        children: list[tuple[str, str, dict[str, Any]]] = []
        provider = _provider_key(delivery)
        try:
            resting_until = self._rest.until(provider, started) if provider is not None else None
            if resting_until is not None:
                raise _Deferred(
                    (resting_until - started).total_seconds(), f"the {provider} provider is failing; resting"
                )
            handler = getattr(self, f"_do_{delivery.action}", None)
            if handler is None:
                raise _Fatal(f"unknown action {delivery.action!r}")
            result = handler(delivery)
            if isinstance(result, _FanOut):
                children = result.children
                outcome = AttemptOutcome("sent" if children else "skipped", result.detail)
            else:
                connector_name, receipt = result
                outcome = AttemptOutcome("sent", receipt.detail, provider_ref=receipt.provider_ref)
        except _Deferred as wait:
            outcome = AttemptOutcome("deferred", wait.reason, next_attempt_at=started + timedelta(seconds=wait.seconds))
        except Skip as skip:
            outcome = AttemptOutcome("skipped", str(skip))
        except RetryableError as exc:
            outcome = self._retry_or_dead(delivery, exc.detail, exc.retry_after, exc.status_code, started)
            if provider is not None:
                until, failures = self._rest.failed(provider, self.clock.now(), exc.retry_after)
                if outcome.next_attempt_at is not None and outcome.next_attempt_at < until:
                    outcome = dataclasses.replace(outcome, next_attempt_at=until)  # it is the probe then
                log.warning(
                    "the %s provider failed (%s in a row): its deliveries wait until %s",
                    provider,
                    failures,
                    until.isoformat(timespec="seconds"),
                )
        except (FatalError, _Fatal) as exc:
            detail = exc.detail if isinstance(exc, ConnectorError) else str(exc)
            outcome = AttemptOutcome("dead", detail, getattr(exc, "status_code", None))
        except Exception as exc:  # a bug or an unexpected library error: retry, then dead-letter
            log.exception("delivery %s (%s) failed unexpectedly", delivery.id, delivery.action)
            detail = (
                f"unexpected error: {type(exc).__name__}: {exc}"[:500] + "\n" + traceback.format_exc(limit=3)[-1500:]
            )
            outcome = self._retry_or_dead(delivery, detail, None, None, started)
        finished = self.clock.now()
        if provider is not None and outcome.outcome == "sent":
            self._rest.succeeded(provider)
        if not self.queue.finish(delivery, outcome, connector_name, started, finished, children):
            log.warning("outbox %s: claim lost before completion (lease expired); result discarded", delivery.id)
            return "lost"
        # Logs carry no provider answer: it may quote the customer (names cannot be redacted by
        # pattern). The full answer is kept with the attempt, for staff, in the database.
        status = f"HTTP {outcome.status_code}" if outcome.status_code else "no HTTP status"
        if outcome.outcome == "dead":
            log.warning(
                "outbox %s (%s to %s) dead-lettered after attempt %s (%s); see `backorder outbox list --status dead`",
                delivery.id,
                delivery.action,
                delivery.target,
                delivery.attempt,
                status,
            )
            if delivery.action != "notify_staff":
                self._announce_dead_letter(delivery, outcome.detail, finished)
        elif outcome.outcome == "retry":
            log.info(
                "outbox %s (%s) attempt %s failed (%s); next at %s",
                delivery.id,
                delivery.action,
                delivery.attempt,
                status,
                outcome.next_attempt_at,
            )
        return outcome.outcome

    def _behind_another_claim(self, claimed: Sequence[ClaimedDelivery]) -> list[ClaimedDelivery]:
        """The claimed customer messages of an order whose earlier message is still to go outside
        this claim (another worker holds it, or it is due and was not claimed with these): they
        wait, so one order's messages go in the order they were written across workers too
        (within a claim, lanes keep that order)."""
        first = self.queue.first_unsent_elsewhere(claimed, sorted(_CUSTOMER_ACTIONS), self.clock.now())
        return [
            d
            for d in claimed
            if d.action in _CUSTOMER_ACTIONS and first.get(str(d.payload.get("order_id")), d.id) < d.id
        ]

    def _retry_or_dead(
        self, delivery: ClaimedDelivery, detail: str, retry_after: float | None, status: int | None, now: datetime
    ) -> AttemptOutcome:
        if delivery.attempt >= self.retry.max_attempts:
            return AttemptOutcome("dead", f"gave up after {delivery.attempt} attempts: {detail}", status)
        delay = full_jitter_delay(delivery.attempt - 1, self.retry.base_seconds, self.retry.cap_seconds, self.rng)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return AttemptOutcome("retry", detail, status, next_attempt_at=now + timedelta(seconds=delay))

    def _announce_dead_letter(self, delivery: ClaimedDelivery, detail: str, now: datetime) -> None:
        if self.routes.staff is None:
            return
        self.queue.enqueue(
            "notify_staff",
            "staff",
            {
                "event": "DeadLetter",
                "outbox_id": delivery.id,
                "action": delivery.action,
                "target": delivery.target,
                "error": detail[:500],
            },
            now,
        )

    def _limit(self, connector: Connector, payload: Mapping[str, Any]) -> None:
        key = connector.rate_limit_key(payload)
        if key is None or connector.rate_per_second <= 0:
            return
        with self._lock:
            limiter = self.limiters.get(connector.name)
            if limiter is None:
                limiter = self.limiters[connector.name] = RateLimiter(connector.rate_per_second)
        wait = limiter.reserve(key)
        if wait > 0:
            raise _Deferred(wait)

    # --- actions ----------------------------------------------------------------------------

    def _do_notify_customer(self, d: ClaimedDelivery) -> _FanOut:
        contact = self.read.contact(d.payload["order_id"])
        if contact is None:
            raise Skip(f"order {d.payload['order_id']} no longer exists")
        m = self.messaging
        if m is None:
            children = []
            if contact.email and self.routes.email is not None:
                children.append(("send_email", "email", d.payload))
            elif contact.phone and self.routes.sms is not None:
                children.append(("send_sms", "sms", d.payload))
            if not children:
                raise Skip("no email address or phone number on the order, or no provider configured for them")
            return _FanOut(children, f"to {', '.join(c[1] for c in children)}")
        payload = dict(d.payload)
        if payload["event"] == "BackorderEtaChanged":
            etas, waiting = self._line_etas(contact.order_id)
            decision = decide(
                payload.get("changes", []),
                m.state.eta_notices(contact.order_id),
                etas,
                self.clock.now(),
                min_days=m.eta_min_change_days,
                interval=m.eta_interval,
                waiting=waiting,
            )
            if not decision.send and decision.wait_until is not None:
                raise _Deferred(max(1.0, (decision.wait_until - self.clock.now()).total_seconds()))
            if not decision.send:
                raise Skip(decision.reason)
            payload["changes"] = list(decision.changes)
        recipients = self._recipients(contact, m)
        children = []
        if recipients.email:
            children.append(("send_email", "email", payload))
        if recipients.phone:
            children.append(("send_sms", "sms", payload))
        if not children:
            raise Skip(recipients.reason or "no channel to reach the customer")
        if payload["event"] == "BackorderEtaChanged":
            # Two ETA messages for one order decided at once (two workers, or both before either
            # was sent) must not both go out: one claims the order's slot, the other waits for
            # the end of that interval and is decided again against what was told by then.
            # A reservation taken back is told now: it takes a slot held longer than a minute
            # (an earlier ETA message), and still holds it against the next ETA message. A slot
            # taken within the minute is another worker's message about the same order, maybe
            # this same news: this one waits and is decided again against what was told.
            now = self.clock.now()
            revoked = any(change.get("was_reserved") for change in payload.get("changes", []))
            interval = REVOCATION_SLOT if revoked else m.eta_interval
            held_until = m.state.claim_eta_slot(contact.order_id, d.id, now, interval)
            if held_until is not None:
                raise _Deferred(max(1.0, (held_until - now).total_seconds()))
        return _FanOut(children, f"to {', '.join(c[1] for c in children)}")

    def _recipients(self, contact: Any, m: MessagingOptions) -> Recipients:
        """Where a customer message about this order can go now: preference, consent, suppressions
        and the providers configured."""
        suppressed = {a for a in (contact.email, contact.phone) if a and m.state.is_suppressed(a)}
        return resolve(
            m.state.preference(contact.order_id),
            contact.email if self.routes.email is not None else None,
            contact.phone if self.routes.sms is not None else None,
            consent_from_order=m.sms_consent_from_order,
            suppressed=suppressed,
        )

    def _unreachable(self, payload: Mapping[str, Any]) -> str:
        """For staff, about a new backorder: why its customer will hear nothing from us ("" when
        they will), so someone calls them. No address or number goes into the staff channel."""
        m = self.messaging
        if m is None or (self.routes.email is None and self.routes.sms is None):
            return ""  # no customer messaging set up at all: not this order's doing
        contact = self.read.contact(payload["order_id"]) if "order_id" in payload else None
        if contact is None:
            return ""
        recipients = self._recipients(contact, m)
        if recipients.email or recipients.phone:
            return ""
        return f"The customer will not be told by email or SMS ({recipients.reason}): contact them another way."

    def _line_etas(self, order_id: str) -> tuple[dict[int, Any], frozenset[int]]:
        """The order's lines' ETAs now, and the lines that wait now."""
        lines = t.order_lines.c
        with self.read.engine.connect() as conn:
            rows = conn.execute(
                select(lines.line_no, lines.eta, lines.status, lines.backordered).where(lines.order_id == order_id)
            ).all()
        waiting = frozenset(int(r.line_no) for r in rows if r.status == "open" and r.backordered > 0)
        return {int(r.line_no): r.eta for r in rows}, waiting

    def _after_customer_send(
        self, d: ClaimedDelivery, channel: str, connector: Connector, receipt: DeliveryReceipt
    ) -> None:
        m = self.messaging
        if m is None:
            return
        now = self.clock.now()
        m.state.record_sent(f"bo-{d.id}", d.id, channel, connector.name, receipt.provider_ref, now)
        event = d.payload.get("event")
        if event == "BackorderCreated":
            etas = {int(x["line_no"]): _date(x.get("eta")) for x in d.payload.get("lines", [])}
            m.state.record_eta_notices(d.payload["order_id"], etas, now)
        elif event == "BackorderEtaChanged":
            etas = {int(x["line_no"]): _date(x.get("current")) for x in d.payload.get("changes", [])}
            m.state.record_eta_notices(d.payload["order_id"], etas, now)
        elif event == "BackorderAllocated":  # told "reserved for you" of the lines now covered
            covered = {int(x["line_no"]): None for x in d.payload.get("lines", []) if not x.get("still_backordered")}
            if d.payload.get("ready_to_ship"):  # "everything is reserved": every line of the order
                covered |= dict.fromkeys(self._line_etas(d.payload["order_id"])[0])
            if covered:
                m.state.record_eta_notices(d.payload["order_id"], covered, now, reserved=True)

    def _customer_context(self, payload: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
        contact = self.read.contact(payload["order_id"])
        if contact is None:
            raise Skip(f"order {payload['order_id']} no longer exists")
        names = self.read.sku_names(_skus_in(payload))
        enriched = _with_names(dict(payload), names)
        # What the message may claim about the order, read now (it may have changed since the
        # event): anything reserved, and the choices the self-service page will really offer.
        facts = self.read.customer_facts(payload["order_id"]) or {}
        extra = {
            "order_ref": contact.order_ref,
            "customer_name": contact.name,
            "choices_url": self.choices_url(payload["order_id"]),
            "unsubscribe_url": None,
            **facts,  # the Renderer's CUSTOMER_FACTS stand for any it lacks
        }
        return {**enriched, **extra}, contact

    def _do_send_email(self, d: ClaimedDelivery) -> tuple[str, DeliveryReceipt]:
        connector = _require(self.routes.email, NotifiesCustomers, "email")
        context, contact = self._customer_context(d.payload)
        if not contact.email:
            raise Skip("the order has no email address")
        headers: dict[str, str] = {}
        m = self.messaging
        if m is not None:
            if m.state.is_suppressed(contact.email):
                raise Skip("the email address is suppressed (unsubscribed, bounced or complained)")
            preference = m.state.preference(contact.order_id)
            if preference is not None and preference.channel not in ("email", "both"):
                raise Skip(f"the customer chose {preference.channel} messages")
            headers = m.signer.headers(contact.email, contact.order_id)
            context["unsubscribe_url"] = m.signer.unsubscribe_url(contact.email, contact.order_id)
        template = self.renderer.customer_template(d.payload)
        rendered = self.renderer.email(template, context)
        self._limit(connector, {"to": contact.email})
        message = OutboundMessage(
            f"bo-{d.id}", "email", contact.email, rendered.subject, rendered.text, rendered.html, template, headers
        )
        receipt = connector.send_message(message)
        self._after_customer_send(d, "email", connector, receipt)
        return connector.name, receipt

    def _do_send_sms(self, d: ClaimedDelivery) -> tuple[str, DeliveryReceipt]:
        if d.payload.get("fallback") and self.routes.sms is not None:
            missing = self.routes.sms.settings.missing_credentials()
            if missing:
                # A fallback is worth sending now or not at all: waiting for credentials that may
                # never come would keep it pending forever. Skipped, with the reason, in the outbox.
                raise Skip(
                    f"SMS fallback for bounced email {d.payload['fallback']} not sent: the SMS provider "
                    f"({self.routes.sms.name}) has no credentials (missing: {', '.join(missing)})"
                )
        connector = _require(self.routes.sms, NotifiesCustomers, "sms")
        context, contact = self._customer_context(d.payload)
        if not contact.phone:
            raise Skip("the order has no phone number")
        m = self.messaging
        if m is not None:
            if m.state.is_suppressed(contact.phone):
                raise Skip("the phone number opted out of SMS")
            preference = m.state.preference(contact.order_id)
            if not has_sms_consent(preference, contact.phone, consent_from_order=m.sms_consent_from_order):
                raise Skip("no SMS consent is recorded for this order")
            if preference is not None and preference.channel not in ("sms", "both") and not d.payload.get("fallback"):
                raise Skip(f"the customer chose {preference.channel} messages")
        template = self.renderer.customer_template(d.payload)
        text = self.renderer.sms(template, context)
        self._limit(connector, {"to": contact.phone})
        message = OutboundMessage(f"bo-{d.id}", "sms", contact.phone, "", text, None, template)
        receipt = connector.send_message(message)
        self._after_customer_send(d, "sms", connector, receipt)
        return connector.name, receipt

    def _do_send_sms_confirmation(self, d: ClaimedDelivery) -> tuple[str, DeliveryReceipt]:
        """The one message an opted-out number still gets: the confirmation of its opt-out."""
        connector = _require(self.routes.sms, NotifiesCustomers, "sms")
        m = self.messaging
        phone = str(d.payload["phone"])
        if m is None or not m.state.confirmation_pending(phone):
            raise Skip("the opt-out was already confirmed (or lifted)")
        self._limit(connector, {"to": phone})
        text = self.renderer.sms_opt_out_confirmation()
        message = OutboundMessage(f"bo-{d.id}", "sms", phone, "", text, None, "opt_out_confirmation")
        receipt = connector.send_message(message)
        m.state.take_confirmation(phone, self.clock.now())
        m.state.record_sent(f"bo-{d.id}", d.id, "sms", connector.name, receipt.provider_ref, self.clock.now())
        return connector.name, receipt

    # --- issue 4: bounce fallback and the daily digest ---------------------------------------

    def fallback_to_sms(self, message_id: str) -> int | None:
        """An email bounced: send the same message by SMS where the customer consented.
        Returns the new outbox id, or None when SMS is not possible."""
        m = self.messaging
        if m is None or self.routes.sms is None:
            return None
        record = m.state.find_message(message_id=message_id)
        if record is None or record.channel != "email" or record.outbox_id is None:
            return None
        with self.read.engine.connect() as conn:
            row = conn.execute(select(t.outbox.c.payload).where(t.outbox.c.id == record.outbox_id)).first()
        if row is None or "order_id" not in row.payload:
            return None
        contact = self.read.contact(row.payload["order_id"])
        if contact is None or not contact.phone or m.state.is_suppressed(contact.phone):
            return None
        preference = m.state.preference(contact.order_id)
        if preference is not None and preference.channel == "none":
            return None
        if not has_sms_consent(preference, contact.phone, consent_from_order=m.sms_consent_from_order):
            return None
        # Providers repeat webhooks: the fallback is claimed once per bounced message (a unique
        # message_settings key) in the transaction that enqueues it.
        now = self.clock.now()
        try:
            with self.read.engine.begin() as conn:
                conn.execute(insert(t.message_settings).values(key=f"fallback:{message_id}", value=now.isoformat()))
                done = conn.execute(
                    insert(t.outbox).values(
                        action="send_sms",
                        target="sms",
                        payload={**row.payload, "fallback": message_id},
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return None  # this bounce was already reported and handled
        key_row = done.inserted_primary_key
        assert key_row is not None
        return int(key_row[0])

    def schedule_digest(self, now: datetime) -> int | None:
        """Enqueue today's staff digest once (across workers) after ``digest_hour`` UTC.

        The day's claim (a unique ``message_settings`` key) and the outbox row are written in one
        transaction: a second worker's insert fails on the key and enqueues nothing, and a crash
        leaves either both or neither. Returns the outbox id, or None when nothing was enqueued."""
        m = self.messaging
        if m is None or m.digest_hour is None or self.routes.staff is None or now.hour < m.digest_hour:
            return None
        key = f"digest:{now.date().isoformat()}"
        if m.state.setting(key) is not None:
            return None
        counts = self.read.counts()
        outbox = self.queue.counts()
        po = t.purchase_orders.c
        with self.read.engine.connect() as conn:
            pos_sent = conn.execute(
                select(func.count()).where(po.sent_at > now - timedelta(days=1), po.sent_at <= now)
            ).scalar_one()
        payload = {
            "event": "DailyDigest",
            "date": now.date().isoformat(),
            **{k: int(v) for k, v in counts.items() if isinstance(v, int)},
            "purchase_orders_sent": int(pos_sent),
            "dead_letters": int(outbox.get("dead", 0)),
            "pending_deliveries": int(outbox.get("pending", 0)),
        }
        try:
            with self.read.engine.begin() as conn:
                conn.execute(insert(t.message_settings).values(key=key, value=now.isoformat()))
                done = conn.execute(
                    insert(t.outbox).values(
                        action="notify_staff",
                        target="staff",
                        payload=payload,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return None  # another worker enqueued today's digest first
        key_row = done.inserted_primary_key
        assert key_row is not None
        return int(key_row[0])

    def _do_notify_staff(self, d: ClaimedDelivery) -> tuple[str, DeliveryReceipt]:
        connector = _require(self.routes.staff, NotifiesStaff, "staff")
        unreachable = self._unreachable(d.payload) if d.payload.get("event") == "BackorderCreated" else ""
        rendered = self.renderer.staff(d.payload, unreachable=unreachable)
        self._limit(connector, d.payload)
        message = StaffMessage(f"bo-{d.id}", rendered.title, rendered.text, template=d.payload["event"])
        return connector.name, connector.post_staff(message)

    def _do_send_purchase_order(self, d: ClaimedDelivery) -> tuple[str, DeliveryReceipt]:
        connector = _require(self.routes.purchasing, PlacesPurchaseOrders, "purchasing")
        p = d.payload
        supplier = self.read.supplier(p["supplier"]) or {}
        lines = tuple(
            PoDocumentLine(
                x["sku"],
                x["supplier_sku"],
                int(x["quantity"]),
                Decimal(x["unit_cost"]),
                datetime.fromisoformat(x["expected_on"]).date() if x.get("expected_on") else None,
            )
            for x in p["lines"]
        )
        total = sum((line.unit_cost * line.quantity for line in lines), Decimal("0")).quantize(Decimal("0.01"))
        rendered = self.renderer.purchase_order(p, supplier_name=supplier.get("name"), total=total)
        document = PurchaseOrderDocument(
            f"bo-{d.id}",
            p["po_number"],
            p["supplier"],
            p.get("supplier_email") or supplier.get("email", ""),
            lines,
            rendered.subject,
            rendered.text,
        )
        return connector.name, connector.place_purchase_order(document)

    def _do_push_stock(self, d: ClaimedDelivery) -> _FanOut:
        children = [
            ("push_stock_channel", f"channel:{cid}", {"sku": d.payload["sku"], "channel": cid})
            for cid, connector in sorted(self.routes.channels.items())
            if isinstance(connector, SyncsStock)
        ]
        if not children:
            raise Skip("no connected channel syncs stock")
        return _FanOut(children, f"{len(children)} channel(s)")

    def _do_push_stock_channel(self, d: ClaimedDelivery) -> tuple[str, DeliveryReceipt]:
        cid = d.payload["channel"]
        connector = _require(self.routes.channels.get(cid), SyncsStock, f"channel {cid}")
        settings = self.routes.channel_settings.get(cid)
        locations = tuple(getattr(settings, "locations", ()) or ())
        buffer = int(getattr(settings, "buffer", 0) or 0)
        sellable = self.read.sellable(d.payload["sku"], locations, buffer)  # read now: the freshest value wins
        self._limit(connector, d.payload)
        return connector.name, connector.push_stock([StockUpdate(d.payload["sku"], sellable, f"bo-{d.id}")])

    def _do_tag_order(self, d: ClaimedDelivery) -> tuple[str, DeliveryReceipt]:
        channel = d.payload.get("channel", "")
        connector = self.routes.channels.get(channel)
        if not isinstance(connector, TagsOrders):
            raise Skip(f"channel {channel!r} has no connector that tags orders")
        _require(connector, TagsOrders, f"channel {channel}")
        backordered = d.payload["event"] in ("BackorderCreated", "BackorderEtaChanged") or (
            d.payload["event"] == "BackorderAllocated" and not d.payload.get("ready_to_ship")
        )
        note = _tag_note(d.payload)
        tag = OrderTag(f"bo-{d.id}", d.payload["order_id"], d.payload["order_id"], backordered, note)
        self._limit(connector, d.payload)
        return connector.name, connector.tag_order(tag)


class _LeaseKeeper:
    """Keeps a round's claim while its deliveries run.

    A round that waits on slow providers (a read timeout, in-call retries) can outlast its
    lease, and another worker would then claim the rows not yet delivered and send them a
    second time. Every third of the lease the rows this round still holds get a fresh lease; a
    row found held by another claim is not delivered by this round."""

    def __init__(self, queue: OutboxQueue, claimed: Sequence[ClaimedDelivery], clock: Clock, lease: timedelta) -> None:
        self._queue = queue
        self._ids = [d.id for d in claimed]
        self._claim = claimed[0].claim
        self._clock = clock
        self._lease = lease
        self._lost: frozenset[int] = frozenset()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backorder-lease", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def holds(self, outbox_id: int) -> bool:
        return outbox_id not in self._lost

    def _run(self) -> None:
        interval = self._lease.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                held = self._queue.renew(self._ids, self._claim, self._clock.now() + self._lease)
            except Exception:  # the store is away: the rows may be claimed again once the lease ends
                log.exception("could not renew the lease of %d outbox row(s)", len(self._ids))
                continue
            # Rows not held were finished by this round, or claimed by another worker: either
            # way this round must not deliver them (again).
            self._lost = self._lost | frozenset(i for i in self._ids if i not in held)
            self._ids = [i for i in self._ids if i in held]


@dataclass
class _FanOut:
    children: list[tuple[str, str, dict[str, Any]]]
    detail: str


class _Fatal(Exception):
    status_code = None


class _Deferred(Exception):
    def __init__(self, seconds: float, reason: str = "rate limited locally") -> None:
        super().__init__(seconds)
        self.seconds = seconds
        self.reason = reason


class _ProviderRest:
    """A provider that fails with a retryable error (down, timing out, rate limiting) gets a rest.

    While it rests, deliveries to it are deferred without calling it (no attempt is counted),
    instead of each waiting out the same timeout, so one failing provider does not hold up the
    messages to the others in the same round. The rest doubles with each failure in a row, from
    the retry policy's base up to its cap, and is at least the provider's ``Retry-After``; a
    success ends it. The first delivery after a rest is the probe."""

    def __init__(self, retry: RetryPolicy) -> None:
        self._retry = retry
        self._lock = threading.Lock()
        self._until: dict[str, datetime] = {}
        self._failures: dict[str, int] = {}

    def until(self, key: str, now: datetime) -> datetime | None:
        with self._lock:
            until = self._until.get(key)
        return until if until is not None and until > now else None

    def failed(self, key: str, now: datetime, retry_after: float | None) -> tuple[datetime, int]:
        with self._lock:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            seconds = min(self._retry.cap_seconds, self._retry.base_seconds * 2 ** min(failures - 1, 20))
            until = self._until[key] = now + timedelta(seconds=max(seconds, retry_after or 0.0))
        return until, failures

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
            self._until.pop(key, None)


def _provider_key(delivery: ClaimedDelivery) -> str | None:
    """Which provider a delivery calls, as the dispatcher routes it (None for fan-outs)."""
    role = _ROLE_OF_ACTION.get(delivery.action)
    if role is not None:
        return role
    if delivery.action in _CHANNEL_ACTIONS:
        return f"channel:{delivery.payload.get('channel', '')}"
    return None


CREDENTIALS_WAIT_SECONDS = 600.0
"""How long a delivery waits before looking again for credentials that are not configured."""


def _require(connector: Connector | None, capability: type, role: str) -> Any:
    if connector is None:
        raise Skip(f"no connector is configured for {role}")
    if not isinstance(connector, capability):
        raise _Fatal(f"connector {connector.name} cannot do {capability.__name__}")
    if connector.settings.missing_credentials():
        # Webhooks-only so far: outbound work waits (not dead-lettered) until credentials come.
        raise _Deferred(CREDENTIALS_WAIT_SECONDS)
    return connector


def _skus_in(payload: Mapping[str, Any]) -> set[str]:
    found = set()
    for key in ("lines", "changes"):
        for item in payload.get(key, []) or []:
            if isinstance(item, dict) and "sku" in item:
                found.add(item["sku"])
    return found


def _with_names(payload: dict[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    for key in ("lines", "changes"):
        if key in payload:
            payload[key] = [{**item, "name": names.get(item.get("sku", ""), "")} for item in payload[key]]
    return payload


def _date(value: Any) -> Any:
    from datetime import date

    if not value:
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _tag_note(payload: Mapping[str, Any]) -> str:
    event = payload["event"]
    items = payload.get("lines") or payload.get("changes") or []
    parts = [f"{i.get('sku')}×{i.get('quantity', '')}".rstrip("×") for i in items]
    return f"backorder: {event} {' '.join(parts)}".strip()
