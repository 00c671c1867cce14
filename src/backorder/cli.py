"""The `backorder` command. Thin: parse arguments, build a command, call the bus, print."""

from __future__ import annotations

import csv
import enum
import json
import logging
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from backorder.bootstrap import Application, bootstrap, read_config
from backorder.config import DEFAULT_DATABASE_URL, Config, ConfigError
from backorder.connectors.errors import ConnectorError
from backorder.domain import commands as c
from backorder.domain.errors import DomainError, WouldTakeReserved
from backorder.importer import CsvFileError, CsvImportError, ImportKind, import_file
from backorder.notify.render import money as format_money
from backorder.store.engine import driver_reason, is_unavailable, mask_url

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Backorder automation for art-materials retailers.")
db_cli = typer.Typer(no_args_is_help=True, help="Database schema.")
export_cli = typer.Typer(no_args_is_help=True, help="Export data.")
outbox_cli = typer.Typer(no_args_is_help=True, help="Outbound deliveries: list, retry, replay dead letters.")
po_cli = typer.Typer(no_args_is_help=True, help="Purchase orders.")
cli.add_typer(db_cli, name="db")
cli.add_typer(export_cli, name="export")
cli.add_typer(outbox_cli, name="outbox")
cli.add_typer(po_cli, name="po")

console = Console(stderr=True)
out = Console()


class Options:
    db: str | None = None
    config: Path | None = None


options = Options()

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=f"Database URL (env BACKORDER_DATABASE_URL; default {DEFAULT_DATABASE_URL}).",
        envvar="BACKORDER_DATABASE_URL",
    ),
]


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SENT = "sent"
    DEAD = "dead"
    SKIPPED = "skipped"


class InboxStatus(enum.StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML config file (env BACKORDER_CONFIG).", envvar="BACKORDER_CONFIG")
]


@cli.callback()
def main_options(
    db: DbOption = None,
    config: ConfigOption = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v: info, -vv: debug logs.")] = 0,
) -> None:
    options.db = db
    options.config = config
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def fail(message: str, hint: str | None = None) -> typer.Exit:
    # escaped: a message or hint may hold brackets ("[database] url"), which are not markup;
    # soft_wrap: one line however narrow the terminal (it folds it, if it must)
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if hint:
        console.print(f"[dim]{escape(hint)}[/]", soft_wrap=True)
    return typer.Exit(2)


DATABASE_HINT = (
    "The database is --db URL, else BACKORDER_DATABASE_URL, else [database] url in the config file; "
    "check it and that the server is running."
)
DATABASE_URL_HINT = "Give the database as --db URL, BACKORDER_DATABASE_URL or [database] url in the config file."


def database_failure(url: str, exc: Exception) -> typer.Exit:
    """One line for a database that cannot be used (never with its password), exit 2."""
    if isinstance(exc, ArgumentError):  # make_url: not a URL at all, or no such dialect
        return fail(
            f"{mask_url(url)} is not a database URL (e.g. sqlite:///backorder.db or postgresql+psycopg://user@host/db)",
            DATABASE_URL_HINT,
        )
    return fail(f"cannot connect to the database {mask_url(url)}: {driver_reason(exc)}", DATABASE_HINT)


@contextmanager
def application(**kwargs: Any) -> Iterator[Application]:
    try:
        config = read_config(options.config)
    except ConfigError as exc:
        raise fail(str(exc), "See backorder.example.toml for every key.") from None
    url = options.db or config.database_url
    try:
        app = bootstrap(config, database_url=options.db or None, **kwargs)
    except ConfigError as exc:
        raise fail(str(exc), "See backorder.example.toml for every key.") from None
    except ArgumentError as exc:
        raise database_failure(url, exc) from None
    except SQLAlchemyError as exc:
        if not is_unavailable(exc):
            raise
        raise database_failure(url, exc) from None
    try:
        yield app
    except DomainError as exc:
        raise fail(str(exc)) from None
    except SQLAlchemyError as exc:  # the database went away while the command ran
        if not is_unavailable(exc):
            raise
        raise database_failure(url, exc) from None
    finally:
        app.close()


def link_warning(config: Config) -> str | None:
    """What is wrong with the links customers will get, when something is."""
    real = sorted(n.kind for role, n in config.notify.items() if role in ("email", "sms") and n.kind != "sandbox")
    if not real or not config.server.public_url_is_local:
        return None
    return (
        f"[server] public_url is {config.server.public_url}, this machine's own address: the self-service and "
        f"unsubscribe links in customer messages ({', '.join(real)}) will not open for customers. "
        "Set it to the address customers reach this server at (e.g. https://backorder.example.com)."
    )


def warn_about_links(config: Config) -> None:
    warning = link_warning(config)
    if warning is not None:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", soft_wrap=True)


def progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, indent=2, sort_keys=False)


