"""CSV import: each file is one transaction; a bad row is reported by file, row number and
column, and nothing of that file is imported.

Row numbers count the header as row 1, as a spreadsheet shows them."""

from __future__ import annotations

import codecs
import csv
import enum
import io
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from backorder.domain import commands
from backorder.domain.errors import DomainError, UnknownSku, UnknownSupplier
from backorder.services.messagebus import BatchItemFailed, MessageBus


class ImportKind(enum.StrEnum):
    SKUS = "skus"
    SUPPLIERS = "suppliers"
    STOCK = "stock"
    ORDERS = "orders"
    RECEIPTS = "receipts"


REQUIRED_COLUMNS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.SKUS: (
        "sku",
        "name",
        "brand",
        "colour",
        "pigments",
        "size",
        "hazmat",
        "supplier",
        "supplier_sku",
        "unit_cost",
        "lead_time_days",
        "moq",
        "case_pack",
        "safety_stock",
        "reorder_point",
        "order_up_to",
    ),
    ImportKind.SUPPLIERS: ("supplier", "name", "email", "lead_time_days"),
    ImportKind.STOCK: ("sku", "location", "on_hand"),
    ImportKind.ORDERS: (
        "order_id",
        "channel",
        "placed_at",
        "priority",
        "ship_complete",
        "customer_email",
        "customer_phone",
        "line_no",
        "sku",
        "quantity",
    ),
    ImportKind.RECEIPTS: ("sku", "location", "quantity", "received_at", "po_number"),
}
MAX_LENGTHS: dict[ImportKind, dict[str, int]] = {
    ImportKind.SKUS: {
        "sku": 64,
        "name": 300,
        "brand": 120,
        "product_line": 160,
        "colour": 160,
        "pigments": 200,
        "size": 80,
        "supplier": 64,
        "supplier_sku": 120,
    },
    ImportKind.SUPPLIERS: {"supplier": 64, "name": 200, "email": 320},
    ImportKind.STOCK: {"sku": 64, "location": 64},
    ImportKind.ORDERS: {
        "order_id": 128,
        "channel": 64,
        "customer_email": 320,
        "customer_phone": 40,
        "customer_name": 200,
        "order_ref": 64,
        "sku": 64,
    },
    ImportKind.RECEIPTS: {"sku": 64, "location": 64, "po_number": 64},
}
"""The longest text each column may hold (the database column's length; a test keeps them equal)."""
OPTIONAL_COLUMNS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.SKUS: ("product_line", "unit_price"),
    ImportKind.ORDERS: ("customer_name", "order_ref"),
}


class CsvImportError(Exception):
    def __init__(
        self, file: str, row: int | None, column: str | None, problem: str, *, message: str | None = None
    ) -> None:
        where = file + (f", row {row}" if row is not None else "") + (f", column {column!r}" if column else "")
        super().__init__(message or f"{where}: {problem}. Nothing from this file was imported.")
        self.file, self.row, self.column, self.problem = file, row, column, problem


class CsvFileError(CsvImportError):
    """The file as a whole cannot be imported (missing, a directory, unreadable, empty, not UTF-8):
    the fix is to the file or the path, not to one row's values."""


def _file_error(file: str, problem: str, message: str) -> CsvFileError:
    return CsvFileError(file, None, None, problem, message=message)


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
"""Deliberately permissive: one ``@``, a dot in the domain, no spaces."""

MAX_AMOUNT = 10**10
"""Amounts (unit cost, unit price) fit the database's NUMERIC(14, 4) and NUMERIC(12, 2): ten digits before the point."""
INTEGER_MIN, INTEGER_MAX = -(2**31), 2**31 - 1
"""The range of every whole-number column: the database's 32-bit INTEGER. (``on_hand`` is a
BIGINT in the table, but a count beyond this is a typo, and the same limit keeps every column's
rule one rule.)"""
WHOLE_NUMBER = re.compile(r"[+-]?\d+")

SEPARATORS = {";": "semicolon", "\t": "tab"}
"""What Excel writes instead of commas in some locales (``;``) or as "Text (Tab delimited)"."""


@dataclass(frozen=True)
class ImportResult:
    kind: ImportKind
    rows: int
    commands: int
    already_imported: tuple[str, ...] = ()  # orders skipped: stored before (an overlapping export)


