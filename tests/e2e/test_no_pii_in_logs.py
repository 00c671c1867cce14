"""Customer personal data never reaches the logs: real processes at DEBUG level run the main
scenarios (import, allocation, receipts, notifications, a provider rejection that echoes the
address back, explain, export) with canary addresses, and their stderr is searched."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CANARY_EMAILS = ("canary.ada.7731@pii-canary.example", "canary.bert.7732@pii-canary.example")
CANARY_PHONES = ("+447700977311", "+15005550987")
CANARY_NAME = "Canaryname Zyxwv"


class EchoingProvider(BaseHTTPRequestHandler):
    """A SendGrid stand-in that rejects every message, quoting the recipient back (as real
    providers do in error bodies)."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8", "replace")
        answer = ('{"errors":[{"message":"recipient rejected: ' + body[:400].replace('"', "'") + '"}]}').encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingProvider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "backorder.cli", "-vv", *args], capture_output=True, text=True, env=env, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_debug_logs_of_every_scenario_hold_no_customer_address_or_phone(tmp_path: Path, provider: str) -> None:
    data = Path(__file__).resolve().parents[2] / "src" / "backorder" / "demo_data"
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_id,channel,placed_at,priority,ship_complete,customer_email,customer_phone,line_no,sku,quantity,customer_name\n"
        f"W-1,web,2026-11-20T09:00:00Z,0,false,{CANARY_EMAILS[0]},{CANARY_PHONES[0]},1,WN-PWC-263-14,40,{CANARY_NAME}\n"
        f"W-2,web,2026-11-20T10:00:00Z,0,false,{CANARY_EMAILS[1]},,1,WN-PWC-263-14,5,{CANARY_NAME}\n"
        f"P-3,pos,2026-11-20T11:00:00Z,1,false,,{CANARY_PHONES[1]},1,WN-PWC-263-14,3,{CANARY_NAME}\n"
    )
    receipts = tmp_path / "receipts.csv"
    receipts.write_text(
        "sku,location,quantity,received_at,po_number\nWN-PWC-263-14,warehouse,30,2026-11-21T08:00:00Z,\n"
    )
    config = tmp_path / "backorder.toml"
    config.write_text(
        '[notify.email]\nprovider = "sendgrid"\napi_key = "${SG_KEY}"\nfrom_email = "shop@example.com"\n'
        f'base_url = "{provider}"\n'
        "[worker]\nmax_attempts = 1\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKORDER_")}
    env.update(
        BACKORDER_DATABASE_URL=f"sqlite:///{tmp_path / 'pii.db'}",
        BACKORDER_CONFIG=str(config),
        SG_KEY="SG.test-key",
        COLUMNS="200",
    )
    stderr = []
    for kind in ("suppliers", "skus", "stock"):
        stderr.append(run(["import", str(data / f"{kind}.csv"), "--kind", kind], env).stderr)
    stderr.append(run(["import", str(orders), "--kind", "orders"], env).stderr)
    stderr.append(run(["outbox", "flush"], env).stderr)
    stderr.append(run(["import", str(receipts), "--kind", "receipts"], env).stderr)
    flushed = run(["outbox", "flush"], env)
    stderr.append(flushed.stderr)
    stderr.append(run(["explain", "W-1"], env).stderr)
    stderr.append(run(["export", "lines"], env).stderr)
    listed = run(["outbox", "list", "--status", "dead"], env)
    stderr.append(listed.stderr)
    logs = "\n".join(stderr)
    # the scenarios really ran and really logged: the provider rejected the messages (quoting
    # them back), they were dead-lettered, and that was logged
    assert "DEBUG" in logs
    assert "dead-lettered" in logs and "HTTP 400" in logs
    for canary in (*CANARY_EMAILS, *CANARY_PHONES, CANARY_NAME, "pii-canary"):
        assert canary not in logs, f"{canary} leaked into the logs"
