"""Ingest benchmark (issue 3): signed Shopify ``orders/create`` webhooks against the real server.

Three measurements, each against a fresh ``backorder serve`` process on a loopback port (temporary
config and database), with the load generator in another process (``python bench/ingest.py
--load ...``: asyncio, raw HTTP/1.1 keep-alive connections, bounded request counts):

1. **Throughput** (closed loop, C connections, N requests): the webhook ingress with
   ``--no-worker`` (each 200 follows a committed inbox row) beside a no-op ASGI app served by
   the same uvicorn with the same settings (http/loop "auto", access log at info), in the same
   run, the "app floor" (the server answering 404 for an unknown channel) and the ingress
   *without its inbox write* (``--serve-ceiling``: the product's server with the write replaced by
   an instant "committed", so every other cost of a webhook is paid: the best ratio any inbox
   design could reach on this machine). With ``--minimal``, also the least any *durable* ingress
   does (:class:`MinimalDurableApp`: HMAC, one ``fdatasync``'d file append per event-loop
   iteration; in the loop thread, and in a thread of its own): the best ratio an ingress that
   answers 200 only after a durable write could reach here. ``--repeat R``
   alternates the servers R times and keeps the median; each row also has the server process's
   CPU time per request (user + system, all threads, from /proc), steadier than throughput on a
   shared machine.
2. **Latency at 1,000 requests/s** (open loop: requests are sent on a fixed schedule and latency
   is measured from the scheduled time, so a stall is not hidden by the generator waiting).
3. **Webhook → backorder recorded** at 200 orders/s (and 25/s), the server with ``--no-worker``
   and ``--workers`` ``backorder worker`` processes beside it, started and ready before the load:
   from the send time to ``orders.created_at`` written by the processor (same machine clock).

A one-row commit probe (the durable-commit latency right now) and the load average are recorded
at the start and the end.

Usage: ``python bench/ingest.py [--db sqlite|postgres] [--quick] [--repeat 3] [--only tp,rate,e2e]
[--workers 1] [--minimal] [--logs DIR] [--out FILE]``; results go to ``bench/out/ingest-<db>.json`` (or FILE) and
are printed as a Markdown table.
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


class MinimalDurableApp:
    """The least any durable webhook ingress does (``--minimal``): read the body, check the Shopify
    HMAC in constant time, and answer 200 only after the body is on disk: the requests of one
    event-loop iteration are appended to one file with one ``write`` and one ``fdatasync`` (group
    commit, in the loop thread: no second thread, no database, no dedupe, no parsing). A
    measurement of the bench only: it bounds from above the ratio any ingress built on this
    server and a durable write per batch could reach on this machine."""

    def __init__(self, spool: str, threaded: bool) -> None:
        self.threaded = threaded
        self.fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.key = SECRET.encode()
        self.pending: list[tuple[bytes, asyncio.Future[None]]] = []

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        data = b"".join(body for body, _ in batch)
        if not self.threaded:
            self._write(data)
            self._settle(batch)
            return
        # the write and fdatasync in a thread (releasing the GIL); the loop goes on reading
        # the next requests, which form the next batch meanwhile
        done = asyncio.get_running_loop().run_in_executor(None, self._write, data)
        done.add_done_callback(lambda _: self._settle(batch))

    def _write(self, data: bytes) -> None:
        os.write(self.fd, data)
        os.fdatasync(self.fd)

    @staticmethod
    def _settle(batch: list[tuple[bytes, asyncio.Future[None]]]) -> None:
        for _, future in batch:
            future.set_result(None)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" or scope["method"] != "POST":  # start-up, and the readiness probe
            await noop_app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        signature = b""
        for name, value in scope["headers"]:
            if name == b"x-shopify-hmac-sha256":
                signature = value
        digest = base64.b64encode(hmac.new(self.key, body, hashlib.sha256).digest())
        if not hmac.compare_digest(digest, signature):
            status, answer = 401, b'{"error":"bad signature"}'
        else:
            loop = asyncio.get_running_loop()
            if not self.pending:
                loop.call_soon(self._flush)
            future: asyncio.Future[None] = loop.create_future()
            self.pending.append((body, future))
            await future
            status, answer = 200, b'{"status":"accepted"}'
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})


def serve_minimal(port: int, spool: str, threaded: bool) -> None:
    import uvicorn

    app = MinimalDurableApp(spool, threaded)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info", http="auto", loop="auto", access_log=True)


def _resolved(kind: str) -> str:
    """What uvicorn's "auto" picks here (``backorder serve`` leaves both on "auto")."""
    import importlib.util

    if kind == "http":
        return "httptools" if importlib.util.find_spec("httptools") else "h11"
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


SERVER_SETTINGS = {
    "server": "uvicorn, 1 process",
    "http": _resolved("http"),
    "loop": _resolved("loop"),
    "log_level": "info",
    "access_log": True,
}