class _Row:
    def __init__(self, file: str, number: int, data: dict[str, str], limits: Mapping[str, int]) -> None:
        self.file, self.number, self.data, self.limits = file, number, data, limits

    def fail(self, column: str | None, problem: str) -> CsvImportError:
        return CsvImportError(self.file, self.number, column, problem)

    def text(self, column: str, *, required: bool = True) -> str:
        value = (self.data.get(column) or "").strip()
        if required and not value:
            raise self.fail(column, "is empty")
        limit = self.limits.get(column)
        if limit is not None and len(value) > limit:
            raise self.fail(column, f"is {len(value)} characters long; at most {limit} are kept")
        return value

    def integer(self, column: str, *, default: int | None = None, minimum: int | None = None) -> int:
        raw = (self.data.get(column) or "").strip()
        if not raw:
            if default is None:
                raise self.fail(column, "is empty; a whole number is required")
            return default
        try:
            value = int(raw)
        except ValueError:
            if not WHOLE_NUMBER.fullmatch(raw):
                raise self.fail(column, f"{raw!r} is not a whole number") from None
            value = -(INTEGER_MAX + 2) if raw.startswith("-") else INTEGER_MAX + 1  # more digits than int() takes
        if minimum is not None and value < minimum:
            raise self.fail(column, f"must be at least {minimum}, got {_shown_number(raw, value)}")
        if not INTEGER_MIN <= value <= INTEGER_MAX:
            lowest = INTEGER_MIN if minimum is None else minimum
            size = "too large" if value > 0 else "too far below zero"
            raise self.fail(
                column, f"{_shown_number(raw, value)} is {size}; it must be between {lowest} and {INTEGER_MAX}"
            )
        return value

    def optional_int(self, column: str, minimum: int = 0) -> int | None:
        raw = (self.data.get(column) or "").strip()
        return None if not raw else self.integer(column, minimum=minimum)

    def decimal(self, column: str, *, required: bool = True) -> Decimal | None:
        raw = (self.data.get(column) or "").strip()
        if not raw:
            if required:
                raise self.fail(column, "is empty; an amount like 12.50 is required")
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise self.fail(column, f"{raw!r} is not an amount") from None
        if not value.is_finite() or value < 0:
            raise self.fail(column, f"{raw!r} must be a non-negative amount")
        if value >= MAX_AMOUNT:
            raise self.fail(column, f"{raw!r} is too large; an amount must be below {MAX_AMOUNT:,}")
        return value

    def email(self, column: str, *, example: str = "orders@supplier.example") -> str:
        value = self.text(column, required=False)
        if value and not EMAIL.fullmatch(value):
            raise self.fail(column, f"{value!r} is not an email address (like {example})")
        return value

    def raw(self, column: str) -> str:
        """The cell as written (stripped), for showing it in a message."""
        return (self.data.get(column) or "").strip()

    def boolean(self, column: str) -> bool:
        raw = (self.data.get(column) or "").strip().lower()
        if raw in ("", "0", "false", "no", "n"):
            return False
        if raw in ("1", "true", "yes", "y"):
            return True
        raise self.fail(column, f"{raw!r} is not true/false")

    def timestamp(self, column: str) -> datetime:
        raw = self.text(column)
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise self.fail(column, f"{raw!r} is not an ISO 8601 date-time (e.g. 2026-11-27T09:30:00Z)") from None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _shown_number(raw: str, value: int) -> str:
    """A whole number for a message: as parsed when in range, else as written (its start, when
    very long)."""
    if INTEGER_MIN <= value <= INTEGER_MAX:
        return str(value)
    return repr(raw) if len(raw) <= 24 else f"{raw[:12] + '…'!r} ({len(raw)} characters)"


