"""Cross-check of ``bench/ingest.py``'s closed-loop ratios with a load generator written in C:
``wrk`` (Debian package ``wrk``: ``apt-get install wrk``; not needed by the tests) drives the same
three servers (the no-op, ``backorder serve --no-worker``, and the ingress without its inbox
write), one wrk thread, C connections, ``--seconds`` per measurement after a 2 s warm-up. Each
request is a signed Shopify ``orders/create`` webhook with its own event id
(``bench/wrk_signed_webhooks.lua``: HMAC-SHA256 through OpenSSL's ``HMAC`` via LuaJIT's FFI), so
every ingress answer follows a committed inbox row.

Usage: ``python bench/ingest_wrk.py [--repeat 3] [--seconds 6] [--out FILE]``; SQLite only."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ingest  # noqa: E402  (the servers and CPU accounting of the main benchmark)

SCRIPT = HERE / "wrk_signed_webhooks.lua"
PATH = "/webhooks/shopify/web"


def wrk(port: int, connections: int, seconds: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{PATH}"
    prefix = f"run{time.time_ns()}"  # the event ids' prefix: unique per run
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(SCRIPT),
            url,
            "--",
            prefix,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": float(found.group(1)) if found else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "ingest-wrk-sqlite.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    result: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load": ingest._load()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for connections in (8, 32):
            runs: dict[str, list[dict[str, Any]]] = {"noop": [], "backorder": [], "ceiling": []}
            for _ in range(args.repeat):
                for kind in runs:
                    with ingest.Server(kind, "sqlite", False, work) as server:
                        assert server.process is not None
                        wrk(server.port, connections, 2)
                        before = ingest.cpu_seconds(server.process.pid)
                        one = wrk(server.port, connections, args.seconds)
                        used = ingest.cpu_seconds(server.process.pid) - before
                        one["server_cpu_us_per_request"] = round(used / max(one["requests"], 1) * 1e6, 1)
                        if kind == "backorder":
                            one["inbox_rows"] = server.count("SELECT count(*) FROM inbox")
                        runs[kind].append(one)
            row: dict[str, Any] = dict(runs)
            for one in runs["backorder"]:  # every answer a new row: the warm-up's plus the run's
                one["all_requests_stored"] = one["inbox_rows"] >= one["requests"]
            for kind in ("backorder", "ceiling"):
                ratios = [a["rps"] / n["rps"] for a, n in zip(runs[kind], runs["noop"], strict=True)]
                row[f"ratio_{kind}_each"] = [round(r, 3) for r in ratios]
                row[f"ratio_{kind}_median"] = round(statistics.median(ratios), 3)
            result[f"c{connections}"] = row
            print(
                f"c{connections}: no-op {statistics.median(r['rps'] for r in runs['noop']):.0f} req/s, "
                f"ingress {statistics.median(r['rps'] for r in runs['backorder']):.0f} "
                f"(ratio {row['ratio_backorder_median']}), without the inbox write "
                f"{statistics.median(r['rps'] for r in runs['ceiling']):.0f} (ratio {row['ratio_ceiling_median']})",
                flush=True,
            )
    result["load_end"] = ingest._load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
