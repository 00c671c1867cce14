"""The floor under the full run on SQLite (issue 2): what SQLite itself needs to write what a full
run must persist, with no Python per row at all.

    .venv/bin/python bench/bop.py --db sqlite --keep --baseline-skus 0 --baseline-batched 0   # seeds once
    .venv/bin/python bench/bop_floor.py --repeat 3

On a copy of the world `bench/bop.py` seeds (1,000,000 waiting lines over 50,000 SKUs, stock for
every SKU), the allocation contract for ordinary lines is computed by SQLite alone (one window
function: each line takes min(what it waits for, what its SKU's stock has left after the lines
ranked before it)), and its results are written with set-based statements only (``UPDATE … FROM``,
``INSERT … SELECT``, the message payloads built by ``json_object``), inside one transaction, with
the product's connection settings (WAL, ``synchronous=NORMAL``, foreign keys on, the bulk path's
page cache). No ship-complete walk, no events, no rules, no ETA step: every one of those only adds
to the real run, so each variant's total is a lower bound for any implementation that persists
the same rows.

Variants (each on a fresh copy of the seeded database):

- ``schema``: what the real run persists: line updates (with the covering waiting-line index kept
  up to date), one holding and one ledger row per allocated line, stock per SKU, one outbox row
  per order.
- ``schema-reindex``: the same with the covering index dropped before the line updates and
  rebuilt after (cheaper than maintaining it row by row).
- ``bare``: only what the issue itself names: the line updates (index rebuilt), the ledger rows
  `explain` reads, stock per SKU, and one outbox row per order. No holdings.

Results: printed, and written to ``bench/out/bop_floor.json`` (or ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

AT = "2026-11-27 12:00:00.000000"

_ALLOCATE = """
CREATE TEMP TABLE granted AS
SELECT id, sku, order_id, line_no, location, min(backordered, avail - (cum - backordered)) AS take
FROM (
  SELECT l.id, l.sku, l.order_id, l.line_no, l.backordered, s.location, s.on_hand - s.allocated AS avail,
    sum(l.backordered) OVER (
      PARTITION BY l.sku ORDER BY l.priority DESC, l.placed_at, l.order_id, l.line_no ROWS UNBOUNDED PRECEDING
    ) AS cum
  FROM order_lines l JOIN stock_levels s ON s.sku = l.sku
  WHERE l.status = 'open' AND l.backordered > 0 AND s.on_hand - s.allocated > 0
)
WHERE avail - (cum - backordered) > 0
"""
_WAITING_INDEX = (
    "CREATE INDEX ix_order_lines_waiting_rank ON order_lines "
    "(sku, priority DESC, placed_at, order_id, line_no, id, backordered, ship_complete, channel) "
    "WHERE status = 'open' AND backordered > 0"
)
_LINES = """
UPDATE order_lines SET allocated = order_lines.allocated + g.take, backordered = order_lines.backordered - g.take,
  eta = CASE WHEN order_lines.backordered = g.take THEN NULL ELSE order_lines.eta END
FROM granted g WHERE order_lines.id = g.id
"""
_HOLDINGS = "INSERT INTO line_holdings (line_id, location, sku, quantity) SELECT id, location, sku, take FROM granted ORDER BY id"
_LEDGER = (
    "INSERT INTO allocation_ledger (order_id, line_no, sku, location, quantity, kind, source, source_ref, at) "
    f"SELECT order_id, line_no, sku, location, take, 'allocate', 'bop', NULL, '{AT}' FROM granted"
)
_STOCK = """
UPDATE stock_levels SET allocated = stock_levels.allocated + t.units
FROM (SELECT sku, location, sum(take) AS units FROM granted GROUP BY sku, location) t
WHERE stock_levels.sku = t.sku AND stock_levels.location = t.location
"""
_OUTBOX = f"""
INSERT INTO outbox (action, target, payload, dedupe_key, status, attempts, next_attempt_at, created_at, updated_at)
SELECT 'notify_customer', 'customer',
  json_object('event', 'BackorderAllocated', 'order_id', order_id,
              'lines', json_group_array(json_object('line_no', line_no, 'sku', sku, 'quantity', take))),
  NULL, 'pending', 0, '{AT}', '{AT}', '{AT}'
