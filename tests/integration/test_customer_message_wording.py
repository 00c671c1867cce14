"""What customer messages say is true of the order when they are sent (user audit): cancellation
messages do not call in-stock units "backordered" nor quote internal reasons; the "backordered"
email offers only the choices the self-service page offers and says "reserved" only when
something is; "ready to ship" promises no tracking details. On SQLite and PostgreSQL, through
the real app and the sandbox connectors."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from backorder.bootstrap import Application
from backorder.domain import commands
from backorder.domain.commands import NewLine
from backorder.notify.preferences import set_preference
from backorder.store import tables as t
from backorder.store.sandbox import sandbox_messages

if TYPE_CHECKING:
    from conftest import Db

EMAIL = "ann@example.com"
PHONE = "+447700900123"
INTERNAL_REASONS = ("cancelled by staff", "changed on shopify", "substituted")


@pytest.fixture
def shop(app: Application) -> Application:
    """Four watercolour tubes: French Ultramarine (PB29) out of stock with an in-stock Schmincke
    substitute; Light Red (PR101) out of stock with no substitute; Burnt Sienna (PBr7) in stock."""
    bus = app.bus
    bus.handle(commands.UpsertSupplier("WN", "Winsor & Newton", "po@wn.example", 10))
    bus.handle(commands.UpsertSupplier("SCH", "Schmincke", "po@sch.example", 14))
    skus = [
        ("WN-PB29-5", "W&N French Ultramarine 5 ml", "Winsor & Newton", "Professional Watercolour", "PB29", "WN"),
        ("SCH-PB29-5", "Schmincke Ultramarine Finest 5 ml", "Schmincke", "Horadam Aquarell", "PB29", "SCH"),
        ("WN-PR101-5", "W&N Light Red 5 ml", "Winsor & Newton", "Professional Watercolour", "PR101", "WN"),
        ("WN-PBR7-5", "W&N Burnt Sienna 5 ml", "Winsor & Newton", "Professional Watercolour", "PBr7", "WN"),
    ]
    for code, name, brand, line, pigment, supplier in skus:
        bus.handle(
            commands.UpsertSku(
                code,
                name,
                brand=brand,
                product_line=line,
                pigments=(pigment,),
                size="5 ml",
                unit_price=Decimal("9.49"),
                supplier=supplier,
                unit_cost=Decimal("4"),
                reorder_point=0,
                order_up_to=0,
            )
        )
    bus.handle(commands.SetStockLevel("SCH-PB29-5", "main", 20))
    bus.handle(commands.SetStockLevel("WN-PBR7-5", "main", 20))
    app.dispatcher.drain()
    return app


def place(
    app: Application,
    order_id: str,
    *lines: tuple[str, int],
    ship_complete: bool = False,
    email: str | None = EMAIL,
    phone: str | None = None,
) -> None:
    app.bus.handle(
        commands.PlaceOrder(
            order_id,
            "web",
            app.clock.now(),
            tuple(NewLine(no, sku, qty) for no, (sku, qty) in enumerate(lines, start=1)),
            ship_complete=ship_complete,
            customer_email=email,
            customer_phone=phone,
            customer_name="Ann",
        )
    )


def sent(app: Application, kind: str, template: str) -> list[dict[str, Any]]:
    app.dispatcher.drain()
    return [m for m in sandbox_messages(app.engine, kind=kind) if m["template"] == template]


def one_email(app: Application, template: str) -> dict[str, Any]:
    (message,) = sent(app, "email", template)
    return message


def words(message: dict[str, Any]) -> str:
    """Subject, text and HTML, whitespace folded, for phrase checks across all three."""
    return " ".join(" ".join(str(message[k] or "") for k in ("subject", "body", "html")).split())


# --- 1 and 2: cancellations --------------------------------------------------------------------


def test_cancelling_an_allocated_order_does_not_call_the_items_backordered(shop: Application, db: Db) -> None:
    place(shop, "C-1", ("WN-PBR7-5", 2))
    assert db.line("C-1")["allocated"] == 2 and db.line("C-1")["backordered"] == 0
    shop.bus.handle(commands.CancelOrder("C-1", reason="cancelled by staff"))
    email = one_email(shop, "cancelled")
    assert email["subject"] == "Order C-1: items cancelled"
    assert "backordered" not in words(email).lower()
    assert "These items of your order C-1 have been cancelled:" in email["body"]


def test_cancellation_sms_does_not_call_allocated_items_backordered(shop: Application) -> None:
    place(shop, "C-2", ("WN-PBR7-5", 1), email=None, phone=PHONE)
    set_preference(shop.engine, "C-2", "sms", sms_consent=True, now=shop.clock.now())
    shop.bus.handle(commands.CancelOrder("C-2", reason="cancelled by staff"))
    (sms,) = sent(shop, "sms", "cancelled")
    assert "backordered" not in sms["body"].lower()
    assert "items of order C-2 were cancelled" in sms["body"]


@pytest.mark.parametrize("reason", INTERNAL_REASONS)
def test_internal_cancellation_reasons_never_reach_the_customer(shop: Application, reason: str) -> None:
    place(shop, "C-3", ("WN-PBR7-5", 3))
    shop.bus.handle(commands.CancelOrder("C-3", reason=reason))
    email = one_email(shop, "cancelled")
    assert reason not in words(email)
    assert "(" not in email["body"].split(":", 1)[0]  # no "(…)" after "have been cancelled"


def test_a_channel_refund_of_an_allocated_line_is_worded_as_a_plain_cancellation(shop: Application) -> None:
    place(shop, "C-4", ("WN-PBR7-5", 3))
    shop.bus.handle(commands.ReduceLine("C-4", 1, 1, reason="changed on shopify"))
    email = one_email(shop, "cancelled")
    assert email["subject"] == "Order C-4: items cancelled"
    text = words(email)
    assert "changed on shopify" not in text and "backordered" not in text.lower()
    assert "W&N Burnt Sienna 5 ml (WN-PBR7-5): 2" in email["body"]


# --- 3: the "backordered" email ----------------------------------------------------------------


def test_nothing_reserved_means_no_reserved_claim_and_no_ship_now_offer(shop: Application) -> None:
    place(shop, "B-1", ("WN-PB29-5", 2))
    text = words(one_email(shop, "backorder_created"))
    assert "reserved" not in text
    assert "ship what is in stock now" not in text
    assert "wait for everything" in text and "cancel the backordered items" in text


def test_a_partly_allocated_order_is_told_it_is_reserved_and_may_ship_now(shop: Application) -> None:
    place(shop, "B-2", ("WN-PB29-5", 2), ("WN-PBR7-5", 1))
    email = one_email(shop, "backorder_created")
    assert "The rest of your order is reserved for you." in email["body"]
    assert "The rest of your order is reserved for you." in email["html"]
    assert "- ship what is in stock now," in email["body"]
    assert "ship what is in stock now" in email["html"]


def test_a_ship_complete_order_is_not_offered_to_ship_what_is_in_stock(shop: Application, db: Db) -> None:
    place(shop, "B-3", ("WN-PB29-5", 1), ("WN-PBR7-5", 1), ship_complete=True)
    text = words(one_email(shop, "backorder_created"))
    assert "ship what is in stock now" not in text
    # nothing is allocated to a ship-complete order until all of it can be: nothing is reserved
    assert db.line("B-3", 2)["allocated"] == 0
    assert "reserved" not in text


def test_a_substitute_is_offered_only_when_the_self_service_page_would_suggest_one(shop: Application) -> None:
    place(shop, "B-4", ("WN-PR101-5", 1))  # no other PR101 watercolour
    place(shop, "B-5", ("WN-PB29-5", 1))  # Schmincke PB29 is in stock
    by_order = {m["subject"].split(":")[0]: words(m) for m in sent(shop, "email", "backorder_created")}
    assert "substitute" not in by_order["Order B-4"]
    assert "take a suggested substitute of the same pigment" in by_order["Order B-5"]


def test_a_ship_complete_orders_in_stock_line_is_not_listed_as_waiting_with_a_date(shop: Application, db: Db) -> None:
    """A ship-complete order's line that stock could cover waits only for the order's other line:
    the email says it is in stock and held, and the order's date is the line that really waits."""
    # WN-PB29-5 waits (WN: 10 days); SCH-PB29-5 is in stock (SCH: 14 days) but held for it
    place(shop, "B-6", ("WN-PB29-5", 1), ("SCH-PB29-5", 1), ship_complete=True)
    held = db.line("B-6", 2)
    # what the database says: the held line is "backordered" (nothing is allocated to the order)
    assert (held["allocated"], held["backordered"]) == (0, 1)
    email = one_email(shop, "backorder_created")
    assert "(SCH-PB29-5): 1 in stock now, set aside for you once the rest of your order arrives" in email["body"]
    assert "(SCH-PB29-5): 1 waiting" not in email["body"]
    assert "(WN-PB29-5): 1 waiting, expected by 2026-03-12" in email["body"]
    assert "in stock now, set aside for you once the rest of your order arrives" in email["html"]
    assert email["subject"] == "Order B-6: 1 item on backorder"  # the one that waits, not the one in stock


