"""The customer self-service page: signed, expiring links; each choice applied through the bus
and audited; a tampered or expired link changes nothing."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from test_dashboard_support import client, seed

from backorder.bootstrap import Application
from backorder.domain import commands
from backorder.store import tables as t
from backorder.store.sandbox import sandbox_messages

if TYPE_CHECKING:
    from conftest import Db


@pytest.fixture
def shop(app: Application) -> Application:
    seed(app)
    return app


def path_for(app: Application, order_id: str) -> str:
    assert app.links is not None
    return "/self-service/" + app.links.link_for(order_id).rsplit("/self-service/", 1)[1]


def form_token(html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def audited(app: Application) -> list[tuple[str, str, str]]:
    with app.engine.connect() as conn:
        return [
            (r.actor, r.target, r.outcome)
            for r in conn.execute(select(t.audit_log).where(t.audit_log.c.action == "self_service_choice"))
        ]


def test_the_page_shows_waiting_lines_with_etas_and_same_pigment_substitutes_only(shop: Application) -> None:
    page = client(shop).get(path_for(shop, "O-1"))
    assert page.status_code == 200
    assert "W&amp;N Professional Watercolour French Ultramarine 5 ml" in page.text
    assert 'value="SCH-PB29-5"' in page.text  # same pigment, size class and medium, in stock
    assert 'value="WN-PB29-OIL"' not in page.text  # same pigment but oil and 37 ml
    assert "Ship what is in stock now" in page.text
    assert "<h1>Your order #1001</h1>" in page.text  # the number on the customer's confirmation


def test_a_tampered_link_gets_a_clear_page_and_changes_nothing(shop: Application, db: Db) -> None:
    http = client(shop)
    good = path_for(shop, "O-1")
    before = db.snapshot()
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    assert http.get(tampered).status_code == 400
    response = http.post(tampered, data={"choice": "cancel", "form_token": "x"})
    assert response.status_code == 400 and "This link is not valid" in response.text
    assert db.snapshot() == before


def test_an_expired_link_gets_a_clear_page_and_changes_nothing(shop: Application, db: Db) -> None:
    http = client(shop)
    link = path_for(shop, "O-1")
    token = form_token(http.get(link).text)
    shop.clock.advance(days=61)  # type: ignore[attr-defined]
    before = db.snapshot()
    response = http.post(link, data={"choice": "cancel", "form_token": token})
    assert response.status_code == 410 and "This link has expired" in response.text
    assert db.snapshot() == before


def test_a_post_without_the_pages_form_token_changes_nothing(shop: Application, db: Db) -> None:
    before = db.line("O-1")
    response = client(shop).post(path_for(shop, "O-1"), data={"choice": "cancel", "form_token": "forged"})
    assert response.status_code == 403
    assert db.line("O-1") == before
    assert audited(shop) == [("customer:O-1", "O-1", "refused")]


def test_choosing_a_substitute_replaces_the_waiting_line_and_is_audited(shop: Application, db: Db) -> None:
    http = client(shop)
    link = path_for(shop, "O-1")
    response = http.post(
        link, data={"choice": "substitute", "sub_1": "SCH-PB29-5", "form_token": form_token(http.get(link).text)}
    )
    assert response.status_code == 200 and "the substitute replaces the waiting item" in response.text
    assert db.line("O-1", 1)["status"] == "cancelled"
    new = db.line("O-1", 3)
    assert (new["sku"], new["quantity"], new["allocated"], new["backordered"]) == ("SCH-PB29-5", 2, 2, 0)
    assert audited(shop) == [("customer:O-1", "O-1", "ok")]


def test_a_substitute_not_offered_is_refused(shop: Application, db: Db) -> None:
    http = client(shop)
    link = path_for(shop, "O-1")
    response = http.post(
        link, data={"choice": "substitute", "sub_1": "WN-PB29-OIL", "form_token": form_token(http.get(link).text)}
    )
    assert response.status_code == 409
    assert db.line("O-1", 1)["status"] == "open"


def test_shipping_what_is_in_stock_now_asks_staff_to_ship_the_allocated_line(shop: Application, db: Db) -> None:
    """The choice tells staff what to pack; the line ships when the shipment is recorded."""
    http = client(shop)
    link = path_for(shop, "O-1")
    response = http.post(link, data={"choice": "ship_now", "form_token": form_token(http.get(link).text)})
    assert "packing what is in stock now" in response.text
    assert db.line("O-1", 2)["status"] == "open" and db.line("O-1", 2)["backordered"] == 0
    assert db.line("O-1", 1)["status"] == "open" and db.line("O-1", 1)["backordered"] == 2
    shop.dispatcher.drain()
    [staff] = [m for m in sandbox_messages(shop.engine, "staff") if m["template"] == "PartialShipmentRequested"]
    assert staff["subject"].startswith("Ship now: order O-1 (web)")
    assert "- 1 × WN-PR101-5 (line 2)" in staff["body"]
    again = http.get(link).text  # coming back: the choice is shown and still selected
    assert "Your choice of" in again and "<strong>ship what is in stock now</strong>" in again
    assert 'value="ship_now" checked' in again and 'value="wait" checked' not in again


def test_a_ship_complete_order_is_not_offered_partial_shipment_and_a_forced_request_is_refused(
    shop: Application, db: Db
) -> None:
    http = client(shop)
    link = path_for(shop, "O-2")
    page = http.get(link).text
    assert "Ship what is in stock now" not in page and "ship complete" in page
    response = http.post(link, data={"choice": "ship_now", "form_token": form_token(page)})
    assert response.status_code == 409
    assert db.line("O-2")["status"] == "open"


def test_cancelling_the_waiting_lines_goes_through_cancel_order(shop: Application, db: Db) -> None:
    http = client(shop)
    link = path_for(shop, "O-1")
    http.post(link, data={"choice": "cancel", "form_token": form_token(http.get(link).text)})
    assert db.line("O-1", 1)["status"] == "cancelled"
    assert db.line("O-1", 2)["status"] == "open"  # it was not waiting


def test_customer_messages_carry_the_signed_link(shop: Application) -> None:
    assert shop.dispatcher.choices_url("O-1") == (shop.links.link_for("O-1") if shop.links else None)


def test_the_substitute_catalog_reads_only_in_stock_skus_sharing_a_whole_pigment_code(app: Application) -> None:
    def sku(code: str, *pigments: str) -> commands.UpsertSku:
        return commands.UpsertSku(code, code, brand="B", product_line="Watercolour", pigments=pigments, size="5 ml")

    app.bus.handle(
        commands.ImportBatch(
            (
                sku("WANT", "PB29"),
                sku("LOWER", "pb29"),  # the same code, written in lower case
                sku("MIX", "PB29", "PW6"),  # shares PB29: suggest() decides
                sku("LONGER", "PB290"),  # not PB29
                sku("NONE", "PB29"),  # out of stock
                sku("PLAIN"),  # no pigments
                *(commands.SetStockLevel(code, "main", 3) for code in ("LOWER", "MIX", "LONGER", "PLAIN")),
            )
        )
    )
    read = sorted(item.code for item in app.read.substitute_catalog(["WANT"]))
    assert read == ["LOWER", "MIX", "WANT"]
    assert app.read.substitute_catalog(["PLAIN"]) == []
