"""Shared pieces of the benchmarks: fresh databases, a seeded synthetic world loaded with fast
bulk SQL (not timed), statement counting, peak memory, and the machine description.

Nothing here goes through the handlers: the world is written straight into the tables the
migrations created, the way a restore or a bulk import would leave it (waiting lines and
available stock side by side, which is what a full backorder run is for).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))  # another server: BENCH_PG_PORT=5439
PG_ADMIN_DB = os.environ.get("BENCH_PG_ADMIN_DB", "test")
PG_DSN = "host=127.0.0.1 port=" + str(PG_PORT) + " user=postgres dbname={name}"
OUT = Path(__file__).with_name("out")
SUPPLIER = "SUP1"
LEAD_TIME_DAYS = 14
LOCATION = "main"
CHANNELS = ("web", "pos", "b2b")


# --- databases ------------------------------------------------------------------------------


def database_url(db: str, name: str) -> str:
    if db == "sqlite":
        return f"sqlite:///{OUT / (name + '.db')}"
    return f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/{name}"


def _sqlite_path(name: str) -> Path:
    return OUT / f"{name}.db"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN.format(name=PG_ADMIN_DB), autocommit=True) as conn:
        conn.execute(sql)


def drop_database(db: str, name: str) -> None:
    if db == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(str(_sqlite_path(name)) + suffix).unlink(missing_ok=True)
    else:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_database(db: str, name: str) -> str:
    """An empty database at the current schema (the real migrations); returns its URL."""
    from backorder.store.engine import build_engine
    from backorder.store.migrate import upgrade

    OUT.mkdir(exist_ok=True)
    drop_database(db, name)
    if db == "postgres":
        _pg_admin(f'CREATE DATABASE "{name}"')
    url = database_url(db, name)
    engine = build_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


def clone_database(db: str, source: str, target: str) -> str:
    """A byte-for-byte copy of a seeded database (so every timed run starts from the same state;
    on PostgreSQL also after a CHECKPOINT, so no run pays for the previous run's dirty pages)."""
    drop_database(db, target)
    if db == "sqlite":
        shutil.copyfile(_sqlite_path(source), _sqlite_path(target))
    else:
        _pg_admin(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
        _pg_admin("CHECKPOINT")
    return database_url(db, target)


# --- the synthetic world --------------------------------------------------------------------


def sku_code(i: int) -> str:
    return f"SKU{i:06d}"


def order_code(i: int) -> str:
    return f"O{i:08d}"


@dataclass
class World:
    """Orders and lines as arrays (index = id - 1 for lines, order number for orders)."""

    skus: int
    order_channel: np.ndarray  # int8 index into CHANNELS
    order_priority: np.ndarray  # int64
    order_ship_complete: np.ndarray  # bool
    order_placed_us: np.ndarray  # int64 microseconds since the epoch, UTC
    line_order: np.ndarray  # int64 order number
    line_no: np.ndarray  # int64, 1-based within the order
    line_sku: np.ndarray  # int64 SKU number
    line_qty: np.ndarray  # int64
    eta: date

    @property
    def orders(self) -> int:
        return int(self.order_channel.size)

    @property
    def lines(self) -> int:
        return int(self.line_order.size)

    def demand_by_sku(self) -> np.ndarray:
        return np.bincount(self.line_sku, weights=self.line_qty, minlength=self.skus).astype(np.int64)


def make_world(
    lines: int,
    skus: int,
    *,
    seed: int = 20261127,
    ship_complete_share: float = 0.01,
    hot_sku: int | None = None,
    hot_lines: int = 0,
    now: datetime | None = None,
) -> World:
    """~2.5 lines per order (1–4), SKUs uniform at random, quantities 1–5 (mostly 1–2),
    priority mostly 0, placed over the last 60 days, ``ship_complete_share`` of orders
    ship-complete. With ``hot_sku``, ``hot_lines`` extra orders each have that SKU as line 1."""
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    sizes = rng.integers(1, 5, size=lines // 2 + 16)  # mean 2.5
    ends = np.cumsum(sizes)
    count = int(np.searchsorted(ends, lines)) + 1
    sizes = sizes[:count].copy()
    sizes[-1] -= int(ends[count - 1]) - lines
    if sizes[-1] <= 0:
        sizes = sizes[:-1]
    line_sku = rng.integers(0, skus, size=lines)
    if hot_sku is not None:
        line_sku[line_sku == hot_sku] = (hot_sku + 1) % skus  # the hot SKU gets exactly ``hot_lines``
    if hot_sku is not None and hot_lines:
        extra = rng.integers(1, 5, size=hot_lines)
        first = np.cumsum(extra) - extra
        extra_sku = rng.integers(0, skus, size=int(extra.sum()))
        extra_sku[extra_sku == hot_sku] = (hot_sku + 1) % skus
        extra_sku[first] = hot_sku
        sizes = np.concatenate([sizes, extra])
        line_sku = np.concatenate([line_sku, extra_sku])
    orders = int(sizes.size)
    line_order = np.repeat(np.arange(orders, dtype=np.int64), sizes)
    starts = np.cumsum(sizes) - sizes
    line_no = np.arange(line_order.size, dtype=np.int64) - np.repeat(starts, sizes) + 1
    line_qty = rng.choice(np.array([1, 2, 3, 4, 5]), size=line_order.size, p=[0.45, 0.3, 0.12, 0.08, 0.05])
    priority = rng.choice(np.array([0, 1, 2]), size=orders, p=[0.94, 0.05, 0.01])
    span_us = 60 * 86400 * 1_000_000
    start_us = int((now - timedelta(days=60)).timestamp() * 1_000_000)
    placed = start_us + rng.integers(0, span_us, size=orders)
    return World(
        skus=skus,
        order_channel=rng.choice(np.array([0, 1, 2], dtype=np.int8), size=orders, p=[0.7, 0.2, 0.1]),
        order_priority=priority.astype(np.int64),
        order_ship_complete=rng.random(orders) < ship_complete_share,
        order_placed_us=placed.astype(np.int64),
        line_order=line_order,
        line_no=line_no,
        line_sku=line_sku.astype(np.int64),
        line_qty=line_qty.astype(np.int64),
        eta=(now + timedelta(days=LEAD_TIME_DAYS)).date(),
    )


def _stamps(placed_us: np.ndarray, sqlite: bool) -> list[str]:
    """Timestamps as each dialect stores them (SQLite: SQLAlchemy's naive text form)."""
    base = datetime(1970, 1, 1)
    out = []
    for us in placed_us.tolist():
        value = base + timedelta(microseconds=us)
        text = value.isoformat(sep=" ", timespec="microseconds")
        out.append(text if sqlite else text + "+00")
    return out


def load_world(url: str, world: World, stock_share: float | None, *, stock_seed: int = 7) -> dict[str, Any]:
    """Write catalog, one location, orders and lines; then stock for every SKU covering about
    ``stock_share`` of its demand (at least one unit), or none when ``stock_share`` is None.
    Returns a summary."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    stamps_sqlite = url.startswith("sqlite")
    placed = _stamps(world.order_placed_us, stamps_sqlite)
    created = now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") + ("" if stamps_sqlite else "+00")
    skus = [sku_code(i) for i in range(world.skus)]
    if stock_share is None:
        on_hand = np.zeros(world.skus, dtype=np.int64)
    else:
        rng = np.random.default_rng(stock_seed)
        demand = world.demand_by_sku()
        on_hand = np.maximum(1, np.rint(demand * rng.uniform(0, 2 * stock_share, size=world.skus))).astype(np.int64)
    eta = world.eta.isoformat()
    ch = [CHANNELS[c] for c in world.order_channel.tolist()]
    prio = world.order_priority.tolist()
    sc = world.order_ship_complete.tolist()
    order_ids = [order_code(i) for i in range(world.orders)]

    def line_rows() -> Iterator[tuple[Any, ...]]:
        for i, (o, no, s, q) in enumerate(
            zip(
                world.line_order.tolist(),
                world.line_no.tolist(),
                world.line_sku.tolist(),
                world.line_qty.tolist(),
                strict=True,
            ),
            start=1,
        ):
            yield (i, order_ids[o], no, skus[s], q, 0, 0, q, "open", eta, ch[o], prio[o], placed[o], sc[o])

    if stamps_sqlite:
        _load_sqlite(url, world, skus, order_ids, ch, prio, sc, placed, created, line_rows(), on_hand)
    else:
        _load_postgres(url, world, skus, order_ids, ch, prio, sc, placed, created, line_rows(), on_hand)
    return {
        "orders": world.orders,
        "lines": world.lines,
        "skus": world.skus,
        "ship_complete_orders": int(world.order_ship_complete.sum()),
        "units_backordered": int(world.line_qty.sum()),
        "units_on_hand": int(on_hand.sum()),
        "load_seconds": round(time.perf_counter() - started, 1),
    }


def _load_sqlite(
    url: str,
    world: World,
    skus: list[str],
    order_ids: list[str],
    ch: list[str],
    prio: list[int],
    sc: list[bool],
    placed: list[str],
    created: str,
    lines: Iterator[tuple[Any, ...]],
    on_hand: np.ndarray,
) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO suppliers (code, name, email, lead_time_days) VALUES (?, ?, ?, ?)",
        (SUPPLIER, "Bench supplier", "buyer@example.com", LEAD_TIME_DAYS),
    )
    conn.execute("INSERT INTO locations (code, position) VALUES (?, 0)", (LOCATION,))
    conn.executemany(
        "INSERT INTO skus (code, name, preferred_supplier, unit_price) VALUES (?, ?, ?, '9.90')",
        ((code, f"Paint {code}", SUPPLIER) for code in skus),
    )
    conn.executemany(
        "INSERT INTO supplier_items (supplier, sku, supplier_sku, unit_cost) VALUES (?, ?, ?, '4.50')",
        ((SUPPLIER, code, "S-" + code) for code in skus),
    )
    conn.executemany(
        "INSERT INTO orders (id, channel, placed_at, priority, ship_complete, customer_email, customer_name, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (oid, ch[i], placed[i], prio[i], int(sc[i]), f"c{i}@example.com", f"Customer {i}", created)
            for i, oid in enumerate(order_ids)
        ),
    )
    conn.executemany(
        "INSERT INTO order_lines (id, order_id, line_no, sku, quantity, allocated, shipped, backordered, status, eta, "
        "channel, priority, placed_at, ship_complete) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ((*row[:13], int(row[13])) for row in lines),
    )
    conn.executemany(
        "INSERT INTO stock_levels (sku, location, on_hand, allocated) VALUES (?, ?, ?, 0)",
        ((code, LOCATION, q) for code, q in zip(skus, on_hand.tolist(), strict=True)),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _copy_text(rows: Iterator[tuple[Any, ...]]) -> Iterator[bytes]:
    buf: list[str] = []
    for row in rows:
        buf.append(
            "\t".join("\\N" if v is None else ("t" if v is True else "f" if v is False else str(v)) for v in row)
        )
        if len(buf) >= 20000:
            yield ("\n".join(buf) + "\n").encode()
            buf = []
    if buf:
        yield ("\n".join(buf) + "\n").encode()


def _load_postgres(
    url: str,
    world: World,
    skus: list[str],
    order_ids: list[str],
    ch: list[str],
    prio: list[int],
    sc: list[bool],
    placed: list[str],
    created: str,
    lines: Iterator[tuple[Any, ...]],
    on_hand: np.ndarray,
) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_DSN.format(name=name)) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            "INSERT INTO suppliers (code, name, email, lead_time_days) VALUES (%s, %s, %s, %s)",
            (SUPPLIER, "Bench supplier", "buyer@example.com", LEAD_TIME_DAYS),
        )
        conn.execute("INSERT INTO locations (code, position) VALUES (%s, 0)", (LOCATION,))

        def copy(sql: str, rows: Iterator[tuple[Any, ...]]) -> None:
            with conn.cursor() as cur, cur.copy(sql) as cp:
                for chunk in _copy_text(rows):
                    cp.write(chunk)

        copy(
            "COPY skus (code, name, preferred_supplier, unit_price) FROM STDIN",
            ((code, f"Paint {code}", SUPPLIER, "9.90") for code in skus),
        )
        copy(
            "COPY supplier_items (supplier, sku, supplier_sku, unit_cost) FROM STDIN",
            ((SUPPLIER, code, "S-" + code, "4.50") for code in skus),
        )
        copy(
            "COPY orders (id, channel, placed_at, priority, ship_complete, customer_email, customer_name, created_at) FROM STDIN",
            (
                (oid, ch[i], placed[i], prio[i], sc[i], f"c{i}@example.com", f"Customer {i}", created)
                for i, oid in enumerate(order_ids)
            ),
        )
        copy(
            "COPY order_lines (id, order_id, line_no, sku, quantity, allocated, shipped, backordered, status, eta, "
            "channel, priority, placed_at, ship_complete) FROM STDIN",
            lines,
        )
        copy(
            "COPY stock_levels (sku, location, on_hand, allocated) FROM STDIN",
            ((code, LOCATION, q, 0) for code, q in zip(skus, on_hand.tolist(), strict=True)),
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('order_lines', 'id'), (SELECT max(id) FROM order_lines))")
        conn.commit()
    with psycopg.connect(PG_DSN.format(name=name), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # what autovacuum would have done to tables this old
        conn.execute("CHECKPOINT")


# --- measuring ------------------------------------------------------------------------------


class StatementCounter:
    """Counts SQL statements sent through SQLAlchemy (an executemany counts once; its rows are
    counted apart) and psycopg COPY streams, which SQLAlchemy does not see."""

    def __init__(self) -> None:
        self.statements = 0
        self.executemany_rows = 0
        self.copies = 0
        self.by_phase: dict[str, int] = {}
        self.phase = "other"
        self.first_words: dict[str, int] = {}

    def attach(self, engine: Any) -> None:
        from sqlalchemy import event

        event.listen(engine, "before_cursor_execute", self._on_execute)
        try:
            import psycopg

            original = psycopg.Cursor.copy
            counter = self

            def counting_copy(cursor: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
                counter.copies += 1
                counter.statements += 1
                counter.by_phase[counter.phase] = counter.by_phase.get(counter.phase, 0) + 1
                return original(cursor, statement, *args, **kwargs)

            psycopg.Cursor.copy = counting_copy  # type: ignore[method-assign]
        except ImportError:
            pass

    def _on_execute(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        self.statements += 1
        self.by_phase[self.phase] = self.by_phase.get(self.phase, 0) + 1
        word = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        self.first_words[word] = self.first_words.get(word, 0) + 1
        if executemany:
            self.executemany_rows += len(parameters)

    def as_dict(self) -> dict[str, Any]:
        return {
            "statements": self.statements,
            "executemany_rows": self.executemany_rows,
            "copy_streams": self.copies,
            "by_phase": dict(sorted(self.by_phase.items(), key=lambda kv: -kv[1])),
            "by_verb": dict(sorted(self.first_words.items(), key=lambda kv: -kv[1])),
        }


class Phases:
    """Exclusive wall time per named phase, by wrapping functions (nested phases subtract)."""

    def __init__(self, counter: StatementCounter | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[list[Any]] = []
        self._counter = counter

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        original = getattr(owner, attr)
        phases = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            with phases.phase(name):
                return original(*args, **kwargs)

        timed.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(owner, attr, timed)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        frame = [name, time.perf_counter(), 0.0]
        outer = self._stack[-1] if self._stack else None
        self._stack.append(frame)
        if self._counter is not None:
            previous, self._counter.phase = self._counter.phase, name
        try:
            yield
        finally:
            self._stack.pop()
            elapsed = time.perf_counter() - frame[1]
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed - frame[2]
            self.calls[name] = self.calls.get(name, 0) + 1
            if outer is not None:
                outer[2] += elapsed
            if self._counter is not None:
                self._counter.phase = previous

    def as_dict(self) -> dict[str, Any]:
        return {
            k: {"seconds": round(v, 3), "calls": self.calls[k]}
            for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1])
        }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, str]:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "?"

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import sqlalchemy

    pg = "?"
    try:
        import psycopg

        with psycopg.connect(PG_DSN.format(name=PG_ADMIN_DB)) as conn:
            settings = ", ".join(
                f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}"  # type: ignore[index]
                for name in ("shared_buffers", "work_mem", "max_wal_size", "synchronous_commit")
            )
            row = conn.execute("SHOW server_version").fetchone()
            pg = f"{row[0] if row else '?'} on port {PG_PORT} ({settings})"
    except Exception:
        pass
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": run("nproc"),
        "free_h": run("free", "-h"),
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg,
        "sqlalchemy": sqlalchemy.__version__,
        "numpy": numpy.__version__,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def run_child(args: list[str]) -> dict[str, Any]:
    """Run ``python <args>`` and return the JSON object it prints last."""
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:])
        sys.stderr.write(proc.stderr[-8000:])
        raise SystemExit(f"child {args[:3]} failed with {proc.returncode}")
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr[-2000:])
    last = [line for line in proc.stdout.splitlines() if line.startswith("{")][-1]
    result: dict[str, Any] = json.loads(last)
    return result


def median(values: list[float]) -> float:
    return float(np.median(np.asarray(values, dtype=float))) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


# --- prototypes of proposed changes (all in the product now) --------------------------------
#
# ``--proposals`` once applied prototypes of changes to files the benchmarks did not own, so the
# report could say what each would buy. All four are in the product now: the index on
# ``supplier_items(sku)`` (a migration), batched ETA refreshes (``handlers.refresh_etas`` and the
# full run's set-based ETAs), the per-class payload builders (``rules``) and the driver-level
# outbox writes (``SqlOutbox.add``). The names are still accepted, and do nothing.

PROPOSALS = ("index", "etas", "payload", "outbox")


def apply_proposals(names: set[str], url: str) -> None:
    unknown = names - set(PROPOSALS)
    if unknown:
        raise SystemExit(f"unknown proposals {sorted(unknown)}; known: {', '.join(PROPOSALS)}")


def vm_hwm_mb() -> float:
    """Peak RSS of this process image (``VmHWM``; unlike ``ru_maxrss`` it does not inherit the
    parent's peak across fork/exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
