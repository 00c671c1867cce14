"""Rules: which actions each domain event causes. Configured in ``[rules]`` of the TOML file;
every action becomes an outbox row written in the same transaction as the state change."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
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
    "ReplenishmentBlocked": (Action.NOTIFY_STAFF,),
    "PurchaseOrderSent": (Action.SEND_PURCHASE_ORDER, Action.NOTIFY_STAFF),
    "StockLevelChanged": (Action.PUSH_STOCK,),
}


def to_payload(value: Any) -> Any:
    """Events as JSON-ready data (dates ISO, Decimals as strings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_payload(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_payload(v) for v in value]
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
        messages: list[OutboxMessage] = []
        pushed: set[str] = set()
        for event in happened:
            if isinstance(event, events.StockLevelChanged):
                if event.sku in pushed:
                    continue  # one push per SKU per transaction
                pushed.add(event.sku)
            payload: dict[str, Any] | None = None
            for action in self.by_event.get(event.name, ()):
                if action in self.disabled:
                    continue
                if payload is None:
                    payload = {"event": event.name, **to_payload(event)}
                messages.append(OutboxMessage(action.value, ACTION_TARGETS[action], payload))
        return messages
