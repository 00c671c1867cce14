"""The worker's two halves alone, without HTTP: how fast the inbox processor turns received
Shopify ``orders/create`` rows into backorders, then how fast the dispatcher delivers the outbox
rows they wrote (sandbox connectors).

N rows (the body ``bench/ingest.py`` sends, one line on one of its 200 SKUs, no stock) are
committed to the inbox as the ingress commits them, untimed; then ``InboxProcessor.drain`` is
timed (claims of ``process_limit`` rows, groups of ``[worker] batch_size``), then
``Dispatcher.drain``. Each database is fresh. Compare commits by running the same command with
``PYTHONPATH=<git archive of the other commit>/src``.

    .venv/bin/python bench/inbox_drain.py --db both
    .venv/bin/python bench/inbox_drain.py --db postgres --rows 500 --sql   # statements per order
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import ingest


def run_one(db: str, rows: int, count_sql: bool, outbox: bool, work: Path) -> dict[str, Any]:
    from sqlalchemy import event

    import backorder
    from backorder.bootstrap import bootstrap, read_config
    from backorder.domain import commands as c

    name = f"bench_inbox_drain_{db}"
    url = common.fresh_database(db, name)
    config = work / f"{name}.toml"
    config.write_text(
        f'database_url = "{url}"\nlocations = ["main"]\n[worker]\nbatch_size = 20\nbop_interval_minutes = 0\n'
        '[channels.web]\nplatform = "shopify"\nwebhook_secret = "bench"\nreconcile_minutes = 0\n',
        encoding="utf-8",
    )
    app = bootstrap(read_config(config, environ={}), sandbox_folder=False)
    try:
        app.bus.handle(c.ImportBatch(tuple(c.UpsertSku(f"SKU{i:04d}", f"Bench SKU {i}") for i in range(ingest.SKUS))))
        services = app.channel_services
        now = datetime.now(UTC)
        headers = {"x-shopify-topic": "orders/create"}
        items = [
            ("shopify", "web", f"e{i}", "orders/create", headers, ingest.order_body(i, "drain"), now)
            for i in range(rows)
        ]
        for start in range(0, rows, 500):
            services.inbox.record_many(items[start : start + 500])
        statements: Counter[str] = Counter()

        def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements[" ".join(statement.split())[:60]] += 1

        if count_sql:
            event.listen(app.engine, "before_cursor_execute", seen)
        started = time.perf_counter()
        processed = services.processor.drain(services.process_limit)
        inbox_seconds = time.perf_counter() - started
        if count_sql:
            event.remove(app.engine, "before_cursor_execute", seen)
        started = time.perf_counter()
        delivered = app.dispatcher.drain(limit=50).claimed if outbox else 0
        outbox_seconds = time.perf_counter() - started
    finally:
        app.close()
        common.drop_database(db, name)
    result: dict[str, Any] = {
        "db": db,
        "code": str(Path(backorder.__file__).resolve().parents[1]),
        "inbox_rows": processed,
        "inbox_seconds": round(inbox_seconds, 3),
        "inbox_rows_per_second": round(processed / inbox_seconds, 1),
        "outbox_rows": delivered,
        "outbox_seconds": round(outbox_seconds, 3),
        "outbox_rows_per_second": round(delivered / outbox_seconds, 1) if delivered else None,
    }
    if count_sql:
        result["statements_per_order"] = round(sum(statements.values()) / max(processed, 1), 2)
        result["statements"] = dict(statements.most_common(20))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--sql", action="store_true", help="count the statements of the inbox drain")
    parser.add_argument("--no-outbox", dest="outbox", action="store_false", help="time the inbox half only")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    work = Path(tempfile.mkdtemp(prefix="bench-inbox-drain-"))
    results = []
    for _ in range(args.repeat):
        for db in dbs:
            r = run_one(db, args.rows, args.sql, args.outbox, work)
            results.append(r)
            extra = f", {r['statements_per_order']} statements per order" if args.sql else ""
            print(
                f"[{db}] inbox {r['inbox_rows']} rows in {r['inbox_seconds']:.2f}s = {r['inbox_rows_per_second']:.0f}/s"
                f"{extra}; outbox {r['outbox_rows']} rows in {r['outbox_seconds']:.2f}s  ({r['code']})",
                flush=True,
            )
    out = args.json or common.OUT / f"inbox_drain-{args.db}.json"
    out.write_text(json.dumps({"machine": common.machine(), "command": sys.argv, "results": results}, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
