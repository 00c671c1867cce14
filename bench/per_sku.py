"""Per-SKU allocation after one receipt: one SKU with 1,000 open backorder lines in a catalog of
50,000 SKUs and 200,000 other waiting lines; then, N times, a ``ReceiveStock`` for that SKU
through the bus (bootstrap → message bus → handlers → rules → outbox → commit) that allocates
to the next few lines in rank order. Reports median / p90 / p99 of the whole command.

    .venv/bin/python bench/per_sku.py --db sqlite
    .venv/bin/python bench/per_sku.py --db both --variant both

Each receipt brings ``--units`` units (default 5, about 2–3 lines' worth) and allocates them
to the next lines in rank order; every 15 receipts the SKU's queue is put back as seeded
(untimed), so every receipt lands on a queue of nearly the same length. The comparison baseline, in the same run: the same receipts on the same world with
100 instead of 1,000 lines on that SKU — how the cost of one receipt grows with the queue it
lands on. Each variant also reports where a receipt's time goes (mean per phase) and what one
read of the SKU's queue costs through the repository and straight from the driver.
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
        conn.exec_driver_sql(
            f"UPDATE order_lines SET allocated = 0, backordered = quantity WHERE sku = '{hot}' AND status = 'open'"
        )
        conn.exec_driver_sql(f"DELETE FROM line_holdings WHERE sku = '{hot}'")
        conn.exec_driver_sql(f"UPDATE stock_levels SET on_hand = 0, allocated = 0 WHERE sku = '{hot}'")


def child_run(
    url: str, receipts: int, warmup: int, units: int, reset_every: int, proposals: set[str]
) -> dict[str, Any]:
    common.apply_proposals(proposals, url)
    from backorder.bootstrap import bootstrap, read_config
    from backorder.domain.commands import ReceiveStock
    from backorder.services import handlers
    from backorder.services.rules import RuleSet
    from backorder.store.repositories import SqlOrders, SqlOutbox
    from backorder.store.unit_of_work import SqlUnitOfWork

    app = bootstrap(read_config(None), database_url=url, sandbox_folder=False)
    counter = common.StatementCounter()
    counter.attach(app.engine)
    phases = common.Phases(counter)
    phases.wrap(SqlOrders, "waiting", "orders.waiting (read queue)")
    phases.wrap(handlers, "allocate_waiting", "allocate_waiting (rest)")
    phases.wrap(handlers, "refresh_etas", "refresh_etas (rest)")
    phases.wrap(handlers, "check_thresholds", "check_thresholds")
    phases.wrap(RuleSet, "actions", "rules → messages")
    phases.wrap(SqlOutbox, "add", "outbox insert")
    phases.wrap(SqlUnitOfWork, "commit", "commit")
    hot = common.sku_code(HOT)
    times: list[float] = []
    statements: list[int] = []
    allocated_lines: list[int] = []
    with app.engine.connect() as conn:
        waiting_before = conn.exec_driver_sql(
            f"SELECT count(*) FROM order_lines WHERE sku = '{hot}' AND status = 'open' AND backordered > 0"
        ).scalar()
    for i in range(warmup + receipts):
        if i == warmup:
            phases.seconds.clear()
            phases.calls.clear()
        if i > warmup and (i - warmup) % reset_every == 0:
            with phases.phase("(reset, untimed)"):
                _reset(app, hot)
        before = counter.statements
        started = time.perf_counter()
        happened = app.bus.handle(ReceiveStock(hot, common.LOCATION, units, datetime.now(UTC)))
        elapsed = time.perf_counter() - started
        if i >= warmup:
            times.append(elapsed)
            statements.append(counter.statements - before)
            allocated_lines.append(sum(len(e.lines) for e in happened if e.name == "BackorderAllocated"))
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
    ms = [t * 1000 for t in times]
    per_receipt = {
        name: round(p["seconds"] / max(receipts, 1) * 1000, 2)
        for name, p in phases.as_dict().items()
        if not name.startswith("(reset")
    }
    per_receipt["(rest: bus, handler, other statements)"] = round(sum(ms) / len(ms) - sum(per_receipt.values()), 2)
    waiting_calls = phases.calls.get("orders.waiting (read queue)", 0)
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
        "proposals": sorted(proposals),
        "receipts": receipts,
        "units_per_receipt": units,
        "reset_every": reset_every,
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
        "waiting_calls_per_receipt": round(waiting_calls / max(receipts, 1), 1),
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
    proposed = set(common.PROPOSALS) if args.proposals == "all" else {p for p in args.proposals.split(",") if p}
    variants = {
        "asis": [("as-is", set())],
        "proposed": [("proposed", proposed)],
        "both": [("as-is", set()), ("proposed", proposed)],
    }[args.variant]
    worlds = {f"{args.hot_lines} lines on the SKU": (args.other_lines, args.skus, args.hot_lines)}
    if args.baseline:
        worlds[f"baseline: {args.baseline_hot_lines} lines on the SKU"] = (
            args.other_lines,
            args.skus,
            args.baseline_hot_lines,
        )
    out: dict[str, Any] = {"db": db, "worlds": {}, "results": {}}
    for world_label, (other_lines, skus, hot_lines) in worlds.items():
        name, summary = _seeded(db, args, here, other_lines, skus, hot_lines)
        out["worlds"][world_label] = summary
        print(f"[{db}] {world_label}: {summary}", file=sys.stderr, flush=True)
        for label, proposals in variants:
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
                    "--proposals",
                    ",".join(sorted(proposals)),
                ]
            )
            common.drop_database(db, f"per_sku_{db}_run")
            out["results"][f"{world_label} / {label}"] = result
            print(
                f"[{db}] {world_label} / {label}: median {result['median_ms']} ms, p90 {result['p90_ms']}, "
                f"p99 {result['p99_ms']}, {result['median_statements']} statements",
                file=sys.stderr,
                flush=True,
            )
        if not args.keep:
            common.drop_database(db, name)
            (common.OUT / f"{name}.json").unlink(missing_ok=True)
    full = {k: v for k, v in out["results"].items() if not k.startswith("baseline")}
    base = {k: v for k, v in out["results"].items() if k.startswith("baseline")}
    for key, value in full.items():
        label = key.split(" / ")[1]
        other = next((v for k, v in base.items() if k.endswith(label)), None)
        if other:
            value["ratio_vs_baseline"] = round(value["median_ms"] / other["median_ms"], 2)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--hot-lines", type=int, default=1000, help="open lines on the one SKU")
    parser.add_argument("--other-lines", type=int, default=200_000, help="waiting lines of the other SKUs")
    parser.add_argument("--skus", type=int, default=50_000)
    parser.add_argument("--receipts", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--units", type=int, default=5)
    parser.add_argument("--reset-every", type=int, default=15, help="put the queue back as seeded every N receipts")
    parser.add_argument("--variant", choices=["asis", "proposed", "both"], default="asis")
    parser.add_argument("--proposals", default="all", help=f"all, or some of {','.join(common.PROPOSALS)}")
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
        proposals = {p for p in args.proposals.split(",") if p} if args.proposals != "all" else set(common.PROPOSALS)
        print(json.dumps(child_run(args.url, args.receipts, args.warmup, args.units, args.reset_every, proposals)))
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
                f"statements {value['median_statements']:.0f}  lines/receipt {value['median_lines_allocated']:.0f}"
                + (f"  ×{value['ratio_vs_baseline']} vs baseline" if "ratio_vs_baseline" in value else "")
            )
    common.OUT.mkdir(exist_ok=True)
    target = args.json or common.OUT / f"per_sku-{args.db}-{args.variant}.json"
    target.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nresults: {target}")


if __name__ == "__main__":
    main()