def test_an_ordinary_orders_waiting_lines_are_all_listed_with_their_dates(shop: Application) -> None:
    place(shop, "B-7", ("WN-PB29-5", 1), ("SCH-PB29-5", 1))  # not ship-complete: SCH is allocated
    body = one_email(shop, "backorder_created")["body"]
    assert "(WN-PB29-5): 1 waiting, expected by 2026-03-12" in body
    assert "held until" not in body


# --- 3e: ready to ship ---------------------------------------------------------------------------


def test_ready_to_ship_promises_no_tracking_details(shop: Application) -> None:
    place(shop, "R-1", ("WN-PB29-5", 1))
    shop.bus.handle(commands.ReceiveStock("WN-PB29-5", "main", 1, shop.clock.now()))
    email = one_email(shop, "ready_to_ship")
    assert "tracking" not in words(email).lower()
    assert "It will be on its way shortly." in email["body"]


# --- 4: the order number the customer knows ------------------------------------------------------


def test_messages_name_the_order_by_the_number_on_the_customers_confirmation(shop: Application, db: Db) -> None:
    shop.bus.handle(
        commands.PlaceOrder(
            "web-820982911946154508",  # our id: the channel and the platform's internal id
            "web",
            shop.clock.now(),
            (NewLine(1, "WN-PR101-5", 1),),
            customer_email=EMAIL,
            customer_phone=PHONE,
            reference="#1001",  # Shopify's order name
        )
    )
    set_preference(shop.engine, "web-820982911946154508", "both", sms_consent=True, now=shop.clock.now())
    email = one_email(shop, "backorder_created")
    assert email["subject"] == "Order #1001: 1 item on backorder"
    assert "820982911946154508" not in words(email)
    shop.bus.handle(commands.CancelOrder("web-820982911946154508", reason="cancelled by staff"))
    (sms,) = sent(shop, "sms", "cancelled")
    assert "items of order #1001 were cancelled" in sms["body"]
    assert db.rows(t.orders, t.orders.c.id == "web-820982911946154508")[0]["reference"] == "#1001"


