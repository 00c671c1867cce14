"""Ingest benchmark (issue 3): signed Shopify ``orders/create`` webhooks against the real server.

Three measurements, each against a fresh ``backorder serve`` process on a loopback port (temporary
config and database), with the load generator in another process (``python bench/ingest.py
--load ...``: asyncio, raw HTTP/1.1 keep-alive connections, bounded request counts):

1. **Throughput** (closed loop, C connections, N requests): the webhook ingress with
   ``--no-worker`` (each 200 follows a committed inbox row) beside a no-op ASGI app served by
   the same uvicorn with the same log level, in the same run.
2. **Latency at 1,000 requests/s** (open loop: requests are sent on a fixed schedule and latency
   is measured from the scheduled time, so a stall is not hidden by the generator waiting).
3. **Webhook → backorder recorded** at 200 orders/s, the server with ``--no-worker`` and one
   ``backorder worker`` process beside it (the second core):
   from the send time to ``orders.created_at`` written by the processor (same machine clock).

Usage: ``python bench/ingest.py [--db sqlite|postgres] [--quick]``; results go to
``bench/out/ingest-<db>.json`` and are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SECRET = "bench-shopify-secret"
BACKORDER = Path(sys.executable).parent / "backorder"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SKUS = 200


# --- the no-op app, served the same way --------------------------------------------------------


async def noop_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:  # read the body, as the ingress does
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"status":"accepted"}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def serve_noop(port: int) -> None:
    import uvicorn

    uvicorn.run(noop_app, host="127.0.0.1", port=port, log_level="info")  # the same log level as `backorder serve`


# --- the load generator (run in its own process) -----------------------------------------------


def order_body(n: int, run: str) -> bytes:
    return json.dumps(
        {
            "id": 10_000_000 + n,
            "admin_graphql_api_id": f"gid://shopify/Order/{10_000_000 + n}",
            "created_at": "2026-11-27T09:00:00Z",
            "updated_at": "2026-11-27T09:00:00Z",
            "email": f"c{n}@example.com",
            "customer": {"first_name": "Bench", "last_name": str(n)},
            "note": run,
            "line_items": [
                {"id": n, "sku": f"SKU{n % SKUS:04d}", "quantity": 1, "title": "Bench item", "price": "9.50"}
            ],
        }
    ).encode()


def request_bytes(path: str, n: int, run: str) -> bytes:
    body = order_body(n, run)
    digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Shopify-Topic: orders/create\r\nX-Shopify-Hmac-Sha256: {digest}\r\n"
        f"X-Shopify-Event-Id: {run}-{n}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def _closed_loop(
    port: int, path: str, total: int, connections: int, run: str, expect: int = 200
) -> dict[str, Any]:
    counter = iter(range(total))
    latencies: list[float] = []
    errors = 0
    sent_at: dict[int, float] = {}

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in counter:
            data = request_bytes(path, n, run)
            start = time.perf_counter()
            sent_at[n] = time.time()
            writer.write(data)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - start)
            errors += status != expect
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    return {
        "requests": total,
        "errors": errors,
        "seconds": elapsed,
        "rps": total / elapsed,
        **_percentiles(latencies),
        "sent_at": sent_at,
    }


async def _open_loop(port: int, path: str, rate: float, total: int, connections: int, run: str) -> dict[str, Any]:
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0
    sent_at: dict[int, float] = {}

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            n, scheduled = await queue.get()
            if n < 0:
                break
            sent_at[n] = time.time() - (time.perf_counter() - scheduled)
            writer.write(request_bytes(path, n, run))
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - scheduled)  # from the scheduled time: no coordinated omission
            errors += status != 200
        writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    began = time.perf_counter()
    for n in range(total):
        scheduled = began + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((n, scheduled))
    for _ in workers:
        queue.put_nowait((-1, 0.0))
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - began
    return {
        "requests": total,
        "errors": errors,
        "seconds": elapsed,
        "offered_rps": rate,
        "achieved_rps": total / elapsed,
        **_percentiles(latencies),
        "sent_at": sent_at,
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": ordered[-1] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def load_main(args: argparse.Namespace) -> None:
    if args.rate:
        result = asyncio.run(_open_loop(args.port, args.path, args.rate, args.requests, args.connections, args.run))
    else:
        result = asyncio.run(_closed_loop(args.port, args.path, args.requests, args.connections, args.run, args.expect))
    if not args.keep_sent:
        result.pop("sent_at")
    print(json.dumps(result))


# --- orchestration -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not come up")


def run_load(
    port: int,
    path: str,
    requests: int,
    connections: int,
    rate: float | None,
    run: str,
    keep_sent: bool = False,
    expect: int = 200,
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--load",
        "--port",
        str(port),
        "--path",
        path,
        "--requests",
        str(requests),
        "--connections",
        str(connections),
        "--run",
        run,
        "--expect",
        str(expect),
    ]
    if rate:
        cmd += ["--rate", str(rate)]
    if keep_sent:
        cmd.append("--keep-sent")
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    return json.loads(done.stdout.strip().splitlines()[-1])


class Server:
    """`backorder serve` on a fresh database, or the no-op app, in a child process."""

    def __init__(self, kind: str, db: str, worker: bool, workdir: Path) -> None:
        self.kind, self.db, self.worker, self.workdir = kind, db, worker, workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.database_url = ""
        self.config = Path()

    def __enter__(self) -> Server:
        log = (self.workdir / f"{self.kind}-{self.port}.log").open("wb")
        if self.kind == "noop":
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-noop", str(self.port)]
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            wait_http(self.port, "/", self.process)
            return self
        self.database_url = self._database()
        config = self.config = self.workdir / f"backorder-{self.port}.toml"
        config.write_text(
            f"""
