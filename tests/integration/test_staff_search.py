"""Staff finding the order a customer phones about (a user audit): the Backorders page's order
filter also matches the customer's email (case-insensitive, exact), phone (exact once spaces are
removed) and name (case-insensitive part of it, 3+ characters), over every status; LIKE wildcards
typed by staff are taken literally (the SKU search too); the order page shows the customer's
contact details and order number."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from test_dashboard_support import START, add_user, client, seed, sign_in

from backorder.bootstrap import Application
from backorder.domain import commands
from backorder.domain.commands import NewLine
from backorder.store.staff import LineFilter

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


@pytest.fixture
def shop(app: Application) -> Application:
    """The shared seed (O-1 is Ann's, "#1001"), plus customers with names and phones: O-4 has
    shipped whole (it is in no backorder list), O-5 and O-6 wait for stock."""
    seed(app)
    bus = app.bus
    bus.handle(
        commands.PlaceOrder(
            "O-4",
            "web",
            START - timedelta(days=3),
            (NewLine(1, "SCH-PB29-5", 1),),
            customer_email="Bea.Hughes@Example.org",
            customer_phone="+44 7700 900123",
            customer_name="Bea Hughes",
            reference="#1004",
        )
    )
    bus.handle(commands.ShipLine("O-4", 1, 1))
    bus.handle(
        commands.PlaceOrder(
            "O-5",
            "web",
            START - timedelta(days=2),
            (NewLine(1, "WN-PB29-5", 1),),
            customer_email="chloe@example.net",
            customer_phone="07700900456",
            customer_name="Chloe Rowe",
        )
    )
    bus.handle(
        commands.PlaceOrder(
            "O-6",
            "b2b",
            START - timedelta(days=2),
            (NewLine(1, "WN-PB29-5", 3),),
            customer_email="orders@acme.example",
            customer_name="Acme_Art 100% Ltd",
        )
    )
    add_user(app, "vera", "viewer")
    return app


def found(http: TestClient, typed: str, **params: str) -> set[str]:
    """The orders the Backorders page lists for ``typed`` in its order filter."""
    response = http.get(
        "/dashboard/backorders",
        params={"order": typed, **params},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert response.status_code == 200
    return set(re.findall(r'href="/dashboard/orders/([^"]+)"', response.text))


def test_an_order_is_found_by_the_customers_email_in_any_case(shop: Application) -> None:
    http = client(shop)
    sign_in(http, "vera")
    assert found(http, "ann@example.com") == {"O-1"}
    assert found(http, "ANN@Example.COM") == {"O-1"}
    assert found(http, "  chloe@example.net ") == {"O-5"}
    assert found(http, "ann@example") == set()  # an email matches whole, not in part


def test_an_order_is_found_by_the_customers_phone_whatever_the_spaces(shop: Application) -> None:
    http = client(shop)
    sign_in(http, "vera")
    assert found(http, "+447700900123") == {"O-4"}
    assert found(http, "+44 7700 900 123") == {"O-4"}
    assert found(http, "0770 090 0456") == {"O-5"}
    assert found(http, "7700900123") == set()  # exact, not a part of the number


def test_an_order_is_found_by_part_of_the_customers_name_from_three_characters(shop: Application) -> None:
    http = client(shop)
    sign_in(http, "vera")
    assert found(http, "hughes") == {"O-4"}
    assert found(http, "CHLOE ro") == {"O-5"}
    assert found(http, "bea") == {"O-4"}
    assert found(http, "Be") == set()  # too short to search names with


def test_the_order_filter_finds_an_order_whose_lines_all_shipped(shop: Application) -> None:
    http = client(shop)
    sign_in(http, "vera")
    assert "O-4" not in found(http, "")  # the default list: backordered lines only
    for typed in ("O-4", "#1004", "1004", "bea.hughes@example.org"):
        assert found(http, typed) == {"O-4"}, typed
    # a status chosen other than the default still narrows the search
    assert found(http, "O-4", status="cancelled") == set()
    assert found(http, "O-4", status="shipped") == {"O-4"}


def test_the_order_filter_lists_every_line_of_the_order_found(shop: Application) -> None:
    rows, total = shop.staff.queries.lines(LineFilter(order_id="#1001"), START)  # type: ignore[union-attr]
    assert total == 2 and {(r["order_id"], r["line_no"], r["status"]) for r in rows} == {
        ("O-1", 1, "open"),
        ("O-1", 2, "open"),
    }


def test_like_wildcards_typed_in_the_order_filter_are_taken_literally(shop: Application) -> None:
    http = client(shop)
    sign_in(http, "vera")
    assert found(http, "%%%") == set()
    assert found(http, "___") == set()
    assert found(http, "o_e") == set()  # "o_e" would match "Rowe" as a pattern
    assert found(http, "me_art 100%") == {"O-6"}


def test_like_wildcards_in_the_sku_search_are_taken_literally(shop: Application) -> None:
    assert shop.staff is not None
    queries = shop.staff.queries
    assert queries.skus("PB29", 50, 0)[1] == 3
    assert queries.skus("%", 50, 0)[1] == 0
    assert queries.skus("_", 50, 0)[1] == 0
    assert queries.skus("wn-pb29-_", 50, 0)[1] == 0
    http = client(shop)
    sign_in(http, "vera")
    page = http.get("/dashboard/skus?q=%25").text
    assert "0 SKUs" in page and "/dashboard/skus/WN-PB29-5" not in page


def test_the_order_page_shows_the_customers_contact_and_order_number_to_viewers(shop: Application) -> None:
    http = client(shop)
    sign_in(http, "vera")  # a viewer: every staff role may read an order and its customer
    page = http.get("/dashboard/orders/O-4").text
    assert "Bea Hughes" in page
    assert 'href="mailto:Bea.Hughes@Example.org"' in page
    assert 'href="tel:+447700900123"' in page and "+44 7700 900123" in page
    assert "confirmation: <strong>#1004</strong>" in page
    ann = http.get("/dashboard/orders/O-1").text
    assert "ann@example.com" in ann and "#1001" in ann


def test_the_order_page_says_when_an_order_has_no_contact_details(shop: Application) -> None:
    http = client(shop)
    sign_in(http, "vera")
    page = http.get("/dashboard/orders/O-3").text
    assert "No contact details on this order" in page
    assert "confirmation: <strong>O-3</strong>" in page