def serve_ceiling(config: str) -> None:
    """`backorder serve --no-worker` with the inbox write taken out (every webhook answered as if its
    row had committed): what the rest of the ingress costs, i.e. the best ratio any inbox could give.
    A measurement of the bench only; the product has no such mode."""
    sys.path.insert(0, str(HERE.parent / "src"))
    from backorder import cli
    from backorder.channels.ingest import InboxWriter

    async def record(self: InboxWriter, item: Any) -> tuple[int, bool]:
        return 1, True

    InboxWriter.record = record  # type: ignore[method-assign]
    sys.argv = ["backorder", "--config", config, "serve", "--no-worker"]
    cli.main()


def serve_noop(port: int) -> None:
    import uvicorn

    # the same server and settings as `backorder serve` (cli.py _serve): auto http/loop, access log at info
    uvicorn.run(noop_app, host="127.0.0.1", port=port, log_level="info", http="auto", loop="auto", access_log=True)


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

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

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


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of a process (all its threads) so far, or of one of its threads."""
    stat = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


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
        if self.kind in ("noop", "minimal", "minimal-threaded"):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-noop", str(self.port)]
            if self.kind != "noop":
                cmd += ["--minimal-spool", str(self.workdir / f"spool-{self.port}.bin")]
            if self.kind == "minimal-threaded":
                cmd.append("--minimal-threaded")
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
        if self.kind == "ceiling":
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-ceiling", str(config)]
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


def measured(server: Server, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """run_load, plus the server's CPU time per request and the load average after it."""
    assert server.process is not None
    pid = server.process.pid
    before, loop_before = cpu_seconds(pid), cpu_seconds(pid, pid)
    out = run_load(server.port, *args, **kwargs)
    used, loop_used = cpu_seconds(pid) - before, cpu_seconds(pid, pid) - loop_before
    out["server_cpu_us_per_request"] = round(used / out["requests"] * 1e6, 1)
    # the main thread runs the event loop (uvicorn, the app, the access log); the rest is the
    # other threads (the ingress's inbox writer), at the clock-tick resolution of /proc
    out["server_cpu_us_per_request_loop_thread"] = round(loop_used / out["requests"] * 1e6, 1)
    out["server_cpu_us_per_request_other_threads"] = round((used - loop_used) / out["requests"] * 1e6, 1)
    out["load"] = _load()
    return out


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def bench(
    db: str,
    quick: bool,
    only: set[str],
    repeat: int,
    logs: Path | None,
    e2e_workers: int = 1,
    minimal: bool = False,
) -> dict[str, Any]:
    n_tp = 3000 if quick else 10000
    n_rate = 5000 if quick else 15000
    n_e2e = 1000 if quick else 3000
    result: dict[str, Any] = {
        "db": db,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_start": _load(),
        "server": SERVER_SETTINGS,
    }
    path = "/webhooks/shopify/web"
    with tempfile.TemporaryDirectory() as tmp:
        work = logs or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        sys.path.insert(0, str(HERE.parent / "src"))
        result["commit_probe_start"] = commit_probe(db, work)
        if "tp" in only:
            for connections in (8, 32):
                runs: dict[str, list[dict[str, Any]]] = {
                    "noop": [],
                    "ingress": [],
                    "floor": [],
                    "ceiling": [],
                    "minimal": [],
                    "minimal-threaded": [],
                }
                for r in range(repeat):  # alternate, so drift in the machine's load hits both alike
                    with Server("noop", db, False, work) as noop:
                        run_load(noop.port, path, 1000, connections, None, f"warm{r}")
                        runs["noop"].append(measured(noop, path, n_tp, connections, None, f"noop{r}"))
                    with Server("backorder", db, False, work) as srv:
                        run_load(srv.port, path, 1000, connections, None, f"warm{r}")
                        one = measured(srv, path, n_tp, connections, None, f"tp{connections}-{r}")
                        one["inbox_rows"] = srv.count("SELECT count(*) FROM inbox")
                        runs["ingress"].append(one)
                        runs["floor"].append(
                            measured(
                                srv,
                                "/webhooks/shopify/no-such-channel",
                                n_tp,
                                connections,
                                None,
                                f"floor{connections}-{r}",
                                expect=404,
                            )
                        )
                    with Server("ceiling", db, False, work) as srv:
                        run_load(srv.port, path, 1000, connections, None, f"warm{r}")
                        runs["ceiling"].append(measured(srv, path, n_tp, connections, None, f"ceil{connections}-{r}"))
                    for kind in ("minimal", "minimal-threaded") if minimal else ():
                        with Server(kind, db, False, work) as srv:
                            run_load(srv.port, path, 1000, connections, None, f"warm{r}")
                            runs[kind].append(measured(srv, path, n_tp, connections, None, f"{kind}{connections}-{r}"))
                for name, key in (
                    ("noop", "noop"),
                    ("ingress", "ingress"),
                    ("floor", "app_floor_404"),
                    ("ceiling", "ingress_without_inbox_write"),
                    ("minimal", "least_durable_ingress"),
                    ("minimal-threaded", "least_durable_ingress_threaded"),
                ):
                    if runs[name]:
                        result[f"{key}_closed_c{connections}"] = _median(runs[name])
                ratios = [i["rps"] / n["rps"] for i, n in zip(runs["ingress"], runs["noop"], strict=True)]
                cpu = [
                    n["server_cpu_us_per_request"] / i["server_cpu_us_per_request"]
                    for i, n in zip(runs["ingress"], runs["noop"], strict=True)
                ]
                ceiling = [c["rps"] / n["rps"] for c, n in zip(runs["ceiling"], runs["noop"], strict=True)]
                result[f"ratio_c{connections}"] = {
                    "throughput_each": [round(x, 3) for x in ratios],
                    "throughput_median": statistics.median(ratios),
                    "cpu_per_request_each": [round(x, 3) for x in cpu],
                    "cpu_per_request_median": statistics.median(cpu),
                    "without_inbox_write_each": [round(x, 3) for x in ceiling],
                    "without_inbox_write_median": statistics.median(ceiling),
                }
                for kind, key in (
                    ("minimal", "least_durable_ingress"),
                    ("minimal-threaded", "least_durable_ingress_threaded"),
                ):
                    if runs[kind]:
                        least = [m["rps"] / n["rps"] for m, n in zip(runs[kind], runs["noop"], strict=True)]
                        result[f"ratio_c{connections}"][f"{key}_each"] = [round(x, 3) for x in least]
                        result[f"ratio_c{connections}"][f"{key}_median"] = statistics.median(least)
        if "rate" in only:
            with Server("noop", db, False, work) as noop:
                result["noop_open_1000rps"] = measured(noop, path, n_rate, 64, 1000, "noop-rate")
            with Server("backorder", db, False, work) as srv:
                result["ingress_open_1000rps"] = measured(srv, path, n_rate, 64, 1000, "rate")
                result["ingress_open_1000rps"]["inbox_rows"] = srv.count("SELECT count(*) FROM inbox")
        if "e2e" in only:
            for rate, count in ((200, n_e2e), (25, 300)):
                result[f"webhook_to_backorder_{rate}rps"] = _to_backorder(db, work, path, rate, count, e2e_workers)
        result["commit_probe_end"] = commit_probe(db, work)
    result["load_average_end"] = _load()
    return result


