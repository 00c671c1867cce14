"""Rules: which actions each domain event causes. Configured in ``[rules]`` of the TOML file;
every action becomes an outbox row written in the same transaction as the state change."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from backorder.domain import events
from backorder.services.ports import OutboxMessage


class Action(enum.StrEnum):
    NOTIFY_CUSTOMER = "notify_customer"
    NOTIFY_STAFF = "notify_staff"
    SEND_PURCHASE_ORDER = "send_purchase_order"
    PUSH_STOCK = "push_stock"
    TAG_ORDER = "tag_order"


ACTION_TARGETS: dict[Action, str] = {
    Action.NOTIFY_CUSTOMER: "customer",
    Action.NOTIFY_STAFF: "staff",
    Action.SEND_PURCHASE_ORDER: "purchasing",
    Action.PUSH_STOCK: "channels",
    Action.TAG_ORDER: "channels",
}

EVENT_NAMES = frozenset(
    cls.__name__
    for cls in vars(events).values()
    if isinstance(cls, type) and issubclass(cls, events.Event) and cls is not events.Event
)

DEFAULT_RULES: dict[str, tuple[Action, ...]] = {
    "BackorderCreated": (Action.NOTIFY_CUSTOMER, Action.NOTIFY_STAFF, Action.TAG_ORDER),
    "BackorderEtaChanged": (Action.NOTIFY_CUSTOMER, Action.NOTIFY_STAFF),
    "BackorderAllocated": (Action.NOTIFY_CUSTOMER, Action.TAG_ORDER),
    "BackorderCancelled": (Action.NOTIFY_CUSTOMER, Action.NOTIFY_STAFF, Action.TAG_ORDER),
    "AllocationWithdrawn": (Action.NOTIFY_STAFF,),
    "PartialShipmentRequested": (Action.NOTIFY_STAFF,),
    "ReplenishmentBlocked": (Action.NOTIFY_STAFF,),
    "PurchaseOrderSent": (Action.SEND_PURCHASE_ORDER, Action.NOTIFY_STAFF),
    "StockLevelChanged": (Action.PUSH_STOCK,),
}


_LEAVES = frozenset({str, int, float, bool, type(None)})
_CONVERTERS: dict[type, Callable[[Any], dict[str, Any]]] = {}
"""A payload builder per dataclass, made once per class: a full run builds hundreds of
thousands of payloads, and reading the fields' names for each costs more than the rest."""


def _converter(kind: type, head: Mapping[str, Any] | None = None) -> Callable[[Any], dict[str, Any]]:
    """A function building ``{**head, field: to_payload(value.field), ...}`` for this class."""
    names = [f.name for f in dataclasses.fields(kind)]
    first = "".join(f"{key!r}: {value!r}, " for key, value in (head or {}).items())
    values = ", ".join(f"{name!r}: v{i} if type(v{i}) in leaves else convert(v{i})" for i, name in enumerate(names))
    reads = "".join(f"    v{i} = value.{name}\n" for i, name in enumerate(names))
    scope: dict[str, Any] = {"leaves": _LEAVES, "convert": to_payload}
    exec(f"def build(value):\n{reads}    return {{{first}{values}}}\n", scope)  # our own dataclasses' fields only
    built: Callable[[Any], dict[str, Any]] = scope["build"]
    return built


_EVENT_PAYLOADS: dict[tuple[type, str], Callable[[Any], dict[str, Any]]] = {}


def _event_payload(kind: type, name: str) -> Callable[[Any], dict[str, Any]]:
    """The builder of ``{"event": name, **to_payload(event)}`` for one event class (made once)."""
    build = _EVENT_PAYLOADS.get((kind, name))
    if build is None:
        build = _EVENT_PAYLOADS[(kind, name)] = _converter(kind, {"event": name})
    return build


def to_payload(value: Any) -> Any:
    """Events as JSON-ready data (dates ISO, Decimals as strings)."""
    kind = type(value)
    if kind in _LEAVES:
        return value
    build = _CONVERTERS.get(kind)
    if build is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        build = _CONVERTERS[kind] = _converter(kind)
    if build is not None:
        return build(value)
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _LEAVES else to_payload(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


@dataclass(frozen=True)
class RuleSet:
    by_event: Mapping[str, tuple[Action, ...]] = field(default_factory=lambda: dict(DEFAULT_RULES))
    disabled: frozenset[Action] = frozenset()
    """Actions nothing is configured to perform (e.g. push_stock with no channel API)."""

    def actions(self, happened: Sequence[events.Event]) -> list[OutboxMessage]:
        """One message per event and enabled action; an event's actions share one payload."""
        messages: list[OutboxMessage] = []
        pushed: set[str] = set()
        routes: dict[type, tuple[Callable[[Any], dict[str, Any]], tuple[tuple[str, str], ...]]] = {}
        message = OutboxMessage
        for event in happened:
            if isinstance(event, events.StockLevelChanged):
                if event.sku in pushed:
                    continue  # one push per SKU per transaction
                pushed.add(event.sku)
            route = routes.get(type(event))
            if route is None:
                name = event.name
                enabled = tuple(
                    (action.value, ACTION_TARGETS[action])
                    for action in self.by_event.get(name, ())
                    if action not in self.disabled
                )
                route = routes[type(event)] = (_event_payload(type(event), name), enabled)
            build, enabled = route
            if not enabled:
                continue
            payload = build(event)  # {"event": name, **to_payload(event)}
            for action, target in enabled:
                messages.append(message(action, target, payload))
        return messages