# --- db, import, export ---------------------------------------------------------------------


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema (every command also does this by itself)."""
    with application() as app:
        from backorder.store.migrate import current_revision

        out.print(f"schema at revision {current_revision(app.engine)}")


@cli.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV file with a header row.")],
    kind: Annotated[ImportKind, typer.Option("--kind", help="What the file holds.")],
) -> None:
    """Import a CSV file in one transaction: all rows or none."""
    with application() as app, progress() as bar:
        task = bar.add_task(f"importing {file.name}", total=None)
        try:
            result = import_file(
                app.bus,
                file,
                kind,
                progress=lambda n: bar.update(task, total=n, completed=n),
                known_locations={*app.config.locations, *app.read.locations()},
                stored_orders=app.read.stored_orders,
            )
        except CsvFileError as exc:
            raise fail(str(exc), "Fix the file (or the path to it) and run the import again.") from None
        except CsvImportError as exc:
            raise fail(str(exc), "Fix that row and run the import again.") from None
    what = "order(s)" if kind is ImportKind.ORDERS else f"{kind.value} row(s)"
    out.print(f"imported {result.rows} {what} from {file}")
    if result.already_imported:
        shown = ", ".join(result.already_imported[:10]) + (" …" if len(result.already_imported) > 10 else "")
        out.print(
            f"skipped {len(result.already_imported)} order(s) imported before ({shown}): an import never changes "
            "a stored order (use `backorder cancel` or the channel for changes)",
            soft_wrap=True,
        )


EXPORT_COLUMNS = ("order_id", "line_no", "sku", "quantity", "allocated", "backordered", "status", "eta")


@export_cli.command("lines")
def export_lines(fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv") -> None:
    """One row per order line: order_id, line_no, sku, quantity, allocated, backordered, status, eta."""
    if fmt not in ("csv", "json"):
        raise fail(f"unknown format {fmt!r}", "Use --format csv or --format json.")
    with application() as app:
        rows = ({k: row[k] for k in EXPORT_COLUMNS} for row in app.read.iter_lines())
        if fmt == "json":
            sys.stdout.write(dumps(list(rows)) + "\n")
            return
        writer = csv.DictWriter(sys.stdout, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "eta": row["eta"].isoformat() if row["eta"] else ""})


@export_cli.command("customer")
def export_customer(
    email: Annotated[str, typer.Argument(help="The customer's email address.")],
    channel: Annotated[str | None, typer.Option("--channel", help="Only this sales channel's data.")] = None,
) -> None:
    """Everything held about one customer, as JSON (a data request, e.g. Shopify customers/data_request):
    orders with contact fields and lines, message preferences, suppressions, recorded messages, raw webhooks."""
    from backorder.store.privacy import customer_data

    if "@" not in email:
        raise fail(f"{email!r} is not an email address", "Give the address the customer ordered with.")
    with application() as app, app.engine.connect() as conn:
        found = customer_data(conn, email, channel)
    sys.stdout.write(dumps(found) + "\n")
    if not found["orders"] and not found["webhooks"] and not found["messages"]:
        console.print(f"nothing is held about {email}", soft_wrap=True)


# --- engine ------------------------------------------------------------------------------------


@cli.command("bop")
def bop(
    sku: Annotated[list[str] | None, typer.Option("--sku", help="Only these SKUs (repeatable).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run backorder processing: hand available stock to waiting lines by the allocation contract."""
    with application() as app, progress() as bar:
        task = bar.add_task("allocating", total=None)
        before = app.read.counts()
        started = datetime.now()
        happened = app.bus.handle(c.RunBackorderProcessing(tuple(sku or ())))
        elapsed = (datetime.now() - started).total_seconds()
        bar.update(task, total=1, completed=1)
        after = app.read.counts()
    allocated = [e for e in happened if e.name == "BackorderAllocated"]
    units = sum(line.quantity for e in allocated for line in e.lines)  # type: ignore[attr-defined]
    result = {
        "orders_allocated": len(allocated),
        "units_allocated": units,
        "seconds": round(elapsed, 3),
        "open_backorders_before": before["open_backorders"],
        "open_backorders_after": after["open_backorders"],
    }
    if as_json:
        out.print_json(dumps(result))
    else:
        out.print(
            f"allocated {units} unit(s) to {len(allocated)} order(s) in {elapsed:.2f}s; "
            f"open backorder lines {before['open_backorders']} → {after['open_backorders']}"
        )


@cli.command("explain")
def explain(
    order_id: Annotated[str, typer.Argument(help="The order's id, as `export lines` shows it.")],
    as_json: JsonFlag = False,
) -> None:
    """Why an order's lines got (or did not get) stock: allocations, receipts, who went first."""
    with application() as app:
        data = app.read.explain(order_id)
    if data is None:
        raise fail(f"unknown order {order_id!r}", "List orders with `backorder export lines`.")
    if as_json:
        out.print_json(dumps(data))
        return
    out.print(
        f"[bold]Order {data['order_id']}[/] ({data['channel']}), placed {data['placed_at']}, "
        f"priority {data['priority']}{', ship complete' if data['ship_complete'] else ''}"
    )
    for line in data["lines"]:
        out.print(
            f"\n[bold]line {line['line_no']}[/] {line['sku']}: {line['quantity']} ordered, {line['allocated']} allocated "
            f"({line['shipped']} shipped), {line['backordered']} backordered, {line['status']}"
            + (f", ETA {line['eta']}" if line["eta"] else "")
        )
        for h in line["history"]:
            src = h["source"]
            if h["receipt"]:
                r = h["receipt"]
                src = f"receipt {h['source_ref']} ({r['quantity']} received at {r['location']} {r['received_at']}" + (
                    f", PO {r['po_number']})" if r["po_number"] else ")"
                )
            out.print(f"  {h['at']}  {h['kind']:<9} {h['quantity']:>5} at {h['location']} from {src}")
        if line["ranked_ahead"]:
            out.print(f"  ranked ahead and served first ({len(line['ranked_ahead'])}):")
            for a in line["ranked_ahead"]:
                out.print(
                    f"    {a['order_id']} line {a['line_no']} (priority {a['priority']}, placed {a['placed_at']}): {a['allocated']} allocated"
                )


