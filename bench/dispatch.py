"""Outbox delivery throughput against a provider that takes its time to answer.

N backordered orders are placed through the bus (each writes its ``notify_customer`` row, as in
production); then the real dispatcher delivers them: the fan-out row, then the email, through
the real SendGrid connector and its HTTP client, to a fake SendGrid on loopback that answers
202 after ``--latency-ms``. Timed: from the first claim until every email has been answered.
The comparison baseline is ``delivery_threads = 1`` (one delivery at a time, as before) on the
same data in the same run; each setting runs on its own fresh database.

    .venv/bin/python bench/dispatch.py --db both
    .venv/bin/python bench/dispatch.py --db sqlite --orders 200 --threads 1,4   # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common


class SlowSendGrid:
    """Answers ``POST /v3/mail/send`` with 202 after ``latency`` seconds; counts the answers."""

    def __init__(self, latency: float) -> None:
        self.answered = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real API

            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with fake._lock:
                    fake.in_flight += 1
                    fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
                time.sleep(latency)
                with fake._lock:
                    fake.in_flight -= 1
                    fake.answered += 1
                self.send_response(202)
                self.send_header("X-Message-Id", f"sg-{fake.answered}")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _config(path: Path, url: str, provider_url: str, threads: int) -> None:
    path.write_text(
        f"""
database_url = "{url}"
locations = ["main"]

[worker]
batch_size = 50
delivery_threads = {threads}
bop_interval_minutes = 0

[notify.email]
provider = "sendgrid"
api_key = "SG.bench"
from_email = "shop@example.com"
base_url = "{provider_url}"

[rules]
BackorderCreated = ["notify_customer"]
""",
        encoding="utf-8",
    )


def run_one(db: str, orders: int, threads: int, latency: float, work: Path) -> dict[str, Any]:
    from backorder.bootstrap import bootstrap, read_config
    from backorder.domain import commands as c

    provider = SlowSendGrid(latency)
    name = f"bench_dispatch_{db}_{threads}"
    url = common.fresh_database(db, name)
    config = work / f"{name}.toml"
    _config(config, url, provider.url, threads)
    app = bootstrap(read_config(config, environ={}), sandbox_folder=False)
    try:
        app.bus.handle(c.UpsertSku("INK-1", "Bench ink"))
        at = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
        for n in range(orders):
            app.bus.handle(
                c.PlaceOrder(
                    f"D-{n:05d}",
                    "web",
                    at,
                    (c.NewLine(1, "INK-1", 1),),
                    customer_email=f"c{n}@example.com",
                    customer_name=f"Customer {n}",
                )
            )
        started = time.perf_counter()
        stats = app.dispatcher.drain(limit=50)
        seconds = time.perf_counter() - started
        counts = app.queue.counts()
    finally:
        app.close()
        provider.close()
        common.drop_database(db, name)
    return {
        "db": db,
        "threads": threads,
        "orders": orders,
        "latency_ms": latency * 1000,
        "seconds": round(seconds, 3),
        "emails_answered": provider.answered,
        "emails_per_second": round(provider.answered / seconds, 1),
        "rows_handled": stats.claimed,
        "outbox": counts,
        "most_requests_in_flight": provider.most_in_flight,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--latency-ms", type=float, default=100.0, help="the fake provider's answer time")
    parser.add_argument("--threads", default="1,4,8", help="delivery_threads settings to compare (first: baseline)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    settings = [int(x) for x in args.threads.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    results = []
    for db in dbs:
        for round_no in range(args.repeat):
            for threads in settings:
                r = run_one(db, args.orders, threads, args.latency_ms / 1000, work)
                r["round"] = round_no
                results.append(r)
                print(
                    f"[{db}] threads {threads}: {r['emails_answered']} emails in {r['seconds']:.2f}s = "
                    f"{r['emails_per_second']:.1f}/s (at most {r['most_requests_in_flight']} at once) "
                    f"outbox {r['outbox']}",
                    flush=True,
                )
    print("\n| database | delivery_threads | emails/s (median) | × one thread |")
    print("|---|---|---|---|")
    for db in dbs:
        base = common.median([r["emails_per_second"] for r in results if r["db"] == db and r["threads"] == settings[0]])
        for threads in settings:
            rate = common.median([r["emails_per_second"] for r in results if r["db"] == db and r["threads"] == threads])
            print(f"| {db} | {threads} | {rate:.1f} | {rate / base:.2f} |")
    out = args.json or common.OUT / f"dispatch-{args.db}.json"
    out.write_text(json.dumps({"machine": common.machine(), "command": sys.argv, "results": results}, indent=2))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
