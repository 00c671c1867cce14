"""Render customer, staff and supplier messages from outbox payloads."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

CUSTOMER_TEMPLATES = {
    "BackorderCreated": "backorder_created",
    "BackorderEtaChanged": "eta_changed",
    "BackorderAllocated": "allocated",
    "BackorderCancelled": "cancelled",
}

CUSTOMER_FACTS: dict[str, object] = {
    "reserved": False,
    "can_ship_now": False,
    "substitutes_offered": False,
    "held_skus": (),
    "reserved_lines": (),
}
"""What a customer message may claim about the order (the dispatcher reads them at send time).
Not given, nothing is claimed: nothing reserved, no shipping now, no substitute offered, no line
said to be in stock."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class RenderedStaff:
    title: str
    text: str


def money(amount: Any, currency: str | None, places: int = 2) -> str:
    """An amount as the shop writes it: ``1,234.50 GBP`` (bare without a currency, "—" without an amount)."""
    if amount is None or amount == "":
        return "—"
    text = f"{Decimal(str(amount)):,.{places}f}"
    return f"{text} {currency}" if currency else text


class Renderer:
    def __init__(
        self,
        override_folder: Path | None = None,
        shop_name: str = "Our shop",
        public_url: str = "",
        currency: str | None = None,
        ship_to: str | None = None,
    ) -> None:
        loaders: list[Any] = []
        if override_folder is not None and override_folder.is_dir():
            loaders.append(FileSystemLoader(str(override_folder)))
        loaders.append(PackageLoader("backorder.notify", "templates"))
        self._env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._env.filters["qty"] = lambda n: f"{int(n):,}"
        self._env.filters["money"] = lambda amount, places=2: money(amount, currency, places)
        self._globals = {"shop_name": shop_name, "public_url": public_url.rstrip("/"), "ship_to": ship_to}

    @staticmethod
    def customer_template(payload: dict[str, Any]) -> str:
        event = payload["event"]
        if event == "BackorderAllocated" and payload.get("ready_to_ship"):
            return "ready_to_ship"
        return CUSTOMER_TEMPLATES[event]

    def _context(self, payload: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        return {**self._globals, **payload, **extra}

    def email(self, template: str, payload: dict[str, Any], **extra: Any) -> RenderedEmail:
        ctx = {**CUSTOMER_FACTS, **self._context(payload, extra)}
        subject = self._env.get_template(f"customer/{template}.subject.txt").render(ctx).strip()
        text = self._env.get_template(f"customer/{template}.txt").render(ctx).strip() + "\n"
        html = self._env.get_template(f"customer/{template}.html").render(ctx)
        return RenderedEmail(subject, text, html)

    def sms(self, template: str, payload: dict[str, Any], **extra: Any) -> str:
        return " ".join(
            self._env.get_template(f"customer/{template}.sms.txt")
            .render({**CUSTOMER_FACTS, **self._context(payload, extra)})
            .split()
        )

    def sms_opt_out_confirmation(self) -> str:
        return " ".join(self._env.get_template("customer/opt_out_confirmation.sms.txt").render(self._globals).split())

    def staff(self, payload: dict[str, Any], **extra: Any) -> RenderedStaff:
        ctx = self._context(payload, extra)
        body = self._env.get_template(f"staff/{payload['event']}.txt").render(ctx).strip()
        title, _, text = body.partition("\n")
        return RenderedStaff(title.strip(), text.strip())

    def purchase_order(self, payload: dict[str, Any], **extra: Any) -> RenderedEmail:
        ctx = self._context(payload, extra)
        subject = f"Purchase order {payload['po_number']}"
        text = self._env.get_template("supplier/purchase_order.txt").render(ctx).strip() + "\n"
        return RenderedEmail(subject, text, "")
