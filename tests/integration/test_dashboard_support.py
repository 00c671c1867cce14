"""Shared set-up for the dashboard, self-service and API tests (no tests here): a small catalog
with pigments, stock, a few orders (some backordered), staff users and an HTTP client."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from backorder.bootstrap import Application
from backorder.domain import commands
from backorder.domain.commands import NewLine
from backorder.web.app import create_app
from backorder.web.security import hash_password

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the integration clock's start (conftest.START)

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its test client; httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


def seed(app: Application) -> None:
    bus = app.bus
    bus.handle(commands.UpsertSupplier("WN", "Winsor & Newton", "po@wn.example", 10))
    bus.handle(commands.UpsertSupplier("SCH", "Schmincke", "po@sch.example", 14))
    skus = [
        (
            "WN-PB29-5",
            "W&N Professional Watercolour French Ultramarine 5 ml",
            "Winsor & Newton",
            "Professional Watercolour",
            "PB29",
            "5 ml",
            "9.49",
            "WN",
        ),
        (
            "SCH-PB29-5",
            "Schmincke Horadam Ultramarine Finest 5 ml",
            "Schmincke",
            "Horadam Aquarell",
            "PB29",
            "5 ml",
            "10.20",
            "SCH",
        ),
        (
            "WN-PB29-OIL",
            "W&N Artists' Oil French Ultramarine 37 ml",
            "Winsor & Newton",
            "Artists' Oil Colour",
            "PB29",
            "37 ml",
            "14.00",
            "WN",
        ),
        (
            "WN-PR101-5",
            "W&N Professional Watercolour Light Red 5 ml",
            "Winsor & Newton",
            "Professional Watercolour",
            "PR101",
            "5 ml",
            "9.49",
            "WN",
        ),
    ]
    for code, name, brand, line, pigments, size, price, supplier in skus:
        bus.handle(
            commands.UpsertSku(
                code,
                name,
                brand=brand,
                product_line=line,
                pigments=(pigments,),
                size=size,
                unit_price=Decimal(price),
                supplier=supplier,
                unit_cost=Decimal("4"),
                reorder_point=2,
                order_up_to=12,
            )
        )
    bus.handle(commands.SetStockLevel("SCH-PB29-5", "main", 20))
    bus.handle(commands.SetStockLevel("WN-PB29-OIL", "main", 20))
    bus.handle(commands.SetStockLevel("WN-PR101-5", "main", 1))
    # O-1: two PB29 tubes backordered, one light red in stock: may ship in part
    bus.handle(
        commands.PlaceOrder(
            "O-1",
            "web",
            START - timedelta(days=10),
            (NewLine(1, "WN-PB29-5", 2), NewLine(2, "WN-PR101-5", 1)),
            customer_email="ann@example.com",
            reference="#1001",  # the number on Ann's confirmation
        )
    )
    # O-2: ship complete, waiting for PB29
    bus.handle(
        commands.PlaceOrder("O-2", "pos", START - timedelta(days=1), (NewLine(1, "WN-PB29-5", 1),), ship_complete=True)
    )
    # O-3: nothing in stock for it
    bus.handle(commands.PlaceOrder("O-3", "b2b", START, (NewLine(1, "WN-PR101-5", 4),)))


def add_user(app: Application, username: str, role: str) -> None:
    assert app.staff is not None
    app.staff.add_user(username, hash_password(PASSWORD), role)


def client(app: Application, base_url: str = "http://testserver") -> TestClient:
    return TestClient(create_app(app), base_url=base_url)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def sign_in(http: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    page = http.get("/login")
    response = http.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text), "next": "/dashboard"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(http.get("/dashboard").text)