@cli.command("receive")
def receive(
    sku: Annotated[str, typer.Argument(help="The SKU received.")],
    location: Annotated[str, typer.Argument(help="The location it was put away at.")],
    quantity: Annotated[int, typer.Argument(help="Units received.")],
    po: Annotated[
        str | None, typer.Option("--po", help="The purchase order it delivers (its open line is reduced).")
    ] = None,
) -> None:
    """Book a supplier receipt; waiting lines get the stock by the contract."""
    with application() as app:
        happened = app.bus.handle(c.ReceiveStock(sku, location, quantity, app.clock.now(), po))
    out.print(
        f"received {quantity} × {sku} at {location}; {sum(1 for e in happened if e.name == 'BackorderAllocated')} order(s) allocated"
    )


@cli.command("ship")
def ship(
    order_id: Annotated[str, typer.Argument(help="The order's id.")],
    line_no: Annotated[int, typer.Argument(help="The line number within the order.")],
    quantity: Annotated[int, typer.Argument(help="Units shipped.")],
    location: Annotated[
        str | None,
        typer.Option(
            "--location",
            help="Where it shipped from (default: where the line's stock is held); what the line held "
            "elsewhere is then free for the next waiting lines.",
        ),
    ] = None,
    take_reserved: Annotated[
        bool,
        typer.Option(
            "--take-reserved",
            help="Record it even when more left than the line holds plus what is free there: the "
            "difference is taken from other orders' reservations, which wait again (their customers are told).",
        ),
    ] = False,
) -> None:
    """Record a shipment of an order line."""
    with application() as app:
        try:
            app.bus.handle(c.ShipLine(order_id, line_no, quantity, location, take_reserved=take_reserved))
        except WouldTakeReserved as exc:
            raise fail(
                str(exc),
                f"Nothing was recorded. Ship at most {exc.shippable}, or if {quantity} really left, "
                "run the command again with --take-reserved.",
            ) from None
    out.print(f"shipped {quantity} of {order_id} line {line_no}")


@cli.command("cancel")
def cancel(
    order_id: Annotated[str, typer.Argument(help="The order's id.")],
    line: Annotated[
        list[int] | None, typer.Option("--line", help="Only this line number (repeatable; default: every open line).")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Kept with the cancellation and told to the customer.")] = (
        "cancelled by staff"
    ),
) -> None:
    """Cancel an order (or some lines); released stock goes to the next waiting lines."""
    with application() as app:
        app.bus.handle(c.CancelOrder(order_id, tuple(line or ()), reason))
    out.print(f"cancelled {order_id}" + (f" lines {', '.join(map(str, line))}" if line else ""))


@po_cli.command("list")
def po_list(as_json: JsonFlag = False) -> None:
    """Purchase orders with their status, lines, units and value."""
    with application() as app:
        rows = app.read.purchase_orders()
    if as_json:
        out.print_json(dumps(rows))
        return
    table = Table("number", "supplier", "status", "lines", "units", "value", "sent")
    for r in rows:
        table.add_row(
            r["number"],
            r["supplier"],
            r["status"],
            str(r["lines"]),
            str(r["units"]),
            format_money(r["value"], app.config.messages.currency),
            r["sent_at"].isoformat(timespec="minutes") if r["sent_at"] else "",
        )
    out.print(table)


@po_cli.command("send")
def po_send(
    number: Annotated[list[str] | None, typer.Argument(help="PO numbers (see `po list`).")] = None,
    all_drafts: Annotated[bool, typer.Option("--all", help="Send every draft PO.")] = False,
) -> None:
    """Send draft purchase orders now (one by number, or --all drafts)."""
    if not number and not all_drafts:
        raise fail("say which purchase order to send", "Pass a PO number, or --all for every draft.")
    with application() as app:
        if all_drafts:
            happened = app.bus.handle(c.SendDuePurchaseOrders(force=True))
        else:
            happened = []
            for n in number or []:
                happened += app.bus.handle(c.SendPurchaseOrder(n))
    out.print(f"sent {sum(1 for e in happened if e.name == 'PurchaseOrderSent')} purchase order(s)")