FROM granted GROUP BY order_id
"""

VARIANTS: dict[str, list[tuple[str, str]]] = {
    "schema": [
        ("allocate (window function)", _ALLOCATE),
        ("line updates", _LINES),
        ("holdings", _HOLDINGS),
        ("ledger", _LEDGER),
        ("stock", _STOCK),
        ("outbox (one row per order)", _OUTBOX),
    ],
    "schema-reindex": [
        ("allocate (window function)", _ALLOCATE),
        ("drop waiting index", "DROP INDEX ix_order_lines_waiting_rank"),
        ("line updates", _LINES),
        ("rebuild waiting index", _WAITING_INDEX),
        ("holdings", _HOLDINGS),
        ("ledger", _LEDGER),
        ("stock", _STOCK),
        ("outbox (one row per order)", _OUTBOX),
    ],
    "bare": [
        ("allocate (window function)", _ALLOCATE),
        ("drop waiting index", "DROP INDEX ix_order_lines_waiting_rank"),
        ("line updates", _LINES),
        ("rebuild waiting index", _WAITING_INDEX),
        ("ledger", _LEDGER),
        ("stock", _STOCK),
        ("outbox (one row per order)", _OUTBOX),
    ],
}


def run_variant(path: Path, steps: list[tuple[str, str]]) -> dict[str, Any]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-524288"):
            conn.execute(f"PRAGMA {pragma}")
        timings: dict[str, float] = {}
        rows: dict[str, int] = {}
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for name, sql in steps:
            t = time.perf_counter()
            cursor = conn.execute(sql)
            timings[name] = time.perf_counter() - t
            rows[name] = cursor.rowcount
        t = time.perf_counter()
        conn.execute("COMMIT")
        timings["commit"] = time.perf_counter() - t
        total = time.perf_counter() - start
        granted = conn.execute("SELECT count(*), sum(quantity) FROM allocation_ledger WHERE source = 'bop'").fetchone()
        outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    finally:
        conn.close()
    return {
        "seconds": round(total, 3),
        "steps": {k: round(v, 3) for k, v in timings.items()},
        "rows": rows,
        "lines_allocated": granted[0],
        "units": granted[1],
        "outbox_rows": outbox,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--skus", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant, interleaved, each on a fresh copy")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"some of {','.join(VARIANTS)}")
    parser.add_argument("--json", type=Path, default=common.OUT / "bop_floor.json")
    args = parser.parse_args(argv)
    seed_name = f"bop_sqlite_seed_{args.lines}_{args.skus}_{args.seed}"
    if not (common.OUT / f"{seed_name}.db").exists():
        parser.error(
            f"no seeded database {seed_name}.db in {common.OUT}: run "
            f"`bench/bop.py --db sqlite --lines {args.lines} --skus {args.skus} --seed {args.seed} --keep` first"
        )
    names = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for i in range(args.repeat):
        for name in names:  # interleaved, so the machine's drift hits every variant alike
            url = common.clone_database("sqlite", seed_name, "bop_floor_run")
            path = Path(url.removeprefix("sqlite:///"))
            one = run_variant(path, VARIANTS[name])
            common.drop_database("sqlite", "bop_floor_run")
            runs[name].append(one)
            print(f"[{name} {i + 1}/{args.repeat}] {one['seconds']:.2f}s {one['steps']}", file=sys.stderr, flush=True)
    result: dict[str, Any] = {
        "machine": common.machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sqlite": sqlite3.sqlite_version,
        "variants": {},
    }
    for name, got in runs.items():
        seconds = [r["seconds"] for r in got]
        steps = {k: round(statistics.median(r["steps"][k] for r in got), 3) for k in got[0]["steps"]}
        result["variants"][name] = {
            "median_seconds": round(statistics.median(seconds), 3),
            "each_seconds": seconds,
            "median_steps": steps,
            "lines_allocated": got[0]["lines_allocated"],
            "units": got[0]["units"],
            "outbox_rows": got[0]["outbox_rows"],
        }
        print(f"\n{name}: median {statistics.median(seconds):.2f}s (each {seconds})")
        for step, secs in steps.items():
            print(f"  {step:32s} {secs:7.3f}s")
        print(f"  lines allocated {got[0]['lines_allocated']:,}, outbox rows {got[0]['outbox_rows']:,}")
    args.json.write_text(json.dumps(result, indent=2))
    print(f"\nresults: {args.json}")


if __name__ == "__main__":
    main()
