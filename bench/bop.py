"""Full backorder run: 1,000,000 open backorder lines over 50,000 SKUs, stock for every SKU,
then ONE ``RunBackorderProcessing()`` through the real stack (bootstrap → message bus → unit of
work → handlers → rules → outbox → commit), timed.

    .venv/bin/python bench/bop.py --db sqlite            # the issue's run
    .venv/bin/python bench/bop.py --db postgres
    .venv/bin/python bench/bop.py --db both --repeat 3
    .venv/bin/python bench/bop.py --quick                 # 20k-line smoke run

The world is seeded once per database with bulk SQL (not timed) and copied for every timed run,
so each run starts from the same state. Each timed run is its own process, so its peak RSS is
the run's (plus the interpreter and imports, reported apart as ``rss_before_mb``).

After the timed run the result is checked: a sample of SKUs (closed over ship-complete
partners) against the pure-Python contract ``allocate``, line by line; and invariants over every
SKU (stock allocated = lines' allocations = holdings = ledger; no waiting line of an ordinary
order left while its SKU has stock; allocated + backordered = quantity).

The comparison baseline, on a copy of the same seeded database: the per-SKU path
(``RunBackorderProcessing(skus=(sku,))`` — the general walk via ``allocate_waiting``), one
command per SKU for a random sample, and one command for another sample all at once;
extrapolated per waiting line to the full size.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

# --- child: one timed full run --------------------------------------------------------------


def _read_sample(conn: Any, skus: list[str]) -> tuple[list[Any], dict[str, dict[str, int]], list[str]]:
    """Claims and pools of ``skus`` closed over ship-complete partners, before the run."""
    from backorder.domain.allocation import Claim

    scope = set(skus)
    while True:
        marks = ",".join(f"'{s}'" for s in sorted(scope))
        partners = {
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT DISTINCT l.sku FROM order_lines l WHERE l.status = 'open' AND l.backordered > 0 AND l.order_id IN "
                f"(SELECT order_id FROM order_lines WHERE sku IN ({marks}) AND status = 'open' AND backordered > 0 "
                "AND ship_complete)"
            )
        }
        if partners <= scope:
            break
        scope |= partners
    marks = ",".join(f"'{s}'" for s in sorted(scope))
    claims = [
        Claim(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]))
        for r in conn.exec_driver_sql(
            "SELECT id, order_id, line_no, sku, backordered, priority, placed_at, ship_complete FROM order_lines "
            f"WHERE sku IN ({marks}) AND status = 'open' AND backordered > 0"
        )
    ]
    pools: dict[str, dict[str, int]] = defaultdict(dict)
    for sku, location, on_hand, allocated in conn.exec_driver_sql(
        f"SELECT sku, location, on_hand, allocated FROM stock_levels WHERE sku IN ({marks})"
    ):
        pools[sku][location] = on_hand - allocated
    return claims, dict(pools), sorted(scope)


def _verify(conn: Any, claims: list[Any], pools: dict[str, dict[str, int]], scope: list[str]) -> dict[str, Any]:
    from backorder.domain.allocation import allocate

    expected: dict[int, int] = defaultdict(int)
    for grant in allocate(claims, pools):
        expected[grant.line_key] += grant.quantity
    marks = ",".join(f"'{s}'" for s in scope)
    actual = {r[0]: r[1] for r in conn.exec_driver_sql(f"SELECT id, allocated FROM order_lines WHERE sku IN ({marks})")}
    before = {c.line_key: 0 for c in claims}  # every seeded line starts with nothing allocated
    line_mismatches = [
        (line_id, expected.get(line_id, 0), actual[line_id] - before[line_id])
        for line_id in before
        if actual[line_id] - before[line_id] != expected.get(line_id, 0)
    ]
    q = lambda sql: conn.exec_driver_sql(sql).scalar()  # noqa: E731
    checks = {
        "sample_skus": len(scope),
        "sample_lines": len(claims),
        "sample_lines_allocated": sum(1 for v in expected.values() if v > 0),
        "sample_line_mismatches": len(line_mismatches),
        "skus_stock_vs_lines_mismatch": q(
            "SELECT count(*) FROM stock_levels s LEFT JOIN (SELECT sku, sum(allocated) a FROM order_lines GROUP BY sku) l "
            "ON l.sku = s.sku WHERE s.allocated <> coalesce(l.a, 0)"
        ),
        "skus_stock_vs_holdings_mismatch": q(
            "SELECT count(*) FROM stock_levels s LEFT JOIN (SELECT sku, location, sum(quantity) a FROM line_holdings "
            "GROUP BY sku, location) h ON h.sku = s.sku AND h.location = s.location WHERE s.allocated <> coalesce(h.a, 0)"
        ),
        "skus_stock_vs_ledger_mismatch": q(
            "SELECT count(*) FROM stock_levels s LEFT JOIN (SELECT sku, location, sum(quantity) a FROM allocation_ledger "
            "GROUP BY sku, location) g ON g.sku = s.sku AND g.location = s.location WHERE s.allocated <> coalesce(g.a, 0)"
        ),
        "lines_quantity_broken": q("SELECT count(*) FROM order_lines WHERE allocated + backordered <> quantity"),
        "skus_over_allocated": q("SELECT count(*) FROM stock_levels WHERE allocated > on_hand"),
        "skus_stock_left_with_ordinary_waiters": q(
            "SELECT count(DISTINCT s.sku) FROM stock_levels s JOIN order_lines l ON l.sku = s.sku "
            "WHERE s.on_hand > s.allocated AND l.status = 'open' AND l.backordered > 0 AND NOT l.ship_complete"
        ),
    }
    checks["ok"] = all(v == 0 for k, v in checks.items() if k.startswith(("skus_", "lines_", "sample_line_mismatches")))
    if line_mismatches:
        checks["first_mismatches"] = line_mismatches[:5]
    return checks


def _age_etas(url: str, days: int) -> None:
    """Move every waiting line's ETA ``days`` back (untimed): the state a run meets on a later
    day, when today + lead time has moved on and every ETA it refreshes changes."""
    from backorder.store.engine import build_engine

    engine = build_engine(url)
    with engine.begin() as conn:
        shift = f"date(eta, '-{days} day')" if conn.dialect.name == "sqlite" else f"eta - {days}"
        conn.exec_driver_sql(f"UPDATE order_lines SET eta = {shift} WHERE status = 'open' AND backordered > 0")
    engine.dispose()


def child_run(
    url: str, sample_size: int, seed: int, profile: str | None, proposals: set[str], stale_days: int = 0
) -> dict[str, Any]:
    common.apply_proposals(proposals, url)
    if stale_days:
        _age_etas(url, stale_days)
    from backorder.bootstrap import bootstrap, read_config
    from backorder.domain.commands import RunBackorderProcessing
    from backorder.services import handlers
    from backorder.services.rules import RuleSet
    from backorder.store.bulk import SqlBulkAllocation
    from backorder.store.repositories import SqlOutbox
    from backorder.store.unit_of_work import SqlUnitOfWork

    app = bootstrap(read_config(None), database_url=url, sandbox_folder=False)
    rng = random.Random(seed)
    with app.engine.connect() as conn:
        all_skus = [r[0] for r in conn.exec_driver_sql("SELECT code FROM skus ORDER BY code")]
        claims, pools, scope = _read_sample(conn, rng.sample(all_skus, min(sample_size, len(all_skus))))
        waiting_before = conn.exec_driver_sql(
            "SELECT count(*), coalesce(sum(backordered), 0) FROM order_lines WHERE status = 'open' AND backordered > 0"
        ).one()
        outbox_before = conn.exec_driver_sql("SELECT count(*) FROM outbox").scalar()
    counter = common.StatementCounter()
    counter.attach(app.engine)
    phases = common.Phases(counter)
    phases.wrap(SqlBulkAllocation, "load_queue", "load_queue")
    phases.wrap(handlers, "allocate_ranked_bulk", "allocate_ranked_bulk")
    phases.wrap(SqlBulkAllocation, "walk_lines", "walk: lines from the scan")
    phases.wrap(handlers, "allocate", "walk: allocate()")
    phases.wrap(SqlBulkAllocation, "apply", "apply (bulk writes)")
    phases.wrap(SqlBulkAllocation, "_events", "apply: events")
    phases.wrap(handlers, "_refresh_etas_bulk", "etas (rest)")
    phases.wrap(SqlBulkAllocation, "lead_times", "etas: lead_times")
    phases.wrap(SqlBulkAllocation, "save_etas", "etas: save_etas")
    # the per-SKU steps the full run used before (not called by it any more)
    phases.wrap(handlers, "allocate_waiting", "walk (allocate_waiting)")
    phases.wrap(handlers, "refresh_etas", "refresh_etas")
    phases.wrap(RuleSet, "actions", "rules → messages")
    phases.wrap(SqlOutbox, "add", "outbox insert")
    phases.wrap(SqlUnitOfWork, "commit", "commit")
    gc.collect()
    rss_before = common.vm_hwm_mb()
    load_before = os.getloadavg()[0]
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu_started = time.perf_counter(), time.process_time()
    happened = app.bus.handle(RunBackorderProcessing())
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    rss_peak = common.vm_hwm_mb()
    ru_maxrss = common.peak_rss_mb()
    load_after = os.getloadavg()[0]
    phase_table = phases.as_dict()
    phase_table["(rest: begin, bus, events)"] = {
        "seconds": round(seconds - sum(p["seconds"] for p in phase_table.values()), 3),
        "calls": 1,
    }
    with app.engine.connect() as conn:
        lines_allocated, units_allocated = conn.exec_driver_sql(
            "SELECT count(*), coalesce(sum(allocated), 0) FROM order_lines WHERE allocated > 0"
        ).one()
        outbox = {
            r[0]: r[1]
            for r in conn.exec_driver_sql(
                "SELECT action, count(*) FROM outbox WHERE id > 0 GROUP BY action ORDER BY action"
            )
        }
        ledger_rows = conn.exec_driver_sql("SELECT count(*) FROM allocation_ledger").scalar()
        checks = _verify(conn, claims, pools, scope)
    kinds: dict[str, int] = defaultdict(int)
    for event in happened:
        kinds[event.name] += 1
    app.close()
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "loadavg_1m_before_after": [round(load_before, 2), round(load_after, 2)],
        "proposals": sorted(proposals),
        "stale_eta_days": stale_days,
        "rss_before_mb": round(rss_before, 1),
        "rss_peak_mb": round(rss_peak, 1),
        "ru_maxrss_mb": round(ru_maxrss, 1),
        "waiting_lines_before": int(waiting_before[0]),
        "waiting_units_before": int(waiting_before[1]),
        "lines_allocated": int(lines_allocated),
        "units_allocated": int(units_allocated),
        "ledger_rows": int(ledger_rows),
        "outbox_rows": sum(outbox.values()) - int(outbox_before or 0),
        "outbox_by_action": outbox,
        "events": dict(kinds),
        "sql": counter.as_dict(),
        "phases": phase_table,
        "verify": checks,
    }


# --- child: the per-SKU baseline ------------------------------------------------------------


def child_baseline(url: str, per_sku: int, batched: int, seed: int, proposals: set[str]) -> dict[str, Any]:
    common.apply_proposals(proposals, url)
    from backorder.bootstrap import bootstrap, read_config
    from backorder.domain.commands import RunBackorderProcessing

    app = bootstrap(read_config(None), database_url=url, sandbox_folder=False)
    rng = random.Random(seed + 1)
    with app.engine.connect() as conn:
        all_skus = [r[0] for r in conn.exec_driver_sql("SELECT code FROM skus ORDER BY code")]
        counts = dict(
            conn.exec_driver_sql(
                "SELECT sku, count(*) FROM order_lines WHERE status = 'open' AND backordered > 0 GROUP BY sku"
            ).fetchall()
        )
        total_lines = sum(counts.values())
    picked = rng.sample(all_skus, min(per_sku + batched, len(all_skus)))
    one_by_one, together = picked[:per_sku], picked[per_sku:]
    counter = common.StatementCounter()
    counter.attach(app.engine)
    times: list[float] = []
    started = time.perf_counter()
    for sku in one_by_one:
        t0 = time.perf_counter()
        app.bus.handle(RunBackorderProcessing(skus=(sku,)))
        times.append(time.perf_counter() - t0)
    per_sku_seconds = time.perf_counter() - started
    per_sku_statements = counter.statements
    per_sku_lines = sum(counts.get(s, 0) for s in one_by_one)
    result: dict[str, Any] = {
        "total_waiting_lines": total_lines,
        "per_sku": {
            "skus": len(one_by_one),
            "lines": per_sku_lines,
            "seconds": round(per_sku_seconds, 3),
            "median_ms_per_command": round(common.median(times) * 1000, 2),
            "p90_ms_per_command": round(common.percentile(times, 90) * 1000, 2),
            "statements": per_sku_statements,
            "us_per_line": round(per_sku_seconds / max(per_sku_lines, 1) * 1e6, 1),
            "extrapolated_seconds": round(per_sku_seconds / max(per_sku_lines, 1) * total_lines, 1),
            "extrapolated_statements": round(per_sku_statements / max(per_sku_lines, 1) * total_lines),
        },
    }
    if together:
        before = counter.statements
        t0 = time.perf_counter()
        app.bus.handle(RunBackorderProcessing(skus=tuple(together)))
        seconds = time.perf_counter() - t0
        lines = sum(counts.get(s, 0) for s in together)
        result["batched"] = {
            "skus": len(together),
            "lines": lines,
            "seconds": round(seconds, 3),
            "statements": counter.statements - before,
            "us_per_line": round(seconds / max(lines, 1) * 1e6, 1),
            "extrapolated_seconds": round(seconds / max(lines, 1) * total_lines, 1),
        }
    app.close()
    return result


# --- the orchestration ----------------------------------------------------------------------


def child_seed(db: str, name: str, lines: int, skus: int, seed: int, stock_share: float) -> dict[str, Any]:
    url = common.fresh_database(db, name)
    world = common.make_world(lines, skus, seed=seed)
    return common.load_world(url, world, stock_share=stock_share)


def _variants(args: argparse.Namespace) -> list[tuple[str, set[str], int]]:
    proposed = set(common.PROPOSALS) if args.proposals == "all" else {p for p in args.proposals.split(",") if p}
    chosen: list[tuple[str, set[str], int]] = []
    if args.variant in ("asis", "both"):
        chosen.append(("as-is", set(), args.asis_repeat if args.variant == "both" else args.repeat))
    if args.variant in ("proposed", "both"):
        chosen.append(("proposed", proposed, args.repeat))
    return chosen


def run_database(db: str, args: argparse.Namespace) -> dict[str, Any]:
    here = str(Path(__file__).resolve())
    seed_name = f"bop_{db}_seed_{args.lines}_{args.skus}_{args.seed}"
    summary_file = common.OUT / f"{seed_name}.json"
    if args.reuse_seed and summary_file.exists():
        summary = json.loads(summary_file.read_text())
        print(f"[{db}] reusing seeded database {seed_name}", file=sys.stderr, flush=True)
    else:
        print(f"[{db}] seeding {args.lines:,} lines over {args.skus:,} SKUs …", file=sys.stderr, flush=True)
        summary = common.run_child(
            [
                here,
                "--child",
                "seed",
                "--db",
                db,
                "--url",
                seed_name,
                "--lines",
                str(args.lines),
                "--skus",
                str(args.skus),
                "--seed",
                str(args.seed),
                "--stock-share",
                str(args.stock_share),
            ]
        )
        summary_file.write_text(json.dumps(summary))
        print(f"[{db}] seeded: {summary}", file=sys.stderr, flush=True)
    variants: dict[str, Any] = {}
    for label, proposals, repeat in _variants(args):
        runs: list[dict[str, Any]] = []
        for i in range(repeat):
            run_url = common.clone_database(db, seed_name, f"bop_{db}_run")
            child = [
                here,
                "--child",
                "run",
                "--url",
                run_url,
                "--sample",
                str(args.sample),
                "--seed",
                str(args.seed),
                "--proposals",
                ",".join(sorted(proposals)),
            ]
            if args.stale_etas:
                child += ["--stale-etas", str(args.stale_etas)]
            if args.profile and i == 0:
                child += ["--profile-out", str(common.OUT / f"bop-{db}-{label}.prof")]
            result = common.run_child(child)
            print(
                f"[{db}] {label} run {i + 1}/{repeat}: {result['seconds']:.2f}s (cpu {result['cpu_seconds']:.2f}s), "
                f"peak RSS {result['rss_peak_mb']:.0f} MB, {result['sql']['statements']:,} statements, "
                f"verify ok={result['verify']['ok']}",
                file=sys.stderr,
                flush=True,
            )
            runs.append(result)
            common.drop_database(db, f"bop_{db}_run")
        baseline: dict[str, Any] | None = None
        if args.baseline_skus:
            base_url = common.clone_database(db, seed_name, f"bop_{db}_base")
            baseline = common.run_child(
                [
                    here,
                    "--child",
                    "baseline",
                    "--url",
                    base_url,
                    "--baseline-skus",
                    str(args.baseline_skus),
                    "--baseline-batched",
                    str(args.baseline_batched),
                    "--seed",
                    str(args.seed),
                    "--proposals",
                    ",".join(sorted(proposals)),
                ]
            )
            common.drop_database(db, f"bop_{db}_base")
            print(f"[{db}] {label} baseline: {json.dumps(baseline)}", file=sys.stderr, flush=True)
        seconds = [r["seconds"] for r in runs]
        out: dict[str, Any] = {
            "proposals": sorted(proposals),
            "runs": runs,
            "median_seconds": round(common.median(seconds), 3),
            "min_seconds": round(min(seconds), 3),
            "max_seconds": round(max(seconds), 3),
            "median_cpu_seconds": round(common.median([r["cpu_seconds"] for r in runs]), 3),
            "median_rss_peak_mb": round(common.median([r["rss_peak_mb"] for r in runs]), 1),
            "baseline": baseline,
        }
        if baseline:
            out["speedup_vs_per_sku"] = round(baseline["per_sku"]["extrapolated_seconds"] / out["median_seconds"], 1)
            if "batched" in baseline:
                out["speedup_vs_batched_walk"] = round(
                    baseline["batched"]["extrapolated_seconds"] / out["median_seconds"], 1
                )
        variants[label] = out
    if not args.keep:
        common.drop_database(db, seed_name)
        summary_file.unlink(missing_ok=True)
    return {"db": db, "world": summary, "variants": variants}


def print_summary(result: dict[str, Any]) -> None:
    db = result["db"]
    for label, v in result["variants"].items():
        run = sorted(v["runs"], key=lambda r: r["seconds"])[len(v["runs"]) // 2]
        print(
            f"\n== {db}, {label}{' ' + ','.join(v['proposals']) if v['proposals'] else ''}: "
            f"{result['world']['lines']:,} lines / {result['world']['skus']:,} SKUs =="
        )
        print(
            f"full run: median {v['median_seconds']:.2f}s wall (min {v['min_seconds']:.2f}, max {v['max_seconds']:.2f}, "
            f"n={len(v['runs'])}), median {v['median_cpu_seconds']:.2f}s CPU in the Python process; "
            f"peak RSS {v['median_rss_peak_mb']:.0f} MB (before the run {run['rss_before_mb']:.0f} MB); "
            f"load avg {run['loadavg_1m_before_after']}"
        )
        print(
            f"lines allocated {run['lines_allocated']:,}, units {run['units_allocated']:,}, ledger rows {run['ledger_rows']:,}, "
            f"outbox rows {run['outbox_rows']:,} {run['outbox_by_action']}"
        )
        sql = run["sql"]
        print(
            f"SQL statements {sql['statements']:,} (executemany rows {sql['executemany_rows']:,}, "
            f"COPY streams {sql['copy_streams']}); by verb {sql['by_verb']}"
        )
        print("phases (median run):")
        for name, p in run["phases"].items():
            print(
                f"  {name:34s} {p['seconds']:8.3f}s  calls {p['calls']:>6}  statements {sql['by_phase'].get(name, 0):>8,}"
            )
        print(f"verify: {run['verify']}")
        if v.get("baseline"):
            b = v["baseline"]
            print(f"baseline per-SKU: {b['per_sku']}")
            if "batched" in b:
                print(f"baseline batched: {b['batched']}")
            print(
                f"speed-up vs per-SKU path: {v.get('speedup_vs_per_sku')}x; vs one batched walk: {v.get('speedup_vs_batched_walk')}x"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--skus", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1, help="timed full runs per variant, each on a fresh copy")
    parser.add_argument("--quick", action="store_true", help="20k lines over 1,000 SKUs, small baseline")
    parser.add_argument(
        "--variant",
        choices=["asis", "proposed", "both"],
        default="asis",
        help="the code as it is, or with the prototyped proposals (all in the product now: the same code), or both",
    )
    parser.add_argument(
        "--proposals", default="all", help=f"with --variant proposed/both: all, or some of {','.join(common.PROPOSALS)}"
    )
    parser.add_argument("--asis-repeat", type=int, default=1, help="with --variant both: timed as-is runs")
    parser.add_argument("--stock-share", type=float, default=0.5, help="stock as a share of each SKU's demand (mean)")
    parser.add_argument("--sample", type=int, default=200, help="SKUs checked line by line against the contract")
    parser.add_argument("--baseline-skus", type=int, default=500, help="per-SKU commands in the baseline (0: none)")
    parser.add_argument("--baseline-batched", type=int, default=500, help="SKUs in the one batched baseline command")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument(
        "--stale-etas",
        type=int,
        default=0,
        metavar="DAYS",
        help="before each timed run (untimed), age every waiting line's ETA by DAYS: a run on a later day",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the first timed run to bench/out/bop-<db>-<variant>.prof"
    )
    parser.add_argument("--keep", action="store_true", help="keep the seeded database (see --reuse-seed)")
    parser.add_argument("--reuse-seed", action="store_true", help="reuse a seeded database kept by --keep")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", choices=["run", "baseline", "seed"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    child_proposals = {p for p in args.proposals.split(",") if p} if args.proposals != "all" else set(common.PROPOSALS)
    if args.child == "seed":
        print(json.dumps(child_seed(args.db, args.url, args.lines, args.skus, args.seed, args.stock_share)))
        return
    if args.child == "run":
        result = child_run(args.url, args.sample, args.seed, args.profile_out, child_proposals, args.stale_etas)
        print(json.dumps(result, default=str))
        return
    if args.child == "baseline":
        print(
            json.dumps(
                child_baseline(args.url, args.baseline_skus, args.baseline_batched, args.seed, child_proposals),
                default=str,
            )
        )
        return
    if args.quick:
        args.lines, args.skus = 20_000, 1_000
        args.baseline_skus, args.baseline_batched = min(args.baseline_skus, 100), min(args.baseline_batched, 100)
        args.sample = min(args.sample, 100)
    command = ".venv/bin/python bench/bop.py " + " ".join(sys.argv[1:] if argv is None else argv)
    report: dict[str, Any] = {"command": command, "machine": common.machine(), "results": []}
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        result = run_database(db, args)
        report["results"].append(result)
        print_summary(result)
    common.OUT.mkdir(exist_ok=True)
    target = args.json or common.OUT / f"bop-{args.db}-{args.variant}{'-quick' if args.quick else ''}.json"
    target.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nresults: {target}")


if __name__ == "__main__":
    main()