@po_cli.command("ack")
def po_ack(
    number: Annotated[str, typer.Argument(help="The PO number (see `po list`).")],
    expected: Annotated[
        str | None, typer.Option("--expected", help="Delivery date the supplier confirmed (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Record a supplier's acknowledgement; a confirmed date moves the waiting lines' ETAs."""
    try:
        on = date.fromisoformat(expected) if expected else None
    except ValueError:
        raise fail(f"--expected {expected!r} is not a date", "Write it as YYYY-MM-DD.") from None
    with application() as app:
        app.bus.handle(c.AcknowledgePurchaseOrder(number, on))
    out.print(f"{number} acknowledged" + (f", delivery {on}" if on else ""))


# --- outbox ----------------------------------------------------------------------------------


@outbox_cli.command("list")
def outbox_list(
    status: Annotated[OutboxStatus | None, typer.Option("--status", help="Only rows in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 50,
) -> None:
    """Recent outbound deliveries with their status and last error (for a skipped one: why)."""
    with application() as app:
        rows = app.queue.list(status, limit)
        counts = app.queue.counts()
    table = Table("id", "action", "target", "status", "attempts", "next attempt", "last error / note")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["action"],
            r["target"],
            r["status"],
            str(r["attempts"]),
            r["next_attempt_at"].isoformat(timespec="seconds"),
            (r["last_error"] or "")[:80],
        )
    out.print(table)
    out.print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def _refuse_outbox_ids(app: Application, ids: list[int], allowed: tuple[str, ...], hint: str) -> None:
    """Fail (exit 2, nothing changed) naming every id that is unknown or not in an ``allowed``
    state; read before anything is updated, so one bad id leaves the good ones untouched too."""
    wanted = sorted(set(ids))
    found = {int(r["id"]): str(r["status"]) for r in app.queue.list(limit=len(wanted), ids=wanted)}
    problems = []
    unknown = [i for i in wanted if i not in found]
    if unknown:
        problems.append(f"no outbox row with id{'s' if len(unknown) > 1 else ''} {', '.join(map(str, unknown))}")
    wrong = [i for i in wanted if i in found and found[i] not in allowed]
    if wrong:
        problems.append(", ".join(f"{i} is {found[i]}" for i in wrong) + f" (not {' or '.join(allowed)})")
    if problems:
        raise fail("; ".join(problems) + "; nothing was changed", hint)


@outbox_cli.command("retry")
def outbox_retry(ids: Annotated[list[int], typer.Argument(help="Outbox ids (see `outbox list`).")]) -> None:
    """Make pending or dead deliveries due now (every id must be one; else nothing changes)."""
    with application() as app:
        _refuse_outbox_ids(
            app, ids, ("pending", "dead"), "See `backorder outbox list --status pending` (or --status dead)."
        )
        n = app.queue.retry(ids, app.clock.now(), dead_only=False)
    out.print(f"{n} deliver{'y' if n == 1 else 'ies'} due now")


@outbox_cli.command("replay")
def outbox_replay(
    ids: Annotated[list[int], typer.Argument(help="Ids of dead outbox rows (see `outbox list --status dead`).")],
) -> None:
    """Replay dead letters: each is sent once more, with a fresh attempt budget (every id must be a
    dead letter; else nothing changes)."""
    with application() as app:
        _refuse_outbox_ids(app, ids, ("dead",), "See `backorder outbox list --status dead`.")
        n = app.queue.retry(ids, app.clock.now(), dead_only=True)
    if n == 0:
        raise fail("no dead letter with those ids", "See `backorder outbox list --status dead`.")
    out.print(f"{n} dead letter(s) queued again")


@outbox_cli.command("flush")
def outbox_flush() -> None:
    """Dispatch everything due now, then stop."""
    with application() as app:
        stats = app.dispatcher.drain()
    out.print(
        f"claimed {stats.claimed}: sent {stats.sent}, retried {stats.retried}, dead {stats.dead}, skipped {stats.skipped}"
    )


# --- processes -----------------------------------------------------------------------------


@cli.command("serve")
def serve(
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default: \\[server] host).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on (default: \\[server] port).")] = None,
    with_worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the dispatcher in this process.")
    ] = True,
) -> None:
    """Serve the HTTP app (webhooks, API, dashboard, /healthz), with the dispatcher in-process."""
    with application() as app:
        warn_about_links(app.config)
        _serve(app, host, port, with_worker)


def _serve(app: Application, host: str | None, port: int | None, with_worker: bool) -> None:
    import uvicorn

    from backorder.web.app import create_app, install_access_log_redaction
    from backorder.worker import InProcessWorker

    # Self-service and unsubscribe URLs carry signed tokens: the access log shows them as
    # [redacted] (a filter on uvicorn.access; uvicorn's logging config keeps logger filters).
    install_access_log_redaction()
    web = create_app(app)
    in_process: InProcessWorker | None = None
    if with_worker:
        in_process = InProcessWorker(app).start()
        web.state.backorder_worker = in_process  # /healthz reports it
    # uvicorn handles SIGTERM and SIGINT itself (a graceful shutdown), then raises the signal
    # again with the handlers it found: ours only note it, so the worker below is stopped and
    # joined (its round, deliveries and leases finished) instead of the process dying with it.
    with _stop_on_signals(lambda _signum: None):
        try:
            # http/loop "auto": httptools and uvloop (dependencies) when importable, else h11/asyncio.
            # One access-log line per request at info (bench/ingest.py serves its no-op the same way).
            uvicorn.run(
                web,
                host=host or app.config.server.host,
                port=port or app.config.server.port,
                log_level="info",
                http="auto",
                loop="auto",
                access_log=True,
            )
        finally:
            if in_process is not None and not in_process.stop(timeout=60):
                # its round (and its deliveries) end before the app closes
                console.print("worker still busy after 60 s; stopping anyway (its rows' leases will run out)")


@contextmanager
def _stop_on_signals(on_signal: Any) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT call ``on_signal(signum)`` instead of ending the process
    (a second one of them ends it as usual). Only the main thread can handle signals; elsewhere
    (a test runner's thread) nothing is installed."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = (signal.SIGTERM, signal.SIGINT)
    previous: dict[signal.Signals, Any] = {}

    def handle(signum: int, _frame: Any) -> None:
        for sig in wanted:  # a second signal: the default behaviour (stop now)
            signal.signal(sig, previous[sig])
        on_signal(signum)

    for sig in wanted:
        previous[sig] = signal.signal(sig, handle)
    try:
        yield
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)


@cli.command("worker")
def worker() -> None:
    """Run the outbox dispatcher and scheduler alone (several may run against PostgreSQL)."""
    import signal

    from backorder.worker import Worker

    with application() as app:
        warn_about_links(app.config)
        stop = threading.Event()
        the_worker = Worker(app)
        failed: list[BaseException] = []

        def run() -> None:
            try:
                the_worker.run(stop)
            except BaseException as exc:  # reported by the main thread
                failed.append(exc)

        # The worker runs on a thread of its own; this (main) thread only waits and takes the
        # signals: SIGTERM (systemctl/docker stop) or Ctrl-C set the stop event, the round under
        # way finishes (its rows are finished or released), and the command exits 0.
        thread = threading.Thread(target=run, name="backorder-worker", daemon=True)
        received: list[str] = []

        def on_signal(signum: int) -> None:
            received.append(signal.Signals(signum).name)
            stop.set()

        with _stop_on_signals(on_signal):
            thread.start()
            console.print("worker running; Ctrl-C or SIGTERM to stop (a second one stops at once)")
            while thread.is_alive():
                thread.join(timeout=0.5)
        if failed:
            raise failed[0]
        why = f" ({received[0]})" if received else ""
        console.print(f"worker stopped{why}")  # with -v the worker's own log says so too


# --- sales channels: `backorder connect PLATFORM CHANNEL`, reconciliation (issue 3) -----------

inbox_cli = typer.Typer(no_args_is_help=True, help="Inbound webhooks: list, re-process failed ones.")
cli.add_typer(inbox_cli, name="inbox")


@cli.command("channels")
def channels_list(as_json: JsonFlag = False) -> None:
    """Configured sales channels: platform, what they receive, and whether outbound calls wait."""
    from backorder.channels.state import channel_state

    with application(sandbox_folder=False) as app:
        services = app.channel_services
        rows = []
        for cid, settings in sorted(app.config.channels.items()):
            state = channel_state(settings)
            last, _watermark = services.store.sync_state(cid)
            registered = services.registrations.for_channel(cid) if services.registrations is not None else []
            rows.append(
                {
                    "channel": cid,
                    "platform": settings.kind,
                    "state": state,
                    "webhook_url": f"{app.config.server.public_url.rstrip('/')}/webhooks/{settings.kind}/{cid}",
                    "last_reconciled_at": last.isoformat() if last else None,
                    "webhooks": services.webhook_registrations(f"channels.{cid}"),
                    "registrations": [
                        {
                            "topic": r.topic,
                            "address": r.address,
                            "provider_id": r.provider_ref,
                            "registered_at": r.registered_at.isoformat(),
                            "error": r.error,
                        }
                        for r in registered
                    ],
                }
            )
        if as_json:
            out.print_json(json.dumps(rows))
            return
        table = Table("channel", "platform", "state", "webhooks", "last reconciled")
        for r in rows:
            table.add_row(
                r["channel"],
                r["platform"],
                r["state"],
                r["webhooks"] or "not known",
                r["last_reconciled_at"] or "never",
            )
        out.print(table)
        # The URL is the one value a user copies (into the platform's webhook settings): one line
        # each, never wrapped or cut by the console (a table cell would be, at 80 columns).
        if rows:
            out.print("webhook URLs (point the platform's webhooks here):")
            width = max(len(r["channel"]) for r in rows)
            for r in rows:
                out.print(
                    f"  {r['channel']:<{width}}  {r['webhook_url']}", soft_wrap=True, markup=False, highlight=False
                )


@inbox_cli.command("list")
def inbox_list(
    status: Annotated[InboxStatus | None, typer.Option("--status", help="Only rows in this state.")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="Only this channel's rows.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Recent inbox rows, newest first, with the reason of any failure."""
    with application(sandbox_folder=False) as app:
        rows = app.channel_services.inbox.list(status, channel, limit)
        if as_json:
            out.print_json(json.dumps(rows, default=str))
            return
        table = Table("id", "platform", "channel", "topic", "status", "attempts", "received", "error / note")
        for r in rows:
            table.add_row(
                str(r["id"]),
                r["platform"],
                r["channel"],
                r["topic"],
                r["status"],
                str(r["attempts"]),
                r["received_at"].isoformat(timespec="seconds"),
                (r["error"] or "")[:120],
            )
        out.print(table)


@inbox_cli.command("reprocess")
def inbox_reprocess(row_id: Annotated[int, typer.Argument(help="Inbox row id (see `backorder inbox list`).")]) -> None:
    """Put a failed (or ignored) row back and process it now."""
    with application(sandbox_folder=False) as app:
        services = app.channel_services
        if not services.inbox.reprocess(row_id):
            raise fail(f"inbox row {row_id} is not failed or ignored (or does not exist)")
        outcome = services.processor.process_id(row_id)
        if outcome is None:
            raise fail(f"inbox row {row_id} was claimed by a running worker; see `backorder inbox list`")
        out.print(f"inbox row {row_id}: {outcome.status} {outcome.detail}".rstrip())
        if outcome.status == "failed":
            raise typer.Exit(1)


@cli.command("connect")
def connect(
    platform: Annotated[str, typer.Argument(help="shopify | woocommerce")],
    channel: Annotated[str, typer.Argument(help="The channel id: the <id> of its \\[channels.<id>] table.")],
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Only check that the platform's subscriptions still deliver: re-create missing ones, "
            "re-enable disabled ones.",
        ),
    ] = False,
) -> None:
    """Create the platform's webhook subscriptions for a channel.

    They point at server.public_url; where the platform has one, the SKU-to-item map is loaded too.
    The worker re-checks them every webhook_check_minutes; --check does it now."""
    with application(sandbox_folder=False) as app:
        settings = app.config.channels.get(channel)
        if settings is None or settings.kind != platform:
            raise fail(f"no channel {channel!r} with platform {platform!r} in the config")
        connector = app.routes.channels.get(channel)
        if connector is None or not hasattr(connector, "register_webhooks"):
            raise fail(f"{platform} channels cannot be connected from here")
        missing = settings.missing_credentials()
        if missing:
            raise fail(f"channels.{channel} lacks {', '.join(missing)}; connect needs API credentials")
        services = app.channel_services
        if check:
            _check_subscriptions(app, channel, connector)
            return
        done: list[dict[str, Any]] = []
        failure: str | None = None
        try:
            connector.register_webhooks(app.config.server.public_url, into=done)
        except ConnectorError as exc:
            failure = exc.detail
        rows = services.record_registrations(channel, platform, done, app.clock.now(), failure)
        for reg in rows:
            state = f"registered (id {reg.provider_ref})" if reg.ok and reg.provider_ref else "registered"
            if reg.ok and not reg.provider_ref and platform == "shopify":
                state = "already registered"
            out.print(f"{reg.topic} → {reg.address}: {state if reg.ok else 'FAILED: ' + (reg.error or '')}")
        if failure is not None or not all(r.ok for r in rows):
            raise fail("some webhook subscriptions were not made; see above (recorded for `backorder channels`)")
        if hasattr(connector, "map_items"):
            try:
                mapped = connector.map_items()
            except ConnectorError as exc:
                raise fail(exc.detail) from None
            out.print(f"{mapped} variant(s) mapped by SKU")


def _check_subscriptions(app: Application, channel: str, connector: Any) -> None:
    if not hasattr(connector, "check_webhooks"):
        raise fail(f"channel {channel!r}: its platform's subscriptions cannot be checked from here")
    entries = app.channel_services.check_subscriptions(app.clock.now(), only=channel)[channel]
    if entries and "topic" not in entries[0]:
        raise fail(f"could not ask the platform: {entries[0]['error']}")
    for e in entries:
        state = e["state"] if e["state"] != "failed" else f"FAILED: {e['error']}"
        out.print(f"{e['topic']} → {e['address']}: {state}")
    if any(e["state"] == "failed" for e in entries):
        raise fail("some webhook subscriptions do not deliver and could not be restored; see above")


@cli.command("reconcile")
def reconcile(channel: Annotated[str | None, typer.Argument(help="One channel (default: all due).")] = None) -> None:
    """Pull recent orders (and stock) from channel APIs now, then process the inbox.

    Stock levels are pulled for stock-source channels only."""
    with application(sandbox_folder=False) as app:
        services = app.channel_services
        now = app.clock.now()
        if channel:
            connector = app.routes.channels.get(channel)
            if connector is None or not hasattr(connector, "recent_orders"):
                raise fail(f"no connected channel {channel!r} that can be reconciled")
            results = {channel: services.reconciler.reconcile_channel(channel, now)}
        else:
            results = {cid: services.reconciler.reconcile_channel(cid, now) for cid in services.reconciler.due(now)}
        handled = services.processor.drain()
        out.print_json(json.dumps({"channels": results, "inbox_rows_processed": handled}))
    failed = sorted(cid for cid, result in results.items() if _reconcile_failed(result))
    if failed:
        console.print(f'[bold red]error:[/] reconciliation failed for {", ".join(failed)} (see "error" above)')
        tables = ", ".join(f"\\[channels.{cid}]" for cid in failed)
        console.print(
            f"[dim]Set the channel's API credentials in {tables} of the config (`backorder channels` shows "
            "what is missing; an HTTP 401/403 means they were refused), then run it again; see docs/channels.md.[/]"
        )
        raise typer.Exit(1)


def _reconcile_failed(result: Any) -> bool:
    """A channel's `reconcile` result holds an error: its order pull's, or its stock pull's."""
    if not isinstance(result, dict):
        return False
    stock = result.get("stock")
    return bool(result.get("error")) or (isinstance(stock, dict) and bool(stock.get("error")))


class _HttpIngress:
    """The demo's webhooks and POS/B2B orders sent through the real HTTP routes of the app, in
    process (``POST /webhooks/<platform>/<channel>``, ``POST /api/v1/orders``): signature check,
    size limit, inbox commit and answer exactly as in production, with no port opened."""

    def __init__(self, app: Any) -> None:
        import asyncio

        import httpx

        from backorder.web.app import create_app

        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=create_app(app))
        self.client = httpx.AsyncClient(transport=transport, base_url="http://demo.invalid")

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        response = self.loop.run_until_complete(self.client.post(path, content=body, headers=headers))
        return int(response.status_code)

    def webhook(self, platform: str, channel: str, headers: dict[str, str], body: bytes) -> int:
        return self._post(f"/webhooks/{platform}/{channel}", body, headers)

    def api_order(self, api_key: str, idempotency_key: str, body: bytes) -> int:
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Idempotency-Key": idempotency_key,
            "Content-Type": "application/json",
        }
        return self._post("/api/v1/orders", body, headers)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def _print_channels(data: dict[str, Any]) -> None:
    """The demo summary's sales channels: orders per channel and platform, and what went out."""
    channels = data.get("channels") or {}
    if not channels:
        return
    table = Table(
        "channel", "platform", "orders", "came in as", "inbox", "sent to the platform", title="Sales channels"
    )
    for cid, entry in channels.items():
        inbox = ", ".join(f"{k} {v}" for k, v in entry.get("inbox", {}).items())
        calls = entry.get("platform_calls") or {}
        sent = (
            f"{entry.get('outbound', '')}: {calls.get('skus_set', 0)} stock level(s) set"
            if "outbound" in entry
            else "—"
        )
        table.add_row(cid, entry["platform"], str(entry["orders"]), entry["ingress"], inbox, sent)
    out.print(table)