def _read_text(path: Path, kind: ImportKind) -> str:
    """The file's text: UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8" writes one)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _file_error(str(path), "no such file", f"no such file: {path}") from None
    except IsADirectoryError:
        raise _file_error(str(path), "is a directory", f"{path} is a directory, not a CSV file") from None
    except OSError as exc:
        raise _file_error(str(path), "cannot be read", f"{path} cannot be read ({exc.strerror})") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = _row_at(data[: exc.start])
        raise CsvFileError(path.name, row, None, "not UTF-8 text (save the file as UTF-8 CSV)") from None
    if not text.strip():
        columns = ", ".join(REQUIRED_COLUMNS[kind])
        raise _file_error(
            path.name,
            "is empty",
            f"{path.name} is empty: it needs a header row with the columns {columns} for --kind {kind.value}",
        )
    return text


def _row_at(before: bytes) -> int | None:
    """The row number (as ``_rows`` counts them) of the row that continues after ``before``, the
    part of the file that decoded cleanly; None when that cannot be told."""
    try:
        records = csv.reader(io.StringIO(before.decode("utf-8") + "?", newline=""))
        return sum(1 for _ in records)
    except (csv.Error, UnicodeDecodeError):
        return None


def _check_header(name: str, kind: ImportKind, header: list[str]) -> None:
    """Refuse a header the rows cannot be read by: a required column missing (saying why when
    that can be told: another separator, names in another case), or a column named twice."""
    known = REQUIRED_COLUMNS[kind] + OPTIONAL_COLUMNS.get(kind, ())
    seen: set[str] = set()
    for column in header:
        if column in known and column in seen:
            raise CsvImportError(name, 1, column, f"column {column!r} appears twice in the header; keep one of them")
        seen.add(column)
    missing = [c for c in REQUIRED_COLUMNS[kind] if c not in header]
    in_other_case = {
        wanted: found for found in header for wanted in known if found.lower() == wanted and wanted not in header
    }
    if not missing and not in_other_case:
        return
    if len(header) == 1 and (separator := max(SEPARATORS, key=header[0].count)) in header[0]:
        raise CsvFileError(
            name,
            1,
            None,
            f"the header is one column, {_truncated(header[0], 60)!r}: the file looks {SEPARATORS[separator]}-"
            'separated (save it from the spreadsheet as "CSV (comma delimited)")',
        )
    problems = []
    if still_missing := [c for c in missing if c not in in_other_case]:
        problems.append(f"missing column(s) {', '.join(still_missing)} for --kind {kind.value}")
    if in_other_case:
        renames = ", ".join(f"{found!r} should be {wanted!r}" for wanted, found in in_other_case.items())
        problems.append(f"column name(s) differ only in case: {renames} (column names are lower case)")
    if still_missing:
        found = [repr(_truncated(c, 24)) for c in header if c]
        more = f" and {len(found) - 8} more" if len(found) > 8 else ""
        problems.append(
            f"the header has {', '.join(found[:8])}{more}"
            if found
            else "the header has no column names (it must be the first row)"
        )
    column = missing[0] if missing else next(iter(in_other_case))
    raise CsvImportError(name, 1, column, "; ".join(problems))


def _truncated(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _rows(path: Path, kind: ImportKind) -> Iterator[_Row]:
    """The data rows, numbered as a spreadsheet shows them: the header is row 1 and blank rows
    count (they are skipped, not renumbered), a quoted value spanning lines is one row."""
    name = path.name
    limits = MAX_LENGTHS[kind]
    with io.StringIO(_read_text(path, kind), newline="") as handle:
        reader = csv.reader(handle)
        number = 0  # the row before the one being read
        try:
            header = [h.strip() for h in next(reader, [])]
            _check_header(name, kind, header)
            for number, record in enumerate(reader, start=2):
                if not any(v.strip() for v in record):
                    continue
                if len(record) > len(header):
                    raise CsvImportError(name, number, None, "has more fields than the header")
                yield _Row(name, number, dict(zip(header, record, strict=False)), limits)
        except csv.Error as exc:
            raise CsvImportError(name, number + 1, None, f"is not valid CSV ({exc})") from None


def _supplier(row: _Row) -> commands.Command:
    return commands.UpsertSupplier(
        row.text("supplier"),
        row.text("name"),
        row.email("email"),
        row.integer("lead_time_days", default=14, minimum=0),
    )


def _sku(row: _Row) -> commands.Command:
    supplier = row.text("supplier", required=False) or None
    return commands.UpsertSku(
        code=row.text("sku"),
        name=row.text("name"),
        brand=row.text("brand", required=False),
        product_line=row.text("product_line", required=False),
        colour=row.text("colour", required=False),
        pigments=tuple(row.text("pigments", required=False).replace(",", " ").split()),
        size=row.text("size", required=False),
        hazmat=row.boolean("hazmat"),
        safety_stock=row.integer("safety_stock", default=0, minimum=0),
        reorder_point=row.integer("reorder_point", default=0, minimum=0),
        order_up_to=row.integer("order_up_to", default=0, minimum=0),
        unit_price=row.decimal("unit_price", required=False),
        supplier=supplier,
        supplier_sku=row.text("supplier_sku", required=False),
        unit_cost=row.decimal("unit_cost", required=supplier is not None) or Decimal("0"),
        lead_time_days=row.optional_int("lead_time_days"),
        moq=row.integer("moq", default=1, minimum=1),
        case_pack=row.integer("case_pack", default=1, minimum=1),
    )


def _stock(row: _Row) -> commands.Command:
    return commands.SetStockLevel(row.text("sku"), row.text("location"), row.integer("on_hand"), None, "import")


def _receipt(row: _Row) -> commands.Command:
    return commands.ReceiveStock(
        row.text("sku"),
        row.text("location"),
        row.integer("quantity", minimum=1),
        row.timestamp("received_at"),
        row.text("po_number", required=False) or None,
    )


_ORDER_COLUMNS: dict[str, Callable[[_Row], Any]] = {
    "channel": lambda row: row.text("channel"),
    "placed_at": lambda row: row.timestamp("placed_at"),
    "priority": lambda row: row.integer("priority", default=0),
    "ship_complete": lambda row: row.boolean("ship_complete"),
    "customer_email": lambda row: row.email("customer_email", example="name@example.com"),
    "customer_phone": lambda row: row.text("customer_phone", required=False),
    "customer_name": lambda row: row.text("customer_name", required=False),
    "order_ref": lambda row: row.text("order_ref", required=False),
}
"""The order's own columns, read from each of its rows: every row must repeat the first's values
(an optional column absent from the header reads as empty on every row)."""


def _shown(value: str) -> str:
    return repr(_truncated(value, 40)) if value else "empty"


def _orders(rows: list[_Row]) -> list[tuple[int, commands.Command, dict[str, int]]]:
    grouped: dict[str, list[_Row]] = {}
    for row in rows:
        grouped.setdefault(row.text("order_id"), []).append(row)
    placed: list[tuple[datetime, str, int, commands.Command, dict[str, int]]] = []
    for order_id, lines in grouped.items():
        first = lines[0]
        header = {column: read(first) for column, read in _ORDER_COLUMNS.items()}
        for row in lines[1:]:
            for column, read in _ORDER_COLUMNS.items():
                if read(row) != header[column]:
                    raise row.fail(
                        column,
                        f"differs from the order's first row (row {first.number}): "
                        f"{_shown(row.raw(column))} here, {_shown(first.raw(column))} there",
                    )
        seen: set[int] = set()
        new_lines = []
        sku_rows: dict[str, int] = {}
        for row in lines:
            line_no = row.integer("line_no", minimum=1)
            if line_no in seen:
                raise row.fail("line_no", f"line {line_no} of order {order_id} appears twice")
            seen.add(line_no)
            new_lines.append(commands.NewLine(line_no, row.text("sku"), row.integer("quantity", minimum=1)))
            sku_rows.setdefault(row.text("sku"), row.number)
        command = commands.PlaceOrder(
            order_id=order_id,
            channel=header["channel"],
            placed_at=header["placed_at"],
            lines=tuple(new_lines),
            priority=header["priority"],
            ship_complete=header["ship_complete"],
            customer_email=header["customer_email"] or None,
            customer_phone=header["customer_phone"] or None,
            customer_name=header["customer_name"] or None,
            reference=header["order_ref"] or None,
        )
        placed.append((header["placed_at"], order_id, first.number, command, sku_rows))
    placed.sort(key=lambda item: (item[0], item[1]))
    return [(number, command, rows_of) for _, _, number, command, rows_of in placed]


_PARSERS: dict[ImportKind, Callable[[_Row], commands.Command]] = {
    ImportKind.SUPPLIERS: _supplier,
    ImportKind.SKUS: _sku,
    ImportKind.STOCK: _stock,
    ImportKind.RECEIPTS: _receipt,
}


_KEYS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.SUPPLIERS: ("supplier",),
    ImportKind.SKUS: ("sku",),
    ImportKind.STOCK: ("sku", "location"),
}
"""The columns that identify a row; a second row with the same key would silently replace the
first, so it is an error. (Receipts may repeat a SKU; orders check their own line numbers.)"""


def _key_problem(kind: ImportKind, key: tuple[str, ...], first: int) -> str:
    if kind is ImportKind.STOCK:
        return f"{key[0]!r} at location {key[1]!r} is already on row {first}"
    return f"{key[0]!r} is already on row {first}"


def parse_file(path: Path, kind: ImportKind) -> list[tuple[int, commands.Command, dict[str, int]]]:
    """Every row parsed and checked before anything is applied: (row number, command, row of
    each SKU the command names — an order spans several rows)."""
    rows = list(_rows(path, kind))
    if kind is ImportKind.ORDERS:
        return _orders(rows)
    parsed: list[tuple[int, commands.Command, dict[str, int]]] = []
    key_columns = _KEYS.get(kind, ())
    seen: dict[tuple[str, ...], int] = {}
    for row in rows:
        command = _PARSERS[kind](row)
        if key_columns:
            key = tuple(row.text(column) for column in key_columns)
            if key in seen:
                raise row.fail(key_columns[0], _key_problem(kind, key, seen[key]))
            seen[key] = row.number
        parsed.append((row.number, command, {}))
    if kind is ImportKind.RECEIPTS:
        parsed.sort(
            key=lambda item: (getattr(item[1], "received_at", None) or datetime.min.replace(tzinfo=UTC), item[0])
        )
    return parsed


def _fold(location: str) -> str:
    return "".join(ch for ch in location.casefold() if ch.isalnum())


def _check_locations(
    file: str, parsed: list[tuple[int, commands.Command, dict[str, int]]], known: Collection[str]
) -> None:
    """A location that is not known but reads like one that is (``Warehouse``, ``ware house`` for
    ``warehouse``) is a typo: it would put the stock at a new location no channel sells from."""
    folded = {_fold(code): code for code in known}
    for number, command, _ in parsed:
        location = getattr(command, "location", None)
        if not isinstance(location, str) or location in known:
            continue
        near = folded.get(_fold(location))
        if near is not None:
            raise CsvImportError(
                file,
                number,
                "location",
                f"{location!r} is not a location; did you mean {near!r}? (locations match exactly)",
            )


def import_file(
    bus: MessageBus,
    path: str | Path,
    kind: ImportKind | str,
    *,
    progress: Callable[[int], Any] | None = None,
    known_locations: Collection[str] = (),
    stored_orders: Callable[[Collection[str]], Collection[str]] | None = None,
) -> ImportResult:
    """Import one file in one transaction. ``known_locations``: the configured and stored ones; a
    row naming a location that only differs from one of them in case, spaces or punctuation is
    refused (any other new location is created as before). ``stored_orders``: which of these
    order ids are stored already; those orders are skipped (a shop's daily exports overlap) and
    named in the result. An import never changes a stored order."""
    kind = ImportKind(kind)
    path = Path(path)
    parsed = parse_file(path, kind)
    if known_locations:
        _check_locations(path.name, parsed, set(known_locations))
    skipped: tuple[str, ...] = ()
    if kind is ImportKind.ORDERS and stored_orders is not None:
        ids = [command.order_id for _, command, _ in parsed if isinstance(command, commands.PlaceOrder)]
        stored = set(stored_orders(ids))
        skipped = tuple(i for i in ids if i in stored)
        parsed = [p for p in parsed if not (isinstance(p[1], commands.PlaceOrder) and p[1].order_id in stored)]
    batch = commands.ImportBatch(tuple(command for _, command, _ in parsed))
    try:
        bus.handle(batch)
    except BatchItemFailed as exc:
        row, _, sku_rows = parsed[exc.index]
        column = None
        if isinstance(exc.cause, UnknownSupplier):
            column = "supplier"
        elif isinstance(exc.cause, UnknownSku):
            column = "sku"
            row = sku_rows.get(exc.cause.sku, row)
        raise CsvImportError(path.name, row, column, str(exc.cause)) from exc
    except DomainError as exc:
        raise CsvImportError(path.name, None, None, str(exc)) from exc
    if progress is not None:
        progress(len(parsed))
    return ImportResult(kind, len(parsed), len(batch.commands), skipped)