def commit_probe(db: str, work: Path, n: int = 300) -> dict[str, float]:
    """Latency of a one-row durable commit on this database right now: the floor under every
    inbox commit (on a shared machine it moves with other people's load)."""
    times: list[float] = []
    if db == "sqlite":
        import sqlite3

        probe = sqlite3.connect(work / f"probe-{uuid.uuid4().hex[:8]}.db", isolation_level=None)
        probe.execute("PRAGMA journal_mode=WAL")
        probe.execute("PRAGMA synchronous=FULL")  # as the inbox writer commits (store/inbox.py)
        probe.execute("CREATE TABLE probe (a INTEGER)")
        for _ in range(n):
            began = time.perf_counter()
            probe.execute("INSERT INTO probe VALUES (1)")
            times.append(time.perf_counter() - began)
        probe.close()
        return _percentiles(times)
    from sqlalchemy import create_engine

    name = f"bench_ingest_probe_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = create_engine(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")  # synchronous_commit on, as served
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE probe (a INTEGER)")
        for _ in range(n):
            began = time.perf_counter()
            with engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO probe VALUES (1)")
            times.append(time.perf_counter() - began)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    return _percentiles(times)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput (its own latencies), and every run's throughput."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    middle = dict(ordered[(len(ordered) - 1) // 2])
    middle["rps_each"] = [round(r["rps"]) for r in runs]
    middle["p99_each"] = [round(r["p99_ms"], 1) for r in runs]
    middle["cpu_each"] = [r["server_cpu_us_per_request"] for r in runs]
    middle["cpu_loop_thread_each"] = [r.get("server_cpu_us_per_request_loop_thread") for r in runs]
    middle["cpu_other_threads_each"] = [r.get("server_cpu_us_per_request_other_threads") for r in runs]
    middle["runs"] = len(runs)
    return middle


