"""The sandbox connector's "outbound calls": records written to a sink (a table) and a folder."""

from __future__ import annotations

import abc
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from backorder.connectors.base import (
    Connector,
    ConnectorDeps,
    ConnectorSettings,
    DeliveryReceipt,
    NotifiesCustomers,
    NotifiesStaff,
    OrderTag,
    OutboundMessage,
    PlacesPurchaseOrders,
    PurchaseOrderDocument,
    StaffMessage,
    StockUpdate,
    SyncsStock,
    TagsOrders,
)
from backorder.connectors.errors import NotConfigured, ProviderUnavailable
from backorder.connectors.sandbox.mapping import (
    SandboxRecord,
    from_customer_message,
    from_order_tag,
    from_purchase_order,
    from_staff_message,
    from_stock_updates,
)
from backorder.connectors.sandbox.settings import SandboxSettings


class SandboxSink(abc.ABC):
    """Where sandbox records go; the composition root supplies a database-backed one."""

    @abc.abstractmethod
    def record(self, record: SandboxRecord, message_id: str) -> int: ...


class MemorySink(SandboxSink):
    def __init__(self) -> None:
        self.records: list[tuple[str, SandboxRecord]] = []

    def record(self, record: SandboxRecord, message_id: str) -> int:
        self.records.append((message_id, record))
        return len(self.records)


class SandboxConnector(Connector, NotifiesCustomers, NotifiesStaff, PlacesPurchaseOrders, SyncsStock, TagsOrders):
    local = True  # records to the database and a folder: nothing to wait for

    def __init__(self, name: str, settings: SandboxSettings, sink: SandboxSink, folder: Path | None) -> None:
        super().__init__(name, settings)
        self._sink = sink
        self._folder = folder
        self._failures_left = settings.fail_first
        self._failures_lock = threading.Lock()  # the dispatcher delivers on several threads

    def _keep(self, record: SandboxRecord, message_id: str) -> DeliveryReceipt:
        with self._failures_lock:
            fail = self._failures_left > 0
            if fail:
                self._failures_left -= 1
        if fail:
            raise ProviderUnavailable(503, provider="sandbox", detail="sandbox: simulated outage (fail_first)")
        sandbox_id = self._sink.record(record, message_id)
        if self._folder is not None:
            self._folder.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{sandbox_id:06d}-{record.kind}-{message_id}")
            text = f"To: {record.recipient}\nSubject: {record.subject}\nX-Backorder-Message-Id: {message_id}\n\n{record.body}\n"
            (self._folder / f"{safe}.txt").write_text(text, encoding="utf-8")
        return DeliveryReceipt(provider_ref=f"sandbox-{sandbox_id}", detail=f"recorded as sandbox message {sandbox_id}")

    def send_message(self, message: OutboundMessage) -> DeliveryReceipt:
        return self._keep(from_customer_message(message), message.message_id)

    def post_staff(self, message: StaffMessage) -> DeliveryReceipt:
        return self._keep(from_staff_message(message, self.name), message.message_id)

    def place_purchase_order(self, document: PurchaseOrderDocument) -> DeliveryReceipt:
        return self._keep(from_purchase_order(document), document.message_id)

    def push_stock(self, updates: Sequence[StockUpdate]) -> DeliveryReceipt:
        message_id = updates[0].message_id if updates else ""
        return self._keep(from_stock_updates(self.name, list(updates)), message_id)

    def tag_order(self, tag: OrderTag) -> DeliveryReceipt:
        return self._keep(from_order_tag(self.name, tag), tag.message_id)


def build(name: str, settings: ConnectorSettings, deps: ConnectorDeps) -> SandboxConnector:
    assert isinstance(settings, SandboxSettings)
    sink = deps.extras.get("sandbox_sink")
    if not isinstance(sink, SandboxSink):
        raise NotConfigured(
            "sandbox", provider="sandbox", detail="the sandbox connector needs a sink from the composition root"
        )
    folder = deps.extras.get("sandbox_folder")
    return SandboxConnector(name, settings, sink, Path(folder) if folder else None)
