"""Per-SKU allocation after one receipt: one SKU with 1,000 open backorder lines in a catalog of
50,000 SKUs and 200,000 other waiting lines; then, N times, a ``ReceiveStock`` for that SKU
through the bus (bootstrap → message bus → handlers → rules → outbox → commit) that allocates
to the next few lines in rank order. Reports median / p90 / p99 of the whole command.

    .venv/bin/python bench/per_sku.py --db sqlite
    .venv/bin/python bench/per_sku.py --db both --json bench/out/per_sku-final.json
    .venv/bin/python bench/per_sku.py --other-lines 20000 --skus 5000 --no-baseline   # a quick look

Each receipt brings ``--units`` units (default 5, about 2–3 lines' worth) and allocates them
to the next lines in rank order; every 15 receipts the SKU's queue is put back as seeded
(untimed), so every receipt lands on a queue of nearly the same length. The comparison baseline, in the same run: the same receipts on the same world with
100 instead of 1,000 lines on that SKU — how the cost of one receipt grows with the queue it
lands on. Each world also reports where a receipt's time goes (mean per phase), what one
read of the whole queue costs through the repository and straight from the driver (the
command itself no longer reads it: it reads the queue's head only), and the floor: the same
receipt on a SKU with no waiting line. ``--repeat N`` runs each world N times on fresh copies,
interleaved, and pools their receipts. (The ``--variant proposed`` prototypes of earlier runs
are all in the product now; ``bench/common.py``.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

HOT = 0  # SKU000000


def child_seed(db: str, name: str, other_lines: int, skus: int, hot_lines: int, seed: int) -> dict[str, Any]:
    url = common.fresh_database(db, name)
    world = common.make_world(other_lines, skus, seed=seed, hot_sku=HOT, hot_lines=hot_lines)
    summary = common.load_world(url, world, stock_share=None)
    summary["hot_sku_lines"] = int((world.line_sku == HOT).sum())
    return summary


def _reset(app: Any, hot: str) -> None:
    """Put the SKU's queue back as seeded (untimed): its lines waiting in full, nothing held, no
    stock. Receipts only ever allocate to this SKU's ordinary lines (its ship-complete orders wait
    on SKUs without stock), and ledger, receipts and outbox rows only accumulate."""
    with app.engine.begin() as conn:
        conn.exec_driver_sql(  # only the lines receipts changed: rewriting all would bloat PostgreSQL's indexes
            "UPDATE order_lines SET allocated = 0, backordered = quantity "
            f"WHERE sku = '{hot}' AND status = 'open' AND allocated <> 0"
        )
        conn.exec_driver_sql(f"DELETE FROM line_holdings WHERE sku = '{hot}'")
        conn.exec_driver_sql(f"UPDATE stock_levels SET on_hand = 0, allocated = 0 WHERE sku = '{hot}'")


def child_run(
    url: str, receipts: int, warmup: int, units: int, reset_every: int, phase_receipts: int
) -> dict[str, Any]:
    from backorder.bootstrap import bootstrap, read_config
    from backorder.domain.commands import ReceiveStock
    from backorder.services import handlers
    from backorder.services.rules import RuleSet
    from backorder.store.repositories import SqlOrders, SqlOutbox, SqlPurchasing, SqlStock
    from backorder.store.unit_of_work import SqlUnitOfWork

    app = bootstrap(read_config(None), database_url=url, sandbox_folder=False)
    if app.engine.dialect.name == "postgresql":
        # A steady state, as autovacuum keeps it: the bulk-loaded tables vacuumed (visibility
        # map set, so index-only scans need no heap fetch) and analysed. Untimed.
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE)")
    counter = common.StatementCounter()
    counter.attach(app.engine)
    hot = common.sku_code(HOT)
    with app.engine.connect() as conn:
        waiting_before = conn.exec_driver_sql(
            f"SELECT count(*) FROM order_lines WHERE sku = '{hot}' AND status = 'open' AND backordered > 0"
        ).scalar()

    def run(n: int, phases: common.Phases | None) -> tuple[list[float], list[int], list[int]]:
        """``n`` timed receipts after ``warmup`` untimed ones (the queue put back every
        ``reset_every``, untimed); returns seconds, statements and lines allocated per receipt."""
        times: list[float] = []
        statements: list[int] = []
        allocated_lines: list[int] = []
        for i in range(warmup + n):
            if phases is not None and i == warmup:
                phases.seconds.clear()
                phases.calls.clear()
            if i > warmup and (i - warmup) % reset_every == 0:
                _reset(app, hot)  # untimed; outside every phase
            before = counter.statements
            started = time.perf_counter()
            happened = app.bus.handle(ReceiveStock(hot, common.LOCATION, units, datetime.now(UTC)))
            elapsed = time.perf_counter() - started
            if i >= warmup:
                times.append(elapsed)
                statements.append(counter.statements - before)
                allocated_lines.append(sum(len(e.lines) for e in happened if e.name == "BackorderAllocated"))
        return times, statements, allocated_lines

    # The headline: receipts with nothing wrapped. Then, apart, where a receipt's time goes:
    # the same receipts with the phases wrapped (the wrappers cost a little; not in the headline).
    _reset(app, hot)
    times, statements, allocated_lines = run(receipts, None)
    phases = common.Phases(counter)
    for owner, attr, name in (
        (SqlOrders, "waiting", "orders.waiting (whole queue)"),
        (SqlOrders, "ship_complete_scope", "ship-complete closure"),
        (SqlStock, "lock_change_scope", "lock_change_scope (rest)"),
        (SqlStock, "lock_ship_complete_scope", "ship-complete closure (+ locks)"),
        (SqlStock, "read_locked", "scope read: SKUs, levels, lead times, supply flags"),
        (SqlPurchasing, "open_for_sku", "PO candidates (open_for_sku)"),
        (SqlStock, "record_receipt", "receipt row"),
        (SqlOrders, "lines_by_id", "granted lines' orders (lines_by_id)"),
        (SqlOrders, "save_grants", "lines + levels + ledger + holdings (save_grants)"),
        (SqlStock, "positions", "positions (threshold check)"),
        (SqlOrders, "waiting_page", "read queue head (waiting_page)"),
        (SqlOrders, "waiting_of_orders", "ship-complete orders whole"),
        (SqlOrders, "waiting_eta_not", "ETA check (waiting_eta_not)"),
        (handlers, "apply_grants", "apply_grants"),
        (handlers, "allocate_waiting", "allocate_waiting (rest)"),
        (handlers, "_refresh_reached_etas", "ETA step (rest)"),
        (handlers, "refresh_etas", "refresh_etas (rest)"),
        (handlers, "check_thresholds", "check_thresholds"),
        (RuleSet, "actions", "rules → messages"),
        (SqlOutbox, "add", "outbox insert"),
        (SqlUnitOfWork, "commit", "commit"),
    ):
        if hasattr(owner, attr):  # an older tree (a "before" run) lacks some of them
            phases.wrap(owner, attr, name)
    _reset(app, hot)
    phase_times, _, _ = run(phase_receipts, phases)
    with app.engine.connect() as conn:
        row = conn.exec_driver_sql(
            f"SELECT on_hand, allocated FROM stock_levels WHERE sku = '{hot}' AND location = '{common.LOCATION}'"
        ).one()
        waiting_after = conn.exec_driver_sql(
            f"SELECT count(*) FROM order_lines WHERE sku = '{hot}' AND status = 'open' AND backordered > 0"
        ).scalar()
        broken = conn.exec_driver_sql(
            "SELECT count(*) FROM order_lines WHERE allocated + backordered <> quantity"
        ).scalar()
    phase_ms = [t * 1000 for t in phase_times]
    per_receipt = {name: round(p["seconds"] / max(phase_receipts, 1) * 1000, 2) for name, p in phases.as_dict().items()}
    per_receipt["(rest: bus, handler, other statements)"] = round(
        sum(phase_ms) / len(phase_ms) - sum(per_receipt.values()), 2
    )
    waiting_calls = phases.calls.get("orders.waiting (whole queue)", 0)
    head_calls = phases.calls.get("read queue head (waiting_page)", 0)
    # The floor: the same receipt on a SKU with no waiting line (bus, PO lookup, receipt row,
    # stock, closure and ETA check that find nothing, threshold check, outbox rows, commit).
    with app.engine.connect() as conn:
        idle = conn.exec_driver_sql(
            "SELECT code FROM skus WHERE code NOT IN (SELECT sku FROM order_lines) ORDER BY code LIMIT 1"
        ).scalar()
    floor_ms = []
    if idle is not None:
        for i in range(warmup + 100):
            started = time.perf_counter()
            app.bus.handle(ReceiveStock(idle, common.LOCATION, units, datetime.now(UTC)))
            if i >= warmup:
                floor_ms.append((time.perf_counter() - started) * 1000)
    # Components: one read of the SKU's queue through the repository, and the same rows
    # straight from the driver (what the read costs without building domain objects).
    read_ms, raw_ms = [], []
    with SqlUnitOfWork(app.engine, app.clock) as uow:
        for _ in range(30):
            started = time.perf_counter()
            uow.orders.waiting([hot])
            read_ms.append((time.perf_counter() - started) * 1000)
        for _ in range(30):
            started = time.perf_counter()
            uow.connection.exec_driver_sql(
                "SELECT id, order_id, line_no, sku, backordered, priority, placed_at, ship_complete, channel, eta "
                f"FROM order_lines WHERE sku = '{hot}' AND status = 'open' AND backordered > 0"
            ).fetchall()
            raw_ms.append((time.perf_counter() - started) * 1000)
    app.close()
    ms = [t * 1000 for t in times]
    return {
        "receipts": receipts,
        "units_per_receipt": units,
        "reset_every": reset_every,
        "loadavg": Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else None,
        "times_ms": [round(t, 3) for t in ms],
        "median_ms": round(common.median(ms), 2),
        "p90_ms": round(common.percentile(ms, 90), 2),
        "p99_ms": round(common.percentile(ms, 99), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
        "median_statements": common.median([float(s) for s in statements]),
        "median_lines_allocated": common.median([float(n) for n in allocated_lines]),
        "hot_lines_waiting_before_after": [int(waiting_before or 0), int(waiting_after or 0)],
        "hot_stock_on_hand_allocated": [int(row[0]), int(row[1])],
        "lines_quantity_broken": int(broken or 0),
        "rss_peak_mb": round(common.vm_hwm_mb(), 1),
        "mean_ms": round(sum(ms) / len(ms), 2),
        "mean_ms_per_receipt_by_phase": per_receipt,
        "phase_pass": {"receipts": phase_receipts, "median_ms": round(common.median(phase_ms), 2)},
        "waiting_calls_per_receipt": round(waiting_calls / max(phase_receipts, 1), 1),
        "head_page_reads_per_receipt": round(head_calls / max(phase_receipts, 1), 1),
        "floor_receipt_without_waiting_lines": {
            "sku": idle,
            "median_ms": round(common.median(floor_ms), 2) if floor_ms else None,
            "p90_ms": round(common.percentile(floor_ms, 90), 2) if floor_ms else None,
        },
        "queue_read_ms_median": {
            "orders.waiting([sku])": round(common.median(read_ms), 2),
            "same rows, raw driver fetch": round(common.median(raw_ms), 2),
        },
    }


def _seeded(
    db: str, args: argparse.Namespace, here: str, other_lines: int, skus: int, hot_lines: int
) -> tuple[str, dict[str, Any]]:
    name = f"per_sku_{db}_{other_lines}_{skus}_{hot_lines}_{args.seed}"
    summary_file = common.OUT / f"{name}.json"
    if args.reuse_seed and summary_file.exists():
        return name, json.loads(summary_file.read_text())
    summary = common.run_child(
        [
            here,
            "--child",
            "seed",
            "--db",
            db,
            "--url",
            name,
            "--other-lines",
            str(other_lines),
            "--skus",
            str(skus),
            "--hot-lines",
            str(hot_lines),
            "--seed",
            str(args.seed),
        ]
    )
    summary_file.write_text(json.dumps(summary))
    return name, summary


def run_database(db: str, args: argparse.Namespace) -> dict[str, Any]:
    here = str(Path(__file__).resolve())
    worlds = {f"{args.hot_lines} lines on the SKU": (args.other_lines, args.skus, args.hot_lines)}
    if args.baseline:
        worlds[f"baseline: {args.baseline_hot_lines} lines on the SKU"] = (
            args.other_lines,
            args.skus,
            args.baseline_hot_lines,
        )
    out: dict[str, Any] = {"db": db, "worlds": {}, "results": {}}
    seeds: dict[str, str] = {}
    for world_label, (other_lines, skus, hot_lines) in worlds.items():
        name, summary = _seeded(db, args, here, other_lines, skus, hot_lines)
        seeds[world_label] = name
        out["worlds"][world_label] = summary
        print(f"[{db}] {world_label}: {summary}", file=sys.stderr, flush=True)
    runs: dict[str, list[dict[str, Any]]] = {}
    for repeat in range(args.repeat):  # worlds interleaved: the machine's noise falls on both alike
        for world_label, name in seeds.items():
            url = common.clone_database(db, name, f"per_sku_{db}_run")
            result = common.run_child(
                [
                    here,
                    "--child",
                    "run",
                    "--url",
                    url,
                    "--receipts",
                    str(args.receipts),
                    "--warmup",
                    str(args.warmup),
                    "--units",
                    str(args.units),
                    "--reset-every",
                    str(args.reset_every),
                    "--phase-receipts",
                    str(args.phase_receipts),
                ]
            )
            common.drop_database(db, f"per_sku_{db}_run")
            runs.setdefault(world_label, []).append(result)
            print(
                f"[{db}] run {repeat + 1}/{args.repeat} {world_label}: median {result['median_ms']} ms, "
                f"p90 {result['p90_ms']}, p99 {result['p99_ms']}, {result['median_statements']} statements, "
                f"floor {result['floor_receipt_without_waiting_lines']['median_ms']} ms",
                file=sys.stderr,
                flush=True,
            )
    for key, results in runs.items():
        out["results"][key] = _pooled(results)
    if not args.keep:
        for name in seeds.values():
            common.drop_database(db, name)
            (common.OUT / f"{name}.json").unlink(missing_ok=True)
    base = next((v for k, v in out["results"].items() if k.startswith("baseline")), None)
    for key, value in out["results"].items():
        if base is not None and not key.startswith("baseline"):
            value["ratio_vs_baseline"] = round(value["median_ms"] / base["median_ms"], 2)
    return out


def _pooled(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result over repeated runs: the first run's details, with median / p90 / p99 over every
    receipt of every run, and each run's own median and floor."""
    if len(results) == 1:
        return results[0]
    pooled = dict(results[0])
    ms = [t for r in results for t in r["times_ms"]]
    floors = [r["floor_receipt_without_waiting_lines"]["median_ms"] for r in results]
    pooled.update(
        {
            "runs": len(results),
            "receipts": len(ms),
            "median_ms": round(common.median(ms), 2),
            "p90_ms": round(common.percentile(ms, 90), 2),
            "p99_ms": round(common.percentile(ms, 99), 2),
            "min_ms": round(min(ms), 2),
            "max_ms": round(max(ms), 2),
            "mean_ms": round(sum(ms) / len(ms), 2),
            "run_medians_ms": [r["median_ms"] for r in results],
            "run_loadavg": [r["loadavg"] for r in results],
            "times_ms": ms,
        }
    )
    pooled["floor_receipt_without_waiting_lines"] = dict(
        results[0]["floor_receipt_without_waiting_lines"], median_ms=round(common.median(floors), 2)
    )
    pooled["floor_run_medians_ms"] = floors
    return pooled


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--hot-lines", type=int, default=1000, help="open lines on the one SKU")
    parser.add_argument("--other-lines", type=int, default=200_000, help="waiting lines of the other SKUs")
    parser.add_argument("--skus", type=int, default=50_000)
    parser.add_argument("--receipts", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1, help="runs per world (fresh copies, worlds interleaved)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--phase-receipts", type=int, default=60, help="receipts of the separate pass that attributes time to phases"
    )
    parser.add_argument("--units", type=int, default=5)
    parser.add_argument("--reset-every", type=int, default=15, help="put the queue back as seeded every N receipts")
    parser.add_argument("--baseline-hot-lines", type=int, default=100, help="the baseline: the same, this many lines")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse-seed", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", choices=["seed", "run"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "seed":
        print(json.dumps(child_seed(args.db, args.url, args.other_lines, args.skus, args.hot_lines, args.seed)))
        return
    if args.child == "run":
        print(
            json.dumps(
                child_run(args.url, args.receipts, args.warmup, args.units, args.reset_every, args.phase_receipts)
            )
        )
        return
    command = ".venv/bin/python bench/per_sku.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report: dict[str, Any] = {"command": command, "machine": common.machine(), "results": []}
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        result = run_database(db, args)
        report["results"].append(result)
        print(f"\n== per-SKU allocation after one receipt, {db} ==")
        for key, value in result["results"].items():
            print(
                f"{key:45s} median {value['median_ms']:7.2f} ms  p90 {value['p90_ms']:7.2f}  p99 {value['p99_ms']:7.2f}  "
                f"statements {value['median_statements']:.0f}  lines/receipt {value['median_lines_allocated']:.0f}  "
                f"floor {value['floor_receipt_without_waiting_lines']['median_ms']} ms"
                + (f"  ×{value['ratio_vs_baseline']} vs baseline" if "ratio_vs_baseline" in value else "")
            )
    common.OUT.mkdir(exist_ok=True)
    target = args.json or common.OUT / f"per_sku-{args.db}.json"
    target.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nresults: {target}")


if __name__ == "__main__":
    main()