def _to_backorder(db: str, work: Path, path: str, rate: int, count: int, workers: int = 1) -> dict[str, Any]:
    with Server("backorder", db, False, work) as srv:
        procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        try:
            for k in range(workers):
                log = work / f"worker-{rate}-{srv.port}-{k}.log"
                procs.append(
                    (
                        subprocess.Popen(
                            [str(BACKORDER), "--config", str(srv.config), "worker"],
                            cwd=work,
                            stdout=log.open("wb"),
                            stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                        ),
                        log,
                    )
                )
            ready = time.monotonic() + 60  # measure the workers, not their start-up (imports, bootstrap)
            for proc, log in procs:
                while b"worker running" not in log.read_bytes() and time.monotonic() < ready:
                    if proc.poll() is not None:
                        raise RuntimeError(f"worker exited with {proc.returncode}")
                    time.sleep(0.05)
            load = run_load(srv.port, path, count, 16, rate, f"e2e{rate}", keep_sent=True)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and srv.count("SELECT count(*) FROM orders") < count:
                time.sleep(0.25)
            load["load"] = _load()
        finally:
            for proc, _ in procs:
                proc.terminate()
            for proc, _ in procs:
                proc.wait(timeout=30)
        load["workers"] = workers
        load["inbox_status"] = {
            status: srv.count(f"SELECT count(*) FROM inbox WHERE status = '{status}'")
            for status in ("processed", "ignored", "failed", "received", "processing")
        }
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
    rows = [
        "| measurement | requests | errors | throughput (req/s) | p50 ms | p99 ms | server CPU µs/req | loop thread | other threads |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, value in r.items():
        if not isinstance(value, dict) or "requests" not in value:
            continue
        rps = value.get("rps") or value.get("achieved_rps")
        rows.append(
            f"| {key} | {value['requests']} | {value['errors']} | {rps:.0f} | {value['p50_ms']:.1f} "
            f"| {value['p99_ms']:.1f} | {value.get('server_cpu_us_per_request', '')} "
            f"| {value.get('server_cpu_us_per_request_loop_thread', '')} "
            f"| {value.get('server_cpu_us_per_request_other_threads', '')} |"
        )
    for key in ("commit_probe_start", "commit_probe_end"):
        if key in r:
            rows.append(
                f"{key}: p50 {r[key]['p50_ms']:.2f} ms, p99 {r[key]['p99_ms']:.2f} ms, max {r[key]['max_ms']:.2f} ms"
            )
    rows.append(f"load average: start {r.get('load_average_start')}, end {r.get('load_average_end')}")
    for key, value in r.items():
        if key.startswith("ratio_"):
            rows.append(f"{key}: {json.dumps(value)}")
    for rate in (200, 25):
        e2e = r.get(f"webhook_to_backorder_{rate}rps") or {}
        if e2e and e2e.get("orders_recorded"):
            rows.append("")
            rows.append(
                f"webhook → backorder recorded at {rate} orders/s offered ({e2e['orders_recorded']} orders, "
                f"{e2e.get('workers', 1)} worker(s) processed {e2e['processed_per_second'] or 0:.0f}/s): p50 {e2e['backorder_p50_ms']:.0f} ms, "
                f"p99 {e2e['backorder_p99_ms']:.0f} ms, max {e2e['backorder_max_ms']:.0f} ms"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-noop", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-ceiling", help=argparse.SUPPRESS)
    parser.add_argument("--minimal-spool", help=argparse.SUPPRESS)
    parser.add_argument("--minimal-threaded", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--minimal",
        action="store_true",
        help="closed loop: also the least durable ingress (HMAC + one fdatasync'd append per loop iteration),"
        " in the loop thread and in a thread of its own",
    )
    parser.add_argument("--port", type=int)
    parser.add_argument("--path", default="/webhooks/shopify/web")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--run", default="r")
    parser.add_argument("--keep-sent", action="store_true")
    parser.add_argument("--expect", type=int, default=200)
    parser.add_argument("--only", default="tp,rate,e2e", help="which parts: tp (closed loop), rate, e2e")
    parser.add_argument("--repeat", type=int, default=1, help="closed-loop runs per server (medians)")
    parser.add_argument("--logs", type=Path, help="keep server/worker logs in this folder")
    parser.add_argument("--workers", type=int, default=1, help="`backorder worker` processes in the e2e part")
    parser.add_argument("--out", type=Path, help="write the JSON here (default bench/out/ingest-<db>.json)")
    args = parser.parse_args()
    if args.serve_noop and args.minimal_spool:
        serve_minimal(args.serve_noop, args.minimal_spool, args.minimal_threaded)
        return
    if args.serve_noop:
        serve_noop(args.serve_noop)
        return
    if args.serve_ceiling:
        serve_ceiling(args.serve_ceiling)
        return
    if args.load:
        load_main(args)
        return
    random.seed(1)
    result = bench(args.db, args.quick, set(args.only.split(",")), args.repeat, args.logs, args.workers, args.minimal)
    out = args.out or OUT / f"ingest-{args.db}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
