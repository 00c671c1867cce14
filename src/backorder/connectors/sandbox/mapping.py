"""Our messages as sandbox records (what would have gone over the wire)."""

from __future__ import annotations

from dataclasses import dataclass

from backorder.connectors.base import (
    OrderTag,
    OutboundMessage,
    PurchaseOrderDocument,
    StaffMessage,
    StockUpdate,
)


@dataclass(frozen=True)
class SandboxRecord:
    kind: str  # email | sms | staff | purchase_order | stock | order_tag
    template: str
    recipient: str
    subject: str
    body: str
    html: str | None = None


def from_customer_message(message: OutboundMessage) -> SandboxRecord:
    return SandboxRecord(message.channel, message.template, message.to, message.subject, message.text, message.html)


def from_staff_message(message: StaffMessage, channel_name: str) -> SandboxRecord:
    lines = [message.text] + [f"{k}: {v}" for k, v in message.fields.items()]
    if message.link:
        lines.append(message.link)
    return SandboxRecord("staff", message.template, channel_name, message.title, "\n".join(lines))


def from_purchase_order(document: PurchaseOrderDocument) -> SandboxRecord:
    return SandboxRecord(
        "purchase_order",
        "purchase_order",
        document.supplier_email or document.supplier,
        document.subject,
        document.text,
    )


def from_stock_updates(channel: str, updates: list[StockUpdate]) -> SandboxRecord:
    body = "\n".join(f"{u.sku}\t{u.available}" for u in updates)
    return SandboxRecord("stock", "stock", channel, f"{len(updates)} sellable quantities", body)


def from_order_tag(channel: str, tag: OrderTag) -> SandboxRecord:
    return SandboxRecord(
        "order_tag",
        "order_tag",
        channel,
        f"{tag.channel_order_ref}: {'backorder' if tag.backordered else 'clear'}",
        tag.note,
    )
