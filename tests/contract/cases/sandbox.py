"""The sandbox connector: no HTTP, records every message to its sink."""

from __future__ import annotations

from decimal import Decimal

from backorder.connectors.base import (
    OrderTag,
    OutboundMessage,
    PoDocumentLine,
    PurchaseOrderDocument,
    StaffMessage,
    StockUpdate,
)
from backorder.connectors.sandbox.client import MemorySink
from tests.contract.framework import ContractCase, OutboundCall

SINK = MemorySink()

CASE = ContractCase(
    kind="sandbox",
    settings={"provider": "sandbox"},
    extras={"sandbox_sink": SINK, "sandbox_folder": None},
    outbound=[
        OutboundCall(
            "send_message", lambda c: c.send_message(OutboundMessage("bo-1", "email", "ada@example.com", "Hi", "Body"))
        ),
        OutboundCall("post_staff", lambda c: c.post_staff(StaffMessage("bo-2", "New backorder", "text"))),
        OutboundCall(
            "place_purchase_order",
            lambda c: c.place_purchase_order(
                PurchaseOrderDocument(
                    "bo-3",
                    "PO-1",
                    "WN-UK",
                    "orders@example.com",
                    (PoDocumentLine("WN-1", "0102263", 12, Decimal("4.10"), None),),
                    "PO PO-1",
                    "text",
                )
            ),
        ),
        OutboundCall("push_stock", lambda c: c.push_stock([StockUpdate("WN-1", 5, "bo-4")])),
        OutboundCall("tag_order", lambda c: c.tag_order(OrderTag("bo-5", "web-1001", "1001", True, "backorder"))),
    ],
)