# --- messaging (issue 4) --------------------------------------------------------------------


# --- staff users and API keys: `backorder user add`, `backorder apikey add` (issue 5) -------------

user_cli = typer.Typer(no_args_is_help=True, help="Dashboard users (argon2-hashed passwords).")
apikey_cli = typer.Typer(no_args_is_help=True, help="API keys for /api/v1 (stored hashed; shown once).")
cli.add_typer(user_cli, name="user")
cli.add_typer(apikey_cli, name="apikey")


@user_cli.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="The sign-in name.")],
    role: Annotated[
        str | None,
        typer.Option("--role", help="viewer, operator or admin (a new user: viewer; --update: unchanged)."),
    ] = None,
    password: Annotated[
        str | None, typer.Option("--password", help="Else read from BACKORDER_PASSWORD, else prompted.")
    ] = None,
    update_existing: Annotated[
        bool,
        typer.Option("--update", help="Change the password (and --role) of an existing user; signs them out."),
    ] = False,
) -> None:
    """Add a dashboard user (or change one with --update: their sessions end)."""
    import os

    from backorder.staff.service import StaffError
    from backorder.web.security import hash_password

    secret = (
        password
        or os.environ.get("BACKORDER_PASSWORD")
        or typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    )
    try:
        hashed = hash_password(secret)
    except ValueError as exc:
        raise fail(str(exc)) from None
    with application() as app:
        assert app.staff is not None
        try:
            existing = app.staff.user(username) if update_existing else None
            if existing is not None:
                ended = app.staff.update_user(username, password_hash=hashed, role=role)
                kept = role or existing.role
                app.staff.audit(
                    "cli", "user_update", username, {"role": kept, "password": True, "sessions_ended": ended}
                )
                out.print(f"updated {username} ({kept}); {ended} session(s) ended")
                return
            app.staff.add_user(username, hashed, role or "viewer")
        except StaffError as exc:
            raise fail(str(exc)) from None
        app.staff.audit("cli", "user_add", username, {"role": role or "viewer"})
        out.print(f"added {username} ({role or 'viewer'})")


