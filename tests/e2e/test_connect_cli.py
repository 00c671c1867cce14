"""`backorder connect` as a user runs it (a real process, a WooCommerce REST stand-in on loopback):
what it registered — or why the platform refused — is recorded and `backorder channels` shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

BACKORDER = [sys.executable, "-m", "backorder.cli"]


class Woo:
    def __init__(self) -> None:
        self.status = 201
        self.created: list[dict[str, Any]] = []


@pytest.fixture
def woo() -> Iterator[tuple[str, Woo]]:
    state = Woo()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # GET /webhooks: the ones made so far (page 1), all active
            ok = self.path.startswith("/wp-json/wc/v3/webhooks?") and state.status < 400
            page_1 = "page=1" in self.path.split("?", 1)[-1].split("&")
            answer: Any = (
                [{"id": 141 + i, "status": "active", **c} for i, c in enumerate(state.created)] if page_1 else []
            )
            data = json.dumps(answer if ok else {"code": "woocommerce_rest_cannot_view"}).encode()
            self.send_response(200 if ok else state.status if state.status >= 400 else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/wp-json/wc/v3/webhooks" and state.status < 400:
                state.created.append(json.loads(raw))
                answer: Any = {"id": 140 + len(state.created), **state.created[-1]}
            else:
                answer = {"code": "woocommerce_rest_cannot_create", "message": "Sorry, you cannot create resources."}
            data = json.dumps(answer).encode()
            self.send_response(state.status if self.path == "/wp-json/wc/v3/webhooks" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKORDER_")}
    env["COLUMNS"] = "250"
    return subprocess.run(
        [*BACKORDER, "--config", str(config), *args], capture_output=True, text=True, env=env, timeout=120
    )


def write_config(tmp_path: Path, woo_url: str) -> Path:
    config = tmp_path / "backorder.toml"
    config.write_text(
        f"""
database_url = "sqlite:///{tmp_path / "connect.db"}"

[server]
public_url = "https://backorder.example.test"

[channels.woo]
platform = "woocommerce"
base_url = "{woo_url}"
consumer_key = "ck_e2e"
consumer_secret = "cs_e2e"
webhook_secret = "woo-e2e-secret"
allowed_hosts = ["127.0.0.1"]
""",
        encoding="utf-8",
    )
    return config


def test_connect_records_the_webhooks_it_made_and_channels_shows_them(tmp_path: Path, woo: tuple[str, Woo]) -> None:
    url, state = woo
    config = write_config(tmp_path, url)
    before = json.loads(run(config, "channels", "--json").stdout)
    assert before[0]["webhooks"] == "not registered by `backorder connect woocommerce woo` yet"

    result = run(config, "connect", "woocommerce", "woo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c["topic"] for c in state.created] == ["order.created", "order.updated", "order.deleted", "product.updated"]
    assert all(c["delivery_url"] == "https://backorder.example.test/webhooks/woocommerce/woo" for c in state.created)
    assert (
        "order.created → https://backorder.example.test/webhooks/woocommerce/woo: registered (id 141)" in result.stdout
    )

    (row,) = json.loads(run(config, "channels", "--json").stdout)
    assert row["webhooks"].startswith(
        "4 of 4 topic(s) registered to https://backorder.example.test/webhooks/woocommerce/woo"
    )
    assert [(r["topic"], r["provider_id"], r["error"]) for r in row["registrations"]] == [
        ("order.created", "141", None),
        ("order.deleted", "143", None),
        ("order.updated", "142", None),
        ("product.updated", "144", None),
    ]

    again = run(config, "connect", "woocommerce", "woo")  # e.g. after changing public_url back
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(state.created) == 4  # it found the four: none made twice (each would deliver again)


def test_a_refused_connect_is_recorded_with_the_reason_and_exits_non_zero(tmp_path: Path, woo: tuple[str, Woo]) -> None:
    url, state = woo
    state.status = 401
    config = write_config(tmp_path, url)
    result = run(config, "connect", "woocommerce", "woo")
    assert result.returncode == 2
    assert "FAILED" in result.stdout
    (row,) = json.loads(run(config, "channels", "--json").stdout)
    assert row["webhooks"].startswith("0 of 4 topic(s) registered")
    assert all(r["error"] and "401" in r["error"] for r in row["registrations"])
