"""Templates (each customer message in text, HTML and SMS form), the ETA debounce rule, the
consent/preference resolution and the PII redaction, without I/O."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from backorder.notify.debounce import Told, decide
from backorder.notify.links import LinkSigner
from backorder.notify.preferences import resolve
from backorder.notify.redact import redact
from backorder.notify.render import Renderer
from backorder.notify.state import Preference

LINES = [
    {
        "line_no": 1,
        "sku": "WN-PWC-263-14",
        "name": "Winsor & Newton Professional Watercolour French Ultramarine 14 ml",
        "quantity": 2,
        "eta": "2026-03-16",
    },
    {
        "line_no": 2,
        "sku": "SCH-HOR-10-60",
        "name": "Schmincke Horadam Aquarell Cadmium Red 15 ml",
        "quantity": 1,
        "eta": "2026-03-20",
    },
]
PAYLOADS = {
    "backorder_created": {"event": "BackorderCreated", "lines": LINES},
    "eta_changed": {
        "event": "BackorderEtaChanged",
        "changes": [
            {
                "line_no": 1,
                "sku": "WN-PWC-263-14",
                "name": "French Ultramarine 14 ml",
                "previous": "2026-03-16",
                "current": "2026-03-23",
            }
        ],
    },
    "allocated": {
        "event": "BackorderAllocated",
        "ready_to_ship": False,
        "source": "receipt",
        "lines": [
            {"line_no": 1, "sku": "WN-PWC-263-14", "name": "French Ultramarine", "quantity": 1, "still_backordered": 1}
        ],
    },
    "ready_to_ship": {
        "event": "BackorderAllocated",
        "ready_to_ship": True,
        "source": "receipt",
        "lines": [
            {"line_no": 1, "sku": "WN-PWC-263-14", "name": "French Ultramarine", "quantity": 2, "still_backordered": 0}
        ],
    },
    "cancelled": {
        "event": "BackorderCancelled",
        "reason": "customer no longer needs the items",
        "lines": [{"line_no": 1, "sku": "WN-PWC-263-14", "name": "French Ultramarine", "quantity": 2}],
    },
}
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def _context(payload: dict[str, object], unsubscribe: str | None) -> dict[str, object]:
    return {
        **payload,
        "order_ref": "WEB-100234",
        "customer_name": "Hilma af Klint",
        "choices_url": "https://shop.example/o/WEB-100234",
        "unsubscribe_url": unsubscribe,
    }


@pytest.mark.parametrize("template", sorted(PAYLOADS))
def test_each_customer_message_renders_as_text_and_html_email_with_the_unsubscribe_link(template: str) -> None:
    renderer = Renderer(shop_name="Atelier Supplies")
    assert Renderer.customer_template(PAYLOADS[template]) == template
    email = renderer.email(template, _context(PAYLOADS[template], "https://shop.example/hooks/unsubscribe/TOKEN"))
    assert "WEB-100234" in email.subject
    assert "WEB-100234" in email.text and "WEB-100234" in email.html
    assert "https://shop.example/hooks/unsubscribe/TOKEN" in email.text
    assert 'href="https://shop.example/hooks/unsubscribe/TOKEN"' in email.html
    assert "Hilma af Klint" in email.text and "Hilma af Klint" in email.html


@pytest.mark.parametrize("template", sorted(PAYLOADS))
def test_each_sms_fits_one_160_character_gsm7_segment_for_a_realistic_order(template: str) -> None:
    text = Renderer(shop_name="Atelier Supplies").sms(template, _context(PAYLOADS[template], None))
    assert "WEB-100234" in text
    assert len(text) <= 160, (len(text), text)
    assert set(text) <= GSM7, set(text) - GSM7


def test_html_escapes_customer_supplied_text() -> None:
    payload = {**_context(PAYLOADS["backorder_created"], None), "customer_name": "<script>x</script>"}
    assert "<script>" not in Renderer().email("backorder_created", payload).html


def test_templates_can_be_overridden_from_a_config_folder(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "customer").mkdir()
    (folder / "customer" / "cancelled.sms.txt").write_text("Custom: {{ order_ref }} cancelled.", encoding="utf-8")
    assert (
        Renderer(override_folder=folder).sms("cancelled", _context(PAYLOADS["cancelled"], None))
        == "Custom: WEB-100234 cancelled."
    )


NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CHANGE = [{"line_no": 1, "sku": "A", "previous": "2026-03-16", "current": "2026-03-17"}]


def test_an_eta_moving_by_less_than_the_minimum_is_not_told() -> None:
    told = {1: Told(date(2026, 3, 16), NOW - timedelta(days=3))}
    decision = decide(CHANGE, told, {1: date(2026, 3, 17)}, NOW, min_days=2, interval=timedelta(hours=24))
    assert not decision.send and decision.wait_until is None


def test_small_moves_add_up_against_what_the_customer_was_last_told() -> None:
    told = {1: Told(date(2026, 3, 16), NOW - timedelta(days=3))}
    decision = decide(CHANGE, told, {1: date(2026, 3, 18)}, NOW, min_days=2, interval=timedelta(hours=24))
    assert decision.send and decision.changes[0]["current"] == "2026-03-18"
    assert decision.changes[0]["previous"] == "2026-03-16"


def test_a_second_big_move_within_a_day_waits_until_a_day_after_the_last_message() -> None:
    told = {1: Told(date(2026, 3, 16), NOW - timedelta(hours=5))}
    decision = decide(CHANGE, told, {1: date(2026, 3, 25)}, NOW, min_days=2, interval=timedelta(hours=24))
    assert not decision.send and decision.wait_until == NOW + timedelta(hours=19)


def test_a_reservation_taken_back_is_told_at_once_whatever_the_date_or_the_last_message() -> None:
    told = {1: Told(None, NOW - timedelta(minutes=5), reserved=True)}  # "ready to ship", five minutes ago
    change = [{"line_no": 1, "sku": "A", "previous": None, "current": "2026-03-16"}]
    decision = decide(change, told, {1: date(2026, 3, 16)}, NOW, min_days=2, interval=timedelta(hours=24))
    assert decision.send and decision.changes[0]["was_reserved"] is True
    assert decision.changes[0]["current"] == "2026-03-16" and decision.changes[0]["previous"] is None
    covered_again = decide(change, told, {1: None}, NOW, min_days=2, interval=timedelta(hours=24), waiting=frozenset())
    assert not covered_again.send  # covered again before the message went: nothing to take back
    undated = decide(change, told, {1: None}, NOW, min_days=2, interval=timedelta(hours=24), waiting=frozenset({1}))
    assert undated.send and undated.changes[0]["current"] is None


def test_a_taken_back_reservation_is_worded_as_such_in_every_form() -> None:
    change = {"line_no": 1, "sku": "A", "name": "Alizarin", "current": "2026-03-16", "previous": None}
    context = {**_context(PAYLOADS["eta_changed"], None), "changes": [{**change, "was_reserved": True}]}
    email = Renderer().email("eta_changed", context)
    assert "were reserved for you, but the stock we had for them fell short" in email.text
    assert "Alizarin (A): no longer reserved, now expected by 2026-03-16" in email.text
    assert "fell short" in email.html
    assert "sorry, items reserved for order" in Renderer().sms("eta_changed", context)
    plain = Renderer().email("eta_changed", {**context, "changes": [change]}).text
    assert "has changed" in plain and "reserved" not in plain


def test_preference_and_consent_decide_the_channels() -> None:
    both = Preference("O", "both", sms_consent=True, source="customer")
    assert resolve(both, "a@x.com", "+447700900001", consent_from_order=False) == resolve(
        both, "a@x.com", "+447700900001", consent_from_order=False
    )
    r = resolve(both, "a@x.com", "+447700900001", consent_from_order=False)
    assert (r.email, r.phone) == ("a@x.com", "+447700900001")
    no_consent = resolve(None, None, "+447700900001", consent_from_order=False)
    assert no_consent.phone is None and "consent" in no_consent.reason
    assert resolve(None, None, "+447700900001", consent_from_order=True).phone == "+447700900001"
    none = resolve(Preference("O", "none", True, "customer"), "a@x.com", "+447700900001", consent_from_order=True)
    assert (none.email, none.phone) == (None, None)
    suppressed = resolve(both, "a@x.com", "+447700900001", consent_from_order=False, suppressed={"+447700900001"})
    assert (suppressed.email, suppressed.phone) == ("a@x.com", None)


def test_unsubscribe_links_are_signed() -> None:
    signer = LinkSigner("s3cret", "https://shop.example")
    token = signer.unsubscribe_token("a@x.com", "WEB-1")
    assert signer.read_unsubscribe(token) == {"a": "a@x.com", "o": "WEB-1"}
    assert signer.read_unsubscribe(token[:-2] + "xx") is None
    assert LinkSigner("other", "https://shop.example").read_unsubscribe(token) is None
    assert signer.headers("a@x.com", "WEB-1")["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_emails_and_phone_numbers_are_redacted_but_skus_dates_and_ids_are_kept() -> None:
    text = "to ada@example.com / +44 7700 900123 / 07700900123 about WEB-1001 WN-0102263 bo-12 on 2026-03-02 09:00"
    assert redact(text) == "to [email] / [phone] / [phone] about WEB-1001 WN-0102263 bo-12 on 2026-03-02 09:00"


def test_the_installed_redaction_cleans_records_every_handler_sees(caplog: pytest.LogCaptureFixture) -> None:
    from backorder.notify import redact as module

    module.install()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("backorder.test").warning("bounce for %s, phone %s", "ada@example.com", "+447700900123")
    assert "ada@example.com" not in caplog.text and "+447700900123" not in caplog.text
    assert "[email]" in caplog.text


@pytest.mark.parametrize(
    ("facts", "offered", "not_offered"),
    [
        ({}, "You can still choose to cancel the waiting items:", ("ship what is in stock", "substitute")),
        (
            {"can_ship_now": True},
            "You can still choose to ship what is in stock now or cancel the waiting items:",
            ("substitute",),
        ),
        (
            {"can_ship_now": True, "substitutes_offered": True},
            "ship what is in stock now, take a substitute or cancel the waiting items:",
            (),
        ),
    ],
)
def test_an_eta_message_offers_only_the_choices_the_order_has(
    facts: dict[str, bool], offered: str, not_offered: tuple[str, ...]
) -> None:
    context = {**_context(PAYLOADS["eta_changed"], None), "choices_url": "https://shop.example/s/T", **facts}
    body = Renderer().email("eta_changed", context).text
    assert offered in body
    assert not any(phrase in body for phrase in not_offered)


@pytest.mark.parametrize("can_ship_now", [True, False])
def test_an_allocated_message_offers_shipping_now_only_when_the_order_can(can_ship_now: bool) -> None:
    context = {
        **_context(PAYLOADS["allocated"], None),
        "choices_url": "https://shop.example/s/T",
        "can_ship_now": can_ship_now,
    }
    renderer = Renderer()
    email, sms = renderer.email("allocated", context), renderer.sms("allocated", context)
    assert ("ship what we have now" in email.text) is can_ship_now
    assert ("Ship what is here now" in (email.html or "")) is can_ship_now
    assert ("Ship now:" in sms) is can_ship_now


def test_a_backorder_sms_dates_a_ship_complete_order_by_the_line_that_really_waits() -> None:
    payload = {
        "event": "BackorderCreated",
        "order_id": "W-1",
        "channel": "web",
        "lines": [
            {"line_no": 1, "sku": "WN-PB29-5", "quantity": 1, "eta": "2026-03-12"},
            {"line_no": 2, "sku": "SCH-PB29-5", "quantity": 1, "eta": "2026-03-16"},  # in stock, held
        ],
    }
    renderer = Renderer()
    held = renderer.sms("backorder_created", {**_context(payload, None), "held_skus": ["SCH-PB29-5"]})
    assert "expected by 2026-03-12" in held
    plain = renderer.sms("backorder_created", _context(payload, None))
    assert "expected by 2026-03-16" in plain  # without the fact, the latest date, as before


def test_a_purchase_order_shows_amounts_in_the_shops_currency_and_where_to_deliver() -> None:
    payload = {
        "event": "PurchaseOrderSent",
        "po_number": "PO-1",
        "supplier": "WN",
        "lines": [{"sku": "WN-1", "supplier_sku": "W1", "quantity": 12, "unit_cost": "0.1234"}],
    }
    ship_to = "Art Shop Ltd\n1 Canal Street\nManchester M1 3HE"
    text = Renderer(currency="GBP", ship_to=ship_to).purchase_order(payload, supplier_name="W&N", total="1480.08").text
    assert "@ 0.1234 GBP" in text and "Total: 1,480.08 GBP" in text
    assert "Deliver to:\nArt Shop Ltd\n1 Canal Street\nManchester M1 3HE" in text
    bare = Renderer().purchase_order(payload, supplier_name="W&N", total="1480.08").text
    assert "Total: 1,480.08\n" in bare and "GBP" not in bare and "Deliver to" not in bare