@user_cli.command("list")
def user_list() -> None:
    """List dashboard users (name, role, active, last sign-in)."""
    with application() as app:
        assert app.staff is not None
        t = Table("name", "role", "active", "created", "last sign-in")
        for u in app.staff.users():
            t.add_row(
                u["username"],
                u["role"],
                "yes" if u["active"] else "no (disabled)",
                f"{u['created_at']:%Y-%m-%d}",
                f"{u['last_login_at']:%Y-%m-%d %H:%M}" if u["last_login_at"] else "never",
            )
        out.print(t)


@user_cli.command("disable")
def user_disable(username: Annotated[str, typer.Argument(help="The sign-in name.")]) -> None:
    """Revoke a user's access: they cannot sign in, and their open sessions end at once."""
    from backorder.staff.service import StaffError

    with application() as app:
        assert app.staff is not None
        try:
            ended = app.staff.set_active(username, False)
        except StaffError as exc:
            raise fail(str(exc), "`backorder user list` shows the users.") from None
        app.staff.audit("cli", "user_disable", username, {"sessions_ended": ended})
        out.print(f"disabled {username}; {ended} session(s) ended")


@user_cli.command("enable")
def user_enable(username: Annotated[str, typer.Argument(help="The sign-in name.")]) -> None:
    """Let a disabled user sign in again (with their existing password)."""
    from backorder.staff.service import StaffError

    with application() as app:
        assert app.staff is not None
        try:
            app.staff.set_active(username, True)
        except StaffError as exc:
            raise fail(str(exc), "`backorder user list` shows the users.") from None
        app.staff.audit("cli", "user_enable", username, {})
        out.print(f"enabled {username}")


