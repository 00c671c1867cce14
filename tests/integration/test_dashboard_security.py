"""The dashboard's security and staff actions against a real database: sign-in, sessions, CSRF,
roles, throttling, no state change on GET, and each action going through the bus and the audit log."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import insert, select
from test_dashboard_support import PASSWORD, add_user, client, csrf_of, seed, sign_in

from backorder.bootstrap import Application
from backorder.store import tables as t

if TYPE_CHECKING:
    from conftest import Db


@pytest.fixture
def staffed(app: Application) -> Application:
    seed(app)
    for name, role in (("vera", "viewer"), ("otto", "operator"), ("ada", "admin")):
        add_user(app, name, role)
    return app


def audit_actions(app: Application) -> list[tuple[str, str, str]]:
    with app.engine.connect() as conn:
        return [(r.actor, r.action, r.outcome) for r in conn.execute(select(t.audit_log).order_by(t.audit_log.c.id))]


def test_pages_need_a_session_and_send_visitors_to_the_login_page(staffed: Application) -> None:
    http = client(staffed)
    response = http.get("/dashboard/backorders", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fdashboard%2Fbackorders"


def test_signing_in_sets_an_httponly_samesite_lax_session_cookie_and_stores_only_an_argon2_hash(
    staffed: Application,
) -> None:
    http = client(staffed)
    page = http.get("/login")
    response = http.post(
        "/login",
        data={"username": "vera", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"]
    assert "bo_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    with staffed.engine.connect() as conn:
        stored = conn.execute(
            select(t.staff_users.c.password_hash).where(t.staff_users.c.username == "vera")
        ).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert http.get("/dashboard").status_code == 200


def test_the_session_cookie_is_secure_behind_tls(staffed: Application) -> None:
    http = client(staffed, base_url="https://testserver")
    page = http.get("/login")
    response = http.post(
        "/login",
        data={"username": "vera", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert "Secure" in response.headers["set-cookie"]


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account_for_a_while(staffed: Application) -> None:
    http = client(staffed)
    token = csrf_of(http.get("/login").text)
    for _ in range(5):
        response = http.post("/login", data={"username": "otto", "password": "wrong password", "csrf_token": token})
        assert response.status_code == 401
    locked = http.post("/login", data={"username": "otto", "password": PASSWORD, "csrf_token": token})
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert int(locked.headers["retry-after"]) > 0
    staffed.clock.advance(minutes=16)  # type: ignore[attr-defined]
    assert (
        http.post(
            "/login", data={"username": "otto", "password": PASSWORD, "csrf_token": token}, follow_redirects=False
        ).status_code
        == 303
    )
    assert ("user:otto", "login", "failed") in audit_actions(staffed)


def test_the_login_form_itself_needs_its_csrf_token(staffed: Application) -> None:
    http = client(staffed)
    http.get("/login")
    response = http.post("/login", data={"username": "vera", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 400 and "bo_session" not in response.headers.get("set-cookie", "")


def test_a_post_without_the_sessions_csrf_token_changes_nothing(staffed: Application, db: Db) -> None:
    http = client(staffed)
    sign_in(http, "otto")
    before = db.line("O-1")
    response = http.post(
        "/dashboard/backorders/bulk", data={"action": "cancel", "sel": "O-1|1|WN-PB29-5", "csrf_token": "forged"}
    )
    assert response.status_code == 403 and "Nothing was changed" in response.text
    assert db.line("O-1") == before


def test_viewers_can_read_but_not_act(staffed: Application, db: Db) -> None:
    http = client(staffed)
    token = sign_in(http, "vera")
    assert "Cancel selected lines" not in http.get("/dashboard/backorders").text
    response = http.post(
        "/dashboard/backorders/bulk", data={"action": "cancel", "sel": "O-1|1|WN-PB29-5", "csrf_token": token}
    )
    assert response.status_code == 403 and "operator" in response.text
    assert db.line("O-1")["status"] == "open"
    assert http.get("/dashboard/audit").status_code == 403


def test_an_operator_cancels_selected_lines_through_the_bus_and_it_is_audited(staffed: Application, db: Db) -> None:
    http = client(staffed)
    token = sign_in(http, "otto")
    response = http.post(
        "/dashboard/backorders/bulk",
        data={"action": "cancel", "sel": "O-1|1|WN-PB29-5", "csrf_token": token, "next": "/dashboard/backorders"},
    )
    assert response.status_code == 200 and "Cancelled lines on 1 order" in response.text
    assert db.line("O-1", 1)["status"] == "cancelled"
    assert db.line("O-1", 2)["status"] == "open"
    assert db.count(t.outbox, t.outbox.c.payload["event"].as_string() == "BackorderCancelled") >= 1
    assert ("user:otto", "cancel_lines", "ok") in audit_actions(staffed)


def test_bulk_priority_change_and_rerun_are_applied_and_audited(staffed: Application, db: Db) -> None:
    http = client(staffed)
    token = sign_in(http, "otto")
    http.post(
        "/dashboard/backorders/bulk",
        data={"action": "priority", "priority": "50", "sel": ["O-2|1|WN-PB29-5"], "csrf_token": token},
    )
    assert db.rows(t.orders, t.orders.c.id == "O-2")[0]["priority"] == 50
    http.post("/dashboard/backorders/bulk", data={"action": "rerun", "sel": ["O-2|1|WN-PB29-5"], "csrf_token": token})
    actions = [a for _, a, _ in audit_actions(staffed)]
    assert "change_priority" in actions and "run_backorder_processing" in actions


def test_get_requests_never_change_state(staffed: Application, db: Db) -> None:
    http = client(staffed)
    sign_in(http, "ada")
    before = db.snapshot()
    for path in (
        "/dashboard",
        "/dashboard/backorders?status=all&sort=eta",
        "/dashboard/orders/O-1",
        "/dashboard/skus",
        "/dashboard/skus/WN-PB29-5",
        "/dashboard/purchase-orders",
        "/dashboard/outbox",
        "/dashboard/inbox",
        "/dashboard/connectors",
        "/dashboard/audit",
        "/metrics",
        "/dashboard/backorders/bulk?action=cancel&sel=O-1|1|X",
    ):
        assert http.get(path).status_code in (200, 405), path
    after = db.snapshot()
    assert before == after


def test_backorders_filter_by_supplier_channel_and_age(staffed: Application) -> None:
    http = client(staffed)
    sign_in(http, "vera")
    by_channel = http.get("/dashboard/backorders?channel=pos").text
    assert "O-2" in by_channel and "O-1" not in by_channel
    old = http.get("/dashboard/backorders?min_age=5").text
    assert "O-1" in old and "O-2" not in old
    partial = http.get("/dashboard/backorders?supplier=WN", headers={"HX-Request": "true", "HX-Target": "results"})
    assert "<html" not in partial.text and "O-3" in partial.text


def test_staff_find_an_order_by_the_number_its_customer_quotes(staffed: Application) -> None:
    http = client(staffed)
    sign_in(http, "vera")
    for typed in ("O-1", "#1001", "1001"):
        found = http.get(
            "/dashboard/backorders", params={"order": typed}, headers={"HX-Request": "true", "HX-Target": "results"}
        )
        assert "O-1" in found.text and "O-2" not in found.text and "O-3" not in found.text, typed
    assert "O-1" not in http.get("/dashboard/backorders", params={"order": "1002"}).text.split("<tbody")[-1]
    page = http.get("/dashboard/orders/O-1").text
    assert "the customer&#39;s number: #1001" in page or "the customer's number: #1001" in page


def test_overview_shows_value_at_risk_and_links_each_number_to_its_list(staffed: Application) -> None:
    http = client(staffed)
    sign_in(http, "vera")
    page = http.get("/dashboard").text
    # waiting: O-1 2×9.49, O-2 1×9.49, O-3 4×9.49 (one unit of light red went to O-1)
    assert "66.43" in page
    assert 'href="/dashboard/purchase-orders?status=draft"' in page and 'href="/dashboard/outbox?status=dead"' in page


def test_an_operator_edits_and_sends_a_draft_purchase_order(staffed: Application, db: Db) -> None:
    http = client(staffed)
    token = sign_in(http, "otto")
    (draft,) = db.rows(t.purchase_orders, t.purchase_orders.c.supplier == "WN")
    page = http.get(f"/dashboard/purchase-orders/{draft['number']}").text
    assert 'name="qty__WN-PB29-5"' in page
    http.post(f"/dashboard/purchase-orders/{draft['number']}/lines", data={"qty__WN-PB29-5": "40", "csrf_token": token})
    (line,) = db.rows(t.po_lines, t.po_lines.c.po_id == draft["id"], t.po_lines.c.sku == "WN-PB29-5")
    assert line["quantity"] == 40
    sent = http.post(f"/dashboard/purchase-orders/{draft['number']}/send", data={"csrf_token": token})
    assert "Sent to the supplier" in sent.text
    assert db.rows(t.purchase_orders, t.purchase_orders.c.id == draft["id"])[0]["status"] == "sent"
    refused = http.post(
        f"/dashboard/purchase-orders/{draft['number']}/lines", data={"qty__WN-PB29-5": "41", "csrf_token": token}
    )
    assert "only drafts" in refused.text
    assert ("user:otto", "edit_purchase_order_line", "refused") in audit_actions(staffed)


def test_an_operator_replays_a_dead_letter_and_reprocesses_a_failed_inbox_event(staffed: Application, db: Db) -> None:
    now = staffed.clock.now()
    with staffed.engine.begin() as conn:
        dead_id = conn.execute(
            insert(t.outbox).values(
                action="notify_staff",
                target="staff",
                payload={"event": "DeadLetter"},
                status="dead",
                attempts=8,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
                last_error="HTTP 500 from provider",
            )
        ).inserted_primary_key[0]
        inbox_id = conn.execute(
            insert(t.inbox).values(
                platform="shopify",
                channel="web",
                event_key="e-1",
                topic="orders/create",
                headers={},
                body=b"{}",
                status="failed",
                error="no line items",
                received_at=now,
            )
        ).inserted_primary_key[0]
    http = client(staffed)
    token = sign_in(http, "otto")
    assert "HTTP 500 from provider" in http.get("/dashboard/outbox?status=dead").text
    done = http.post("/dashboard/outbox/retry", data={"id": str(dead_id), "csrf_token": token})
    assert "Replayed 1 dead letter" in done.text
    assert db.rows(t.outbox, t.outbox.c.id == dead_id)[0]["status"] == "pending"
    assert "no line items" in http.get("/dashboard/inbox?status=failed").text
    http.post(f"/dashboard/inbox/{inbox_id}/reprocess", data={"csrf_token": token})
    assert db.rows(t.inbox, t.inbox.c.id == inbox_id)[0]["status"] == "received"
    actions = [a for _, a, _ in audit_actions(staffed)]
    assert "outbox_retry" in actions and "inbox_reprocess" in actions


def test_signing_out_ends_the_session(staffed: Application) -> None:
    http = client(staffed)
    token = sign_in(http, "vera")
    http.post("/logout", data={"csrf_token": token})
    assert http.get("/dashboard", follow_redirects=False).status_code == 303


def test_metrics_expose_queue_depths_and_backorder_gauges(staffed: Application) -> None:
    text = client(staffed).get("/metrics").text
    assert "backorder_outbox_rows{" in text
    assert "backorder_open_lines 3.0" in text
    assert "backorder_oldest_backorder_age_seconds" in text


def test_amounts_carry_the_shops_currency_when_one_is_set(staffed: Application) -> None:
    http = client(staffed)
    sign_in(http, "vera")
    assert "value at risk" in http.get("/dashboard").text and " GBP" not in http.get("/dashboard").text
    staffed.config = staffed.config.model_copy(
        update={"messages": staffed.config.messages.model_copy(update={"currency": "GBP"})}
    )
    http = client(staffed)  # a new app: the dashboard reads the setting when it is built
    sign_in(http, "vera")
    overview = http.get("/dashboard").text
    assert re.search(r'<span class="n">[\d,]+\.\d\d GBP</span><span class="l">value at risk', overview), overview


def test_enter_in_the_priority_box_sets_the_priority_and_destructive_buttons_ask_first(staffed: Application) -> None:
    http = client(staffed)
    sign_in(http, "otto")
    page = http.get("/dashboard/backorders").text
    bulk = page[page.index('id="bulk"') :]
    buttons = re.findall(r'<button type="submit" name="action" value="(\w+)"([^>]*)>', bulk)
    # the first submit button is the one a browser presses for Enter in a field of the form
    assert buttons[0][0] == "priority"
    assert "data-confirm" in dict(buttons)["cancel"] and "cannot be undone" in dict(buttons)["cancel"]


def test_out_of_range_numbers_typed_by_staff_are_refused_not_clamped(staffed: Application, db: Db) -> None:
    http = client(staffed)
    token = sign_in(http, "otto")
    (draft,) = db.rows(t.purchase_orders, t.purchase_orders.c.supplier == "WN")
    (before,) = db.rows(t.po_lines, t.po_lines.c.po_id == draft["id"], t.po_lines.c.sku == "WN-PB29-5")
    typo = http.post(
        f"/dashboard/purchase-orders/{draft['number']}/lines", data={"qty__WN-PB29-5": "99999999", "csrf_token": token}
    )
    assert "WN-PB29-5: 99,999,999 is outside 0…1,000,000, not changed" in typo.text
    (after,) = db.rows(t.po_lines, t.po_lines.c.po_id == draft["id"], t.po_lines.c.sku == "WN-PB29-5")
    assert after["quantity"] == before["quantity"]
    page = http.get(f"/dashboard/purchase-orders/{draft['number']}").text
    assert "data-needs-saved" in page and "data-confirm=" in page  # Send asks, and refuses unsaved edits
    priority = http.post(
        "/dashboard/backorders/bulk",
        data={"action": "priority", "priority": "5000", "sel": "O-1|1|WN-PB29-5", "csrf_token": token},
    )
    assert "Priority not set: 5,000 is outside -1,000…1,000" in priority.text
    assert db.rows(t.orders, t.orders.c.id == "O-1")[0]["priority"] == 0


def test_only_the_apps_own_notices_are_shown_and_bad_urls_are_refused(staffed: Application) -> None:
    http = client(staffed)
    token = sign_in(http, "otto")
    forged = http.get("/dashboard", params={"notice": "Session expired: sign in at https://evil.example"}).text
    assert "evil.example" not in forged
    for mac in ("é", "x" * 24, ""):  # any signature, ASCII or not, is compared, never a 500
        page = http.get("/dashboard", params={"notice": "hello", "nm": mac})
        assert page.status_code == 200 and "hello" not in page.text
    assert http.get("/login", params={"notice": "x", "nm": "é"}).status_code == 200
    real = http.post("/dashboard/backorders/bulk", data={"action": "priority", "priority": "1", "csrf_token": token})
    assert "Select at least one line first." in real.text  # the app's own redirect still shows its notice
    for url in ("/dashboard/orders/%00", "/dashboard/skus?q=%00", "/api/v1/orders/%00"):
        assert http.get(url).status_code == 400, url
    assert http.get("/dashboard/backorders", params={"min_age": "99999999999"}).status_code == 200


def test_a_bulk_action_returns_to_the_list_as_filtered_even_when_htmx_applied_the_filter(
    staffed: Application,
) -> None:
    http = client(staffed)
    sign_in(http, "otto")
    partial = http.get(
        "/dashboard/backorders", params={"supplier": "WN"}, headers={"HX-Request": "true", "HX-Target": "results"}
    ).text
    assert 'name="next" value="/dashboard/backorders?supplier=WN"' in partial


def test_a_nul_in_a_form_or_a_user_name_is_refused_not_a_server_error(staffed: Application, db: Db) -> None:
    http = client(staffed)
    token = sign_in(http, "otto")
    before = db.snapshot()
    bulk = http.post("/dashboard/backorders/bulk", data={"action": "cancel", "sel": "O-1\x00|1|X", "csrf_token": token})
    assert bulk.status_code == 400 and db.snapshot() == before
    other = client(staffed)
    page = other.get("/login")
    refused = other.post("/login", data={"username": "ot\x00to", "password": "x" * 9, "csrf_token": csrf_of(page.text)})
    assert refused.status_code in (200, 401) and "Sign in" in refused.text