database_url = "{self.database_url}"
locations = ["main"]
[server]
host = "127.0.0.1"
port = {self.port}
[worker]
poll_interval_seconds = 0.02
bop_interval_minutes = 0
batch_size = 20
[channels.web]
platform = "shopify"
webhook_secret = "{SECRET}"
reconcile_minutes = 0
""",
            encoding="utf-8",
        )
        self._seed(config)
        cmd = [str(BACKORDER), "--config", str(config), "serve"] + ([] if self.worker else ["--no-worker"])
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_http(self.port, "/healthz", self.process)
        return self

    def _database(self) -> str:
        if self.db == "sqlite":
            return f"sqlite:///{self.workdir / f'ingest-{self.port}.db'}"
        from sqlalchemy import create_engine

        name = f"bench_ingest_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

    def _seed(self, config: Path) -> None:
        sys.path.insert(0, str(HERE.parent / "src"))
        from backorder.bootstrap import bootstrap, read_config
        from backorder.domain import commands as c

        app = bootstrap(read_config(config, environ={}), sandbox_folder=False)
        try:
            app.bus.handle(c.ImportBatch(tuple(c.UpsertSku(f"SKU{i:04d}", f"Bench SKU {i}") for i in range(SKUS))))
        finally:
            app.close()

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.db == "postgres" and self.database_url:
            from sqlalchemy import create_engine

            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.database_url.rsplit("/", 1)[1]}" WITH (FORCE)')
            admin.dispose()

    def count(self, sql: str) -> int:
        from sqlalchemy import create_engine

        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql(sql).scalar_one())
        finally:
            engine.dispose()

    def created_at(self) -> dict[str, float]:
        from sqlalchemy import create_engine

        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                rows = conn.exec_driver_sql("SELECT id, created_at FROM orders").all()
        finally:
            engine.dispose()
        out = {}
        for order_id, created in rows:
            if isinstance(created, str):
                from datetime import datetime

                created = datetime.fromisoformat(created)
            if created.tzinfo is None:
                from datetime import UTC

                created = created.replace(tzinfo=UTC)
            out[order_id] = created.timestamp()
        return out


def bench(db: str, quick: bool) -> dict[str, Any]:
    n_tp = 3000 if quick else 10000
    n_rate = 5000 if quick else 15000
    n_e2e = 1000 if quick else 3000
    result: dict[str, Any] = {
        "db": db,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    path = "/webhooks/shopify/web"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for connections in (8, 32):
            with Server("noop", db, False, work) as noop:
                run_load(noop.port, path, 1000, connections, None, "warm")
                result[f"noop_closed_c{connections}"] = run_load(noop.port, path, n_tp, connections, None, "noop")
            with Server("backorder", db, False, work) as srv:
                run_load(srv.port, path, 1000, connections, None, "warm")
                result[f"ingress_closed_c{connections}"] = run_load(
                    srv.port, path, n_tp, connections, None, f"tp{connections}"
                )
                result[f"ingress_closed_c{connections}"]["inbox_rows"] = srv.count("SELECT count(*) FROM inbox")
                result[f"app_floor_404_closed_c{connections}"] = run_load(
                    srv.port,
                    "/webhooks/shopify/no-such-channel",
                    n_tp,
                    connections,
                    None,
                    f"floor{connections}",
                    expect=404,
                )
        with Server("noop", db, False, work) as noop:
            result["noop_open_1000rps"] = run_load(noop.port, path, n_rate, 64, 1000, "noop-rate")
        with Server("backorder", db, False, work) as srv:
            result["ingress_open_1000rps"] = run_load(srv.port, path, n_rate, 64, 1000, "rate")
            result["ingress_open_1000rps"]["inbox_rows"] = srv.count("SELECT count(*) FROM inbox")
        for rate, count in ((200, n_e2e), (25, 300)):
            result[f"webhook_to_backorder_{rate}rps"] = _to_backorder(db, work, path, rate, count)
    return result


def _to_backorder(db: str, work: Path, path: str, rate: int, count: int) -> dict[str, Any]:
    with Server("backorder", db, False, work) as srv:
        worker = subprocess.Popen(
            [str(BACKORDER), "--config", str(srv.config), "worker"],
            cwd=work,
            stdout=(work / f"worker-{rate}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            load = run_load(srv.port, path, count, 16, rate, f"e2e{rate}", keep_sent=True)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and srv.count("SELECT count(*) FROM orders") < count:
                time.sleep(0.25)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        sent = {f"web-{10_000_000 + int(n)}": t for n, t in load.pop("sent_at").items()}
        created = srv.created_at()
        lags = sorted(created[o] - s for o, s in sent.items() if o in created)
        span = (max(created.values()) - min(created.values())) if len(created) > 1 else 0.0
        return {
            **load,
            "orders_recorded": len(lags),
            "processed_per_second": len(created) / span if span else None,
            "backorder_p50_ms": lags[len(lags) // 2] * 1000 if lags else None,
            "backorder_p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000 if lags else None,
            "backorder_max_ms": lags[-1] * 1000 if lags else None,
            "backordered_lines": srv.count("SELECT count(*) FROM order_lines WHERE backordered > 0"),
        }


def table(r: dict[str, Any]) -> str:
    rows = ["| measurement | requests | errors | throughput (req/s) | p50 ms | p99 ms |", "|---|---|---|---|---|---|"]
    for key, value in r.items():
        if not isinstance(value, dict) or "requests" not in value:
            continue
        rps = value.get("rps") or value.get("achieved_rps")
        rows.append(
            f"| {key} | {value['requests']} | {value['errors']} | {rps:.0f} | {value['p50_ms']:.1f} | {value['p99_ms']:.1f} |"
        )
    for rate in (200, 25):
        e2e = r.get(f"webhook_to_backorder_{rate}rps") or {}
        if e2e and e2e.get("orders_recorded"):
            rows.append("")
            rows.append(
                f"webhook → backorder recorded at {rate} orders/s offered ({e2e['orders_recorded']} orders, "
                f"worker processed {e2e['processed_per_second'] or 0:.0f}/s): p50 {e2e['backorder_p50_ms']:.0f} ms, "
                f"p99 {e2e['backorder_p99_ms']:.0f} ms, max {e2e['backorder_max_ms']:.0f} ms"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-noop", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int)
    parser.add_argument("--path", default="/webhooks/shopify/web")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--run", default="r")
    parser.add_argument("--keep-sent", action="store_true")
    parser.add_argument("--expect", type=int, default=200)
    args = parser.parse_args()
    if args.serve_noop:
        serve_noop(args.serve_noop)
        return
    if args.load:
        load_main(args)
        return
    random.seed(1)
    result = bench(args.db, args.quick)
    OUT.mkdir(exist_ok=True)
    (OUT / f"ingest-{args.db}.json").write_text(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