@apikey_cli.command("add")
def apikey_add(
    name: Annotated[str, typer.Argument(help="What the key is for (e.g. 'pos-till-1').")],
    scope: Annotated[str, typer.Option("--scope", help="read, or write (implies read).")] = "read",
) -> None:
    """Create an API key; the key is printed once and only its hash is kept."""
    from backorder.staff.service import StaffError

    with application() as app:
        assert app.staff is not None
        try:
            key = app.staff.add_api_key(name, (scope,))
        except StaffError as exc:
            raise fail(str(exc)) from None
        app.staff.audit("cli", "apikey_add", key.prefix, {"name": name, "scope": scope})
        console.print(f"API key {key.prefix} for {name!r} ({scope}); it will not be shown again:")
        out.print(key.secret, soft_wrap=True)


@apikey_cli.command("list")
def apikey_list() -> None:
    """List API keys (prefix, name, scopes, last use, revoked)."""
    with application() as app:
        assert app.staff is not None
        t = Table("prefix", "name", "scopes", "created", "last used", "revoked")
        for k in app.staff.api_keys():
            t.add_row(
                k.prefix,
                k.name,
                k.scopes,
                f"{k.created_at:%Y-%m-%d}",
                f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "—",
                f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
            )
        out.print(t)


@apikey_cli.command("revoke")
def apikey_revoke(prefix: Annotated[str, typer.Argument(help="The key's prefix (from `apikey list`).")]) -> None:
    """Revoke an API key at once."""
    with application() as app:
        assert app.staff is not None
        if not app.staff.revoke_api_key(prefix):
            raise fail(f"no active API key {prefix!r}")
        app.staff.audit("cli", "apikey_revoke", prefix, {})
        out.print(f"revoked {prefix}")