def test_an_order_without_a_separate_number_is_named_by_its_id(shop: Application) -> None:
    place(shop, "B-9", ("WN-PR101-5", 1))
    assert one_email(shop, "backorder_created")["subject"] == "Order B-9: 1 item on backorder"


def test_a_cancellation_makes_no_promise_about_payment(shop: Application) -> None:
    place(shop, "C-5", ("WN-PBR7-5", 1), phone=PHONE)
    set_preference(shop.engine, "C-5", "both", sms_consent=True, now=shop.clock.now())
    shop.bus.handle(commands.CancelOrder("C-5", reason="cancelled by staff"))
    email = one_email(shop, "cancelled")
    (sms,) = sent(shop, "sms", "cancelled")
    for text in (words(email), sms["body"]):
        assert "charged" not in text and "refund" not in text  # the shop's payment terms are not ours to state


# --- 5: a reservation taken back ---------------------------------------------------------------


def test_a_customer_told_ready_to_ship_hears_at_once_when_a_count_takes_the_stock_back(
    shop: Application, db: Db
) -> None:
    place(shop, "R-1", ("WN-PR101-5", 2))
    assert one_email(shop, "backorder_created")["subject"] == "Order R-1: 1 item on backorder"
    shop.bus.handle(commands.ReceiveStock("WN-PR101-5", "main", 2, shop.clock.now(), None))
    assert one_email(shop, "ready_to_ship")["subject"] == "Order R-1 is complete and ready to ship"
    messaging = shop.dispatcher.messaging
    assert messaging is not None  # an ETA message went out an hour ago: its slot is held for a day
    an_hour_ago = shop.clock.now() - timedelta(hours=1)
    assert messaging.state.claim_eta_slot("R-1", 0, an_hour_ago, messaging.eta_interval) is None
    shop.bus.handle(commands.SetStockLevel("WN-PR101-5", "main", 0))  # the shelf is empty after all
    assert db.line("R-1")["backordered"] == 2
    email = one_email(shop, "eta_changed")
    assert "were reserved for you, but the stock we had for them fell short" in email["body"]
    assert (
        f"W&N Light Red 5 ml (WN-PR101-5): no longer reserved, now expected by {db.line('R-1')['eta']}" in email["body"]
    )
    # told once: a later re-count that changes nothing for the customer sends nothing more
    shop.bus.handle(commands.SetStockLevel("WN-PR101-5", "main", 0))
    assert len(sent(shop, "email", "eta_changed")) == 1


