"""What the CLI says, and its exit code, when a command did not do what was asked (a user audit):

* ``reconcile`` of a channel whose pull failed prints its JSON and exits 1, with what to do;
* ``outbox retry`` / ``outbox replay`` name unknown (or, for replay, not dead) ids, exit 2 and
  change nothing, even for the ids that were fine;
* ``outbox list`` shows why a delivery was skipped (``OutboxQueue.finish`` keeps the reason);
* ``channels`` prints every webhook URL whole at 80 columns.

Each runs the real command (``CliRunner``) on a config file and the test's database."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner, Result

from backorder import cli
from backorder.bootstrap import Application, bootstrap, read_config
from backorder.store import tables as t
from backorder.store.outbox import AttemptOutcome

WEBHOOK_ONLY = """
[server]
public_url = "http://127.0.0.1:8000"

[channels.web]
platform = "shopify"
webhook_secret = "s"
"""

LONG_URL_CHANNEL = """
[server]
public_url = "https://backorder.art-materials-shop.example.com"

[channels.wholesale-eu]
platform = "woocommerce"
store_url = "https://shop.example.com"
consumer_key = "ck_x"
consumer_secret = "cs_x"
webhook_secret = "s"
"""


def run(config: Path, database_url: str, *args: str) -> Result:
    # no BACKORDER_* from the developer's shell; the console as wide as a plain terminal
    env = {"BACKORDER_CONFIG": None, "BACKORDER_DATABASE_URL": None, "COLUMNS": "80"}
    return CliRunner().invoke(cli.cli, ["--config", str(config), "--db", database_url, *args], env=env)


@pytest.fixture
def narrow_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out, "_width", 80)
    monkeypatch.setattr(cli.console, "_width", 80)


@pytest.fixture
def empty_config(tmp_path: Path) -> Path:
    path = tmp_path / "backorder.toml"
    path.write_text("")
    return path


@pytest.fixture
def seeded(database_url: str) -> Iterator[Application]:
    """The database ``database_url`` with its schema, through an app the test uses for setup."""
    app = bootstrap(
        read_config(None, environ={}), database_url=database_url, sandbox_folder=False, rng=random.Random(1)
    )
    try:
        yield app
    finally:
        app.close()


def outbox_row(app: Application, status: str) -> int:
    now = app.clock.now()
    row_id = app.queue.enqueue("notify_customer", "customer", {"order_id": "WEB-1"}, now)
    with app.engine.begin() as conn:
        conn.execute(
            update(t.outbox)
            .where(t.outbox.c.id == row_id)
            .values(status=status, attempts=8, next_attempt_at=now + timedelta(days=1))
        )
    return row_id


def states(app: Application) -> dict[int, tuple[str, int]]:
    return {int(r["id"]): (r["status"], r["attempts"]) for r in app.queue.list(limit=100)}


# --- reconcile ------------------------------------------------------------------------------


def test_reconcile_of_a_channel_without_credentials_exits_1_with_what_to_do(
    tmp_path: Path, database_url: str, narrow_console: None
) -> None:
    config = tmp_path / "backorder.toml"
    config.write_text(WEBHOOK_ONLY)

    result = run(config, database_url, "reconcile", "web")

    assert result.exit_code == 1, result.output
    printed = json.loads(result.stdout)  # the result is still printed, as before
    assert "not configured" in printed["channels"]["web"]["error"]
    # every key it lacks, not only the first one
    assert "channels.web.access_token, channels.web.shop_domain" in printed["channels"]["web"]["error"]
    assert "reconciliation failed for web" in result.stderr
    assert "credentials" in result.stderr and "[channels.web]" in result.stderr
    assert "docs/channels.md" in result.stderr


# --- outbox retry / replay --------------------------------------------------------------------


def test_outbox_retry_of_an_unknown_id_is_refused_and_changes_nothing(
    empty_config: Path, database_url: str, seeded: Application, narrow_console: None
) -> None:
    dead = outbox_row(seeded, "dead")
    before = states(seeded)

    result = run(empty_config, database_url, "outbox", "retry", str(dead), "99999")

    assert result.exit_code == 2, result.output
    assert "99999" in result.stderr and "nothing was changed" in result.stderr
    assert "due now" not in result.stdout
    assert states(seeded) == before  # the valid id was not retried either

    result = run(empty_config, database_url, "outbox", "retry", str(dead))
    assert result.exit_code == 0, result.output
    assert "1 delivery due now" in result.stdout
    assert states(seeded)[dead] == ("pending", 0)


def test_outbox_retry_names_a_row_it_cannot_make_due(
    empty_config: Path, database_url: str, seeded: Application, narrow_console: None
) -> None:
    sent = outbox_row(seeded, "sent")
    before = states(seeded)

    result = run(empty_config, database_url, "outbox", "retry", str(sent))

    assert result.exit_code == 2, result.output
    assert f"{sent} is sent" in result.stderr
    assert states(seeded) == before


def test_outbox_replay_refuses_unknown_and_not_dead_ids_and_changes_nothing(
    empty_config: Path, database_url: str, seeded: Application, narrow_console: None
) -> None:
    dead = outbox_row(seeded, "dead")
    pending = outbox_row(seeded, "pending")
    before = states(seeded)

    result = run(empty_config, database_url, "outbox", "replay", str(dead), str(pending), "424242")

    assert result.exit_code == 2, result.output
    assert "424242" in result.stderr and f"{pending} is pending" in result.stderr
    assert str(dead) not in result.stderr.replace("424242", "")  # only the bad ids are named
    assert "queued again" not in result.stdout
    assert states(seeded) == before

    result = run(empty_config, database_url, "outbox", "replay", str(dead))
    assert result.exit_code == 0, result.output
    assert "1 dead letter(s) queued again" in result.stdout
    assert states(seeded)[dead] == ("pending", 0)


# --- outbox list: why a delivery was skipped ------------------------------------------------------


def test_a_skipped_delivery_keeps_its_reason_and_a_sent_one_clears_its_error(
    empty_config: Path, database_url: str, seeded: Application, narrow_console: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue, now = seeded.queue, seeded.clock.now()
    skipped = queue.enqueue("notify_customer", "customer", {"order_id": "WEB-1"}, now)
    flaky = queue.enqueue("notify_customer", "customer", {"order_id": "WEB-2"}, now)
    lease = timedelta(minutes=5)
    claimed = {d.id: d for d in queue.claim(now, 10, lease)}
    reason = "no SMS consent is recorded for this order"
    assert queue.finish(claimed[skipped], AttemptOutcome("skipped", reason), "sms", now, now)
    assert queue.finish(claimed[flaky], AttemptOutcome("retry", "HTTP 503", next_attempt_at=now), "sms", now, now)
    (again,) = queue.claim(now, 10, lease)
    assert queue.finish(again, AttemptOutcome("sent", "202 accepted", provider_ref="SM1"), "sms", now, now)

    rows = {r["id"]: r for r in queue.list(limit=10)}
    assert (rows[skipped]["status"], rows[skipped]["last_error"]) == ("skipped", reason)
    assert (rows[flaky]["status"], rows[flaky]["last_error"]) == ("sent", None)

    monkeypatch.setattr(cli.out, "_width", 200)  # one line per row
    result = run(empty_config, database_url, "outbox", "list")
    assert result.exit_code == 0, result.output
    assert "last error / note" in result.stdout
    assert reason in result.stdout


# --- channels: the webhook URL whole ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "url"),
    [
        (WEBHOOK_ONLY, "http://127.0.0.1:8000/webhooks/shopify/web"),
        (LONG_URL_CHANNEL, "https://backorder.art-materials-shop.example.com/webhooks/woocommerce/wholesale-eu"),
    ],
)
def test_channels_prints_the_whole_webhook_url_at_80_columns(
    tmp_path: Path, database_url: str, narrow_console: None, text: str, url: str
) -> None:
    config = tmp_path / "backorder.toml"
    config.write_text(text)

    result = run(config, database_url, "channels")

    assert result.exit_code == 0, result.output
    assert url in result.stdout.splitlines()[-1]  # on one line, as it is to be copied
    assert "…" not in result.stdout.splitlines()[-1]


def test_channels_says_a_channel_without_a_webhook_secret_receives_nothing(tmp_path: Path, database_url: str) -> None:
    config = tmp_path / "backorder.toml"
    config.write_text('[channels.web]\nplatform = "shopify"\n')

    result = run(config, database_url, "channels", "--json")

    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["state"].startswith("receives nothing: set webhook_secret")


# --- ship ---------------------------------------------------------------------------------------


def test_ship_refuses_to_take_other_orders_reservations_unless_told_to(
    empty_config: Path, database_url: str, seeded: Application
) -> None:
    from decimal import Decimal

    from backorder.domain import commands
    from backorder.domain.commands import NewLine

    bus, now = seeded.bus, seeded.clock.now()
    bus.handle(commands.UpsertSupplier("WN", "Winsor & Newton", "po@wn.example", 10))
    bus.handle(commands.UpsertSku("RED", "Red", supplier="WN", unit_cost=Decimal("1")))
    bus.handle(commands.SetStockLevel("RED", "main", 3))
    bus.handle(commands.PlaceOrder("A", "web", now, (NewLine(1, "RED", 3),)))  # holds all 3
    bus.handle(commands.PlaceOrder("B", "web", now, (NewLine(1, "RED", 2),)))  # waits for 2
    refused = run(empty_config, database_url, "ship", "B", "1", "2")
    assert refused.exit_code == 2, refused.output
    said = " ".join(refused.output.split())
    assert "the other 2 unit(s) are reserved for other orders" in said
    assert (
        "Nothing was recorded. Ship at most 0, or if 2 really left, run the command again with --take-reserved" in said
    )
    with seeded.engine.connect() as conn:
        assert conn.execute(t.order_lines.select().where(t.order_lines.c.order_id == "B")).one().shipped == 0
    done = run(empty_config, database_url, "ship", "B", "1", "2", "--take-reserved")
    assert done.exit_code == 0, done.output
    with seeded.engine.connect() as conn:
        a = conn.execute(t.order_lines.select().where(t.order_lines.c.order_id == "A")).one()
    assert a.allocated == 1  # two of A's units left in B's parcel: A waits for them again


def test_export_customer_prints_what_is_held_and_refuses_a_non_address(
    empty_config: Path, database_url: str, seeded: Application
) -> None:
    from decimal import Decimal

    from backorder.domain import commands
    from backorder.domain.commands import NewLine

    bus = seeded.bus
    bus.handle(commands.UpsertSupplier("WN", "Winsor & Newton", "po@wn.example", 10))
    bus.handle(commands.UpsertSku("RED", "Red", supplier="WN", unit_cost=Decimal("1")))
    bus.handle(
        commands.PlaceOrder("A", "web", seeded.clock.now(), (NewLine(1, "RED", 1),), customer_email="ann@example.com")
    )
    done = run(empty_config, database_url, "export", "customer", "Ann@Example.com")
    assert done.exit_code == 0, done.output
    held = json.loads(done.stdout)
    assert [o["id"] for o in held["orders"]] == ["A"] and held["orders"][0]["lines"][0]["sku"] == "RED"
    nobody = run(empty_config, database_url, "export", "customer", "nobody@example.com")
    assert nobody.exit_code == 0 and json.loads(nobody.stdout)["orders"] == []
    refused = run(empty_config, database_url, "export", "customer", "ann")
    assert refused.exit_code == 2 and "is not an email address" in refused.output