# --- demo ----------------------------------------------------------------------------------


@cli.command("demo")
def demo(
    orders: Annotated[int, typer.Option("--orders", min=1, help="Orders to simulate.")] = 400,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same month.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    serve_after: Annotated[bool, typer.Option("--serve", help="Then serve the app on the demo data.")] = False,
    workdir: Annotated[
        Path | None, typer.Option("--dir", help="Keep the demo database here (default: a temporary folder).")
    ] = None,
) -> None:
    """Simulate a month of an art-materials shop on a fresh SQLite database and summarise it."""
    from backorder.demo import run_demo

    folder = workdir or Path(tempfile.mkdtemp(prefix="backorder-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "demo.db").exists():
        raise fail(f"{folder / 'demo.db'} already exists", "Pass an empty --dir, or omit it for a temporary one.")
    with progress() as bar:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(
                    {"catalog": "loading catalog", "days": "simulating days"}.get(stage, stage), total=total
                )
            bar.update(tasks[stage], completed=done, total=total)

        app, summary = run_demo(folder, orders=orders, seed=seed, progress=report, ingress=_HttpIngress)
    try:
        if as_json:
            sys.stdout.write(dumps(summary.as_json()) + "\n")
        else:
            _print_summary(summary)
        if serve_after:
            _serve(app, None, None, with_worker=True)
    finally:
        app.close()


def _print_summary(s: Any) -> None:
    data = s.as_json()
    out.rule("[bold]backorder demo[/]")
    out.print(f"{data['days']} simulated days · database {data['database_url']} · sandbox {data['sandbox_folder']}\n")
    t = Table("", "count", title="What happened")
    for key in (
        "orders",
        "order_lines",
        "backorder_lines",
        "purchase_orders",
        "receipts",
        "allocated_from_receipts",
        "shipped_lines",
        "cancelled_orders",
        "notifications",
        "open_backorders",
        "open_backorder_units",
    ):
        t.add_row(key.replace("_", " "), str(data[key]))
    out.print(t)
    _print_channels(data)  # issue 3
    t = Table("supplier", "POs", "lines", "units", title="Purchase orders (consolidated per supplier)")
    for supplier, v in sorted(data["purchase_orders_by_supplier"].items()):
        t.add_row(supplier, str(v["purchase_orders"]), str(v["lines"]), str(v["units"]))
    out.print(t)
    t = Table("channel", "message", "count", title="Messages in the sandbox")
    for key, n in data["messages_by_type"].items():
        kind, template = key.split(":", 1)
        t.add_row(kind, template, str(n))
    out.print(t)
    if s.explain_example:
        ex = s.explain_example
        out.print(f"\nExample: `backorder explain {ex['order_id']}` — how a receipt reached a waiting order:")
        for line in ex["lines"]:
            for h in line["history"]:
                if h["receipt"]:
                    out.print(
                        f"  line {line['line_no']} {line['sku']}: {h['quantity']} from receipt {h['source_ref']} "
                        f"(PO {h['receipt']['po_number']}) after {len(line['ranked_ahead'])} higher-ranked line(s)"
                    )


def main() -> None:
    try:
        cli()
    except ConnectorError as exc:
        console.print(f"[bold red]error:[/] {exc.detail}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