def test_ready_to_ship_lists_every_reserved_line_not_only_the_one_that_arrived(shop: Application) -> None:
    place(shop, "R-2", ("WN-PBR7-5", 3), ("WN-PR101-5", 1))  # Burnt Sienna in stock, Light Red waits
    shop.bus.handle(commands.ReceiveStock("WN-PR101-5", "main", 1, shop.clock.now(), None))
    email = one_email(shop, "ready_to_ship")
    assert "W&N Burnt Sienna 5 ml (WN-PBR7-5): 3" in email["body"]
    assert "W&N Light Red 5 ml (WN-PR101-5): 1" in email["body"]
    assert "W&amp;N Burnt Sienna 5 ml" in email["html"]


def test_staff_hear_when_a_new_backorders_customer_cannot_be_told(shop: Application) -> None:
    place(shop, "U-1", ("WN-PR101-5", 1), email=None, phone=PHONE)  # a phone, but no SMS consent recorded
    place(shop, "U-2", ("WN-PR101-5", 1))  # an email: reachable
    posts = {m["subject"]: m["body"] for m in sent(shop, "staff", "BackorderCreated")}
    unreachable = next(body for subject, body in posts.items() if "U-1" in subject)
    assert "will not be told by email or SMS" in unreachable and "contact them another way" in unreachable
    assert PHONE not in unreachable  # no number in the staff channel
    assert all("will not be told" not in body for subject, body in posts.items() if "U-2" in subject)


def test_a_reservation_taken_back_waits_for_a_message_about_the_order_sent_within_the_minute(
    shop: Application, db: Db
) -> None:
    """Another worker's message about the same order holds the slot: this one is not sent beside it."""
    place(shop, "R-3", ("WN-PR101-5", 1))
    shop.bus.handle(commands.ReceiveStock("WN-PR101-5", "main", 1, shop.clock.now(), None))
    assert one_email(shop, "ready_to_ship")
    messaging = shop.dispatcher.messaging
    assert messaging is not None
    assert messaging.state.claim_eta_slot("R-3", 0, shop.clock.now(), messaging.eta_interval) is None  # just now
    shop.bus.handle(commands.SetStockLevel("WN-PR101-5", "main", 0))
    assert sent(shop, "email", "eta_changed") == []  # deferred, not lost
    (row,) = [
        r
        for r in shop.queue.list(limit=100)
        if r["action"] == "notify_customer" and r["payload"].get("event") == "BackorderEtaChanged"
    ]
    assert row["status"] == "pending"


def test_a_line_reserved_since_the_order_was_placed_is_also_told_when_taken_back(shop: Application, db: Db) -> None:
    """ "Ready to ship" listed it as reserved: losing it is a reservation taken back too."""
    place(shop, "R-4", ("WN-PBR7-5", 2), ("WN-PR101-5", 1))  # Burnt Sienna reserved at once, Light Red waits
    shop.bus.handle(commands.ReceiveStock("WN-PR101-5", "main", 1, shop.clock.now(), None))
    assert "W&N Burnt Sienna 5 ml (WN-PBR7-5): 2" in one_email(shop, "ready_to_ship")["body"]
    shop.bus.handle(commands.SetStockLevel("WN-PBR7-5", "main", 0))  # the Burnt Sienna shelf is empty
    assert db.line("R-4", 1)["backordered"] == 2
    email = one_email(shop, "eta_changed")
    assert "W&N Burnt Sienna 5 ml (WN-PBR7-5): no longer reserved" in email["body"]
