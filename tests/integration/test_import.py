"""CSV import on SQLite and PostgreSQL: each file is one transaction; a bad row is reported by
file, row number (the header is row 1) and column, and nothing of that file is imported."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from backorder.bootstrap import Application
from backorder.importer import MAX_LENGTHS, REQUIRED_COLUMNS, CsvFileError, CsvImportError, ImportKind, import_file
from backorder.store import tables as t

if TYPE_CHECKING:
    from conftest import Db

SUPPLIERS = """supplier,name,email,lead_time_days
ROYAL,Royal Talens,orders@royal.example,10
WN,Winsor & Newton,po@wn.example,
"""
SKU_HEADER = (
    "sku,name,brand,colour,pigments,size,hazmat,supplier,supplier_sku,unit_cost,lead_time_days,moq,case_pack,"
    "safety_stock,reorder_point,order_up_to,product_line,unit_price\n"
)
SKUS = SKU_HEADER + (
    "INK,Indigo ink,Royal,Indigo,PB60 PBk6,30 ml,false,ROYAL,R-INK,3.10,,1,6,0,0,0,Ink,6.50\n"
    "OCHRE,Yellow ochre,W&N,Ochre,PY43,37 ml,false,WN,W-OCH,4.20,30,2,1,1,4,10,Oil,8.99\n"
    "SOLVENT,Odourless solvent,Gamblin,,,125 ml,true,,,,,1,1,0,0,0,Solvent,\n"
)
STOCK = """sku,location,on_hand
INK,main,5
OCHRE,main,-2
OCHRE,back,3
"""
ORDERS = """order_id,channel,placed_at,priority,ship_complete,customer_email,customer_phone,line_no,sku,quantity,customer_name
W-2,web,2026-03-01T11:00:00Z,0,false,b@customer.example,,1,INK,4,Bea
W-1,web,2026-03-01T10:00:00Z,1,true,a@customer.example,+15550001,1,INK,2,Al
W-1,web,2026-03-01T10:00:00Z,1,true,a@customer.example,+15550001,2,OCHRE,1,Al
"""
RECEIPTS = """sku,location,quantity,received_at,po_number
INK,main,3,2026-03-02T08:00:00Z,
OCHRE,back,2,2026-03-02T07:00:00+00:00,
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(app: Application, tmp_path: Path, name: str, text: str, kind: str) -> int:
    return import_file(app.bus, write(tmp_path, name, text), kind).rows


@pytest.fixture
def catalog(app: Application, tmp_path: Path) -> Application:
    load(app, tmp_path, "suppliers.csv", SUPPLIERS, "suppliers")
    load(app, tmp_path, "skus.csv", SKUS, "skus")
    return app


# --- each kind ----------------------------------------------------------------------------


def test_suppliers_and_skus_import_with_their_supplier_items(catalog: Application, db: Db) -> None:
    suppliers = {r["code"]: r for r in db.rows(t.suppliers)}
    assert suppliers["ROYAL"]["email"] == "orders@royal.example"
    assert suppliers["ROYAL"]["lead_time_days"] == 10
    assert suppliers["WN"]["lead_time_days"] == 14  # empty: the default
    skus = {r["code"]: r for r in db.rows(t.skus)}
    assert set(skus) == {"INK", "OCHRE", "SOLVENT"}
    assert skus["INK"]["pigments"] == "PB60 PBk6"
    assert Decimal(skus["OCHRE"]["unit_price"]) == Decimal("8.99")
    assert bool(skus["SOLVENT"]["hazmat"]) is True
    assert skus["SOLVENT"]["preferred_supplier"] is None
    assert (skus["OCHRE"]["reorder_point"], skus["OCHRE"]["order_up_to"]) == (4, 10)
    items = {(r["supplier"], r["sku"]): r for r in db.rows(t.supplier_items)}
    assert set(items) == {("ROYAL", "INK"), ("WN", "OCHRE")}
    assert Decimal(items[("ROYAL", "INK")]["unit_cost"]) == Decimal("3.10")
    assert (items[("WN", "OCHRE")]["lead_time_days"], items[("WN", "OCHRE")]["moq"]) == (30, 2)
    assert (items[("ROYAL", "INK")]["lead_time_days"], items[("ROYAL", "INK")]["case_pack"]) == (None, 6)


def test_importing_the_same_catalog_again_updates_in_place(catalog: Application, tmp_path: Path, db: Db) -> None:
    load(catalog, tmp_path, "skus-again.csv", SKUS.replace("Indigo ink", "Indigo ink (new label)"), "skus")
    assert db.count(t.skus) == 3
    assert db.rows(t.skus, t.skus.c.code == "INK")[0]["name"] == "Indigo ink (new label)"


def test_stock_imports_as_counted_including_a_negative_on_hand(catalog: Application, tmp_path: Path, db: Db) -> None:
    assert load(catalog, tmp_path, "stock.csv", STOCK, "stock") == 3
    levels = {(r["sku"], r["location"]): r["on_hand"] for r in db.rows(t.stock_levels)}
    assert levels == {("INK", "main"): 5, ("OCHRE", "main"): -2, ("OCHRE", "back"): 3}
    assert [r["code"] for r in db.rows(t.locations, order_by=t.locations.c.position)] == ["main", "back"]


def test_orders_import_grouped_by_order_and_applied_in_placed_at_order(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    load(catalog, tmp_path, "stock.csv", STOCK, "stock")
    result = import_file(catalog.bus, write(tmp_path, "orders.csv", ORDERS), "orders")
    assert (result.rows, result.commands) == (2, 2)
    orders = {r["id"]: r for r in db.rows(t.orders)}
    assert orders["W-1"]["placed_at"] == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert (orders["W-1"]["priority"], bool(orders["W-1"]["ship_complete"])) == (1, True)
    assert (orders["W-1"]["customer_phone"], orders["W-1"]["customer_name"]) == ("+15550001", "Al")
    lines = {(r["order_id"], r["line_no"]): (r["sku"], r["quantity"], r["allocated"]) for r in db.rows(t.order_lines)}
    # W-1 ranks first (priority 1): INK 2 and OCHRE 1 from 'back'; W-2 then gets the 3 INK left
    assert lines == {("W-1", 1): ("INK", 2, 2), ("W-1", 2): ("OCHRE", 1, 1), ("W-2", 1): ("INK", 4, 3)}


def test_receipts_import_and_allocate_to_waiting_lines(catalog: Application, tmp_path: Path, db: Db) -> None:
    load(catalog, tmp_path, "stock.csv", STOCK, "stock")
    load(catalog, tmp_path, "orders.csv", ORDERS, "orders")
    assert load(catalog, tmp_path, "receipts.csv", RECEIPTS, "receipts") == 2
    receipts = db.rows(t.receipts, order_by=t.receipts.c.id)
    # applied in received_at order, whatever the order of the file
    assert [(r["sku"], r["received_at"]) for r in receipts] == [
        ("OCHRE", datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),
        ("INK", datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
    ]
    assert db.line("W-2")["allocated"] == 4
    levels = {(r["sku"], r["location"]): (r["on_hand"], r["allocated"]) for r in db.rows(t.stock_levels)}
    assert levels[("INK", "main")] == (8, 6)
    assert levels[("OCHRE", "back")] == (5, 1)


# --- bad rows --------------------------------------------------------------------------------


def failing_import(app: Application, path: Path, kind: str, db: Db) -> CsvImportError:
    """Import a bad file and check nothing at all changed in the database."""
    before = db.snapshot()
    with pytest.raises(CsvImportError) as caught:
        import_file(app.bus, path, kind)
    assert db.snapshot() == before
    return caught.value


def test_a_bad_integer_names_the_file_row_and_column(catalog: Application, tmp_path: Path, db: Db) -> None:
    path = write(tmp_path, "stock-count.csv", STOCK + "INK,back,ten\n")
    error = failing_import(catalog, path, "stock", db)
    assert (error.file, error.row, error.column) == ("stock-count.csv", 5, "on_hand")
    assert str(error).startswith("stock-count.csv, row 5, column 'on_hand': 'ten' is not a whole number")
    assert "Nothing from this file was imported" in str(error)
    assert db.count(t.stock_levels) == 0


def test_a_missing_column_names_the_file_and_the_column(catalog: Application, tmp_path: Path, db: Db) -> None:
    path = write(tmp_path, "counts.csv", "sku,location\nINK,main\n")
    error = failing_import(catalog, path, "stock", db)
    assert (error.file, error.row, error.column) == ("counts.csv", 1, "on_hand")
    assert "counts.csv" in str(error) and "'on_hand'" in str(error) and "missing column" in str(error)


def test_every_kind_names_a_missing_required_column(app: Application, tmp_path: Path, db: Db) -> None:
    for kind in ImportKind:
        required = REQUIRED_COLUMNS[kind]
        header = ",".join(c for c in required if c != required[-1])
        error = failing_import(app, write(tmp_path, f"{kind.value}.csv", header + "\n"), kind.value, db)
        assert (error.file, error.row, error.column) == (f"{kind.value}.csv", 1, required[-1]), kind


def test_an_unknown_supplier_in_row_5_rolls_back_the_rows_before_it(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    rows = [
        "PAPER,Cotton paper,,,,,false,ROYAL,R-PAP,9.00,,1,1,0,0,0,,",
        "BRUSH,Round brush,,,,,false,ROYAL,R-BR,2.00,,1,1,0,0,0,,",
        "INK,Indigo ink renamed,,,,,false,ROYAL,R-INK,3.10,,1,6,0,0,0,,",
        "EASEL,Field easel,,,,,false,NOBODY,N-1,40.00,,1,1,0,0,0,,",
    ]
    path = write(tmp_path, "new-skus.csv", SKU_HEADER + "\n".join(rows) + "\n")
    error = failing_import(catalog, path, "skus", db)
    assert (error.file, error.row) == ("new-skus.csv", 5)
    assert str(error).startswith("new-skus.csv, row 5")
    assert "NOBODY" in str(error)
    assert db.count(t.skus, t.skus.c.code.in_(["PAPER", "BRUSH", "EASEL"])) == 0
    assert db.rows(t.skus, t.skus.c.code == "INK")[0]["name"] == "Indigo ink"


def test_an_unknown_supplier_error_names_the_supplier_column(catalog: Application, tmp_path: Path, db: Db) -> None:
    path = write(tmp_path, "new-skus.csv", SKU_HEADER + "EASEL,Field easel,,,,,false,NOBODY,N-1,40.00,,1,1,0,0,0,,\n")
    error = failing_import(catalog, path, "skus", db)
    assert (error.file, error.row, error.column) == ("new-skus.csv", 2, "supplier")
    assert str(error).startswith("new-skus.csv, row 2, column 'supplier'")


def test_an_unknown_sku_on_an_orders_second_line_names_that_lines_row_and_column(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    orders = (
        ORDERS.splitlines()[0]
        + "\n"
        + "\n".join(
            [
                "A-1,web,2026-03-01T09:00:00Z,0,false,a@customer.example,,1,INK,1,",
                "A-2,web,2026-03-01T10:00:00Z,0,false,b@customer.example,,1,INK,1,",
                "A-2,web,2026-03-01T10:00:00Z,0,false,b@customer.example,,2,NO-SUCH-SKU,1,",
            ]
        )
        + "\n"
    )
    error = failing_import(catalog, write(tmp_path, "orders.csv", orders), "orders", db)
    assert db.count(t.orders) == 0
    assert (error.file, error.row, error.column) == ("orders.csv", 4, "sku")


NEGATIVE_QUANTITIES = [
    ("receipts.csv", "receipts", RECEIPTS + "INK,main,-2,2026-03-02T09:00:00Z,\n", 4, "quantity"),
    ("orders.csv", "orders", ORDERS + "W-3,web,2026-03-01T12:00:00Z,0,false,,,1,INK,-1,\n", 5, "quantity"),
    ("skus.csv", "skus", SKU_HEADER + "X,Thing,,,,,false,,,,,1,1,-1,0,0,,\n", 2, "safety_stock"),
    ("suppliers.csv", "suppliers", SUPPLIERS + "NEG,Negative,n@example.com,-3\n", 4, "lead_time_days"),
]


def each_fails_at_its_cell(
    app: Application,
    tmp_path: Path,
    db: Db,
    cases: list[tuple[str, str, str, int, str]],
    problem_start: str,
    *saying: str,
) -> None:
    """Each (file, kind, text, row, column) case is refused naming that cell, saying all of
    ``saying``, and imports nothing."""
    for name, kind, text, row, column in cases:
        error = failing_import(app, write(tmp_path, name, text), kind, db)
        assert (error.file, error.row, error.column) == (name, row, column), (kind, column)
        assert str(error).startswith(f"{name}, row {row}, column {column!r}: {problem_start}"), str(error)
        assert all(words in str(error) for words in saying), str(error)


def test_a_negative_quantity_names_the_file_row_and_column_and_imports_nothing(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    load(catalog, tmp_path, "stock.csv", STOCK, "stock")
    each_fails_at_its_cell(catalog, tmp_path, db, NEGATIVE_QUANTITIES, "must be at least")


def test_other_bad_receipt_rows_are_named_too(catalog: Application, tmp_path: Path, db: Db) -> None:
    cases = [
        (RECEIPTS + "INK,main,1,yesterday,\n", 4, "received_at", "is not an ISO 8601 date-time"),
        (RECEIPTS + "INK,,1,2026-03-02T09:00:00Z,\n", 4, "location", "is empty"),
        (RECEIPTS + "INK,main,1,2026-03-02T09:00:00Z,,extra\n", 4, None, "has more fields than the header"),
        (RECEIPTS + "INK,main,1.5,2026-03-02T09:00:00Z,\n", 4, "quantity", "'1.5' is not a whole number"),
    ]
    for text, row, column, problem in cases:
        error = failing_import(catalog, write(tmp_path, "receipts.csv", text), "receipts", db)
        assert (error.row, error.column) == (row, column)
        assert problem in str(error)


def test_a_receipt_for_an_unknown_purchase_order_names_its_row_and_imports_nothing(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    text = RECEIPTS + "OCHRE,main,1,2026-03-02T09:00:00Z,PO-NOPE\n"
    error = failing_import(catalog, write(tmp_path, "receipts.csv", text), "receipts", db)
    assert (error.file, error.row) == ("receipts.csv", 4)
    assert "PO-NOPE" in str(error)
    assert db.count(t.receipts) == 0


def test_a_missing_file_a_directory_or_an_empty_file_is_explained_on_its_own(
    app: Application, tmp_path: Path, db: Db
) -> None:
    missing = tmp_path / "missing.csv"
    error = failing_import(app, missing, "stock", db)
    assert isinstance(error, CsvFileError)
    assert str(error) == f"no such file: {missing}"
    error = failing_import(app, tmp_path, "stock", db)
    assert isinstance(error, CsvFileError)
    assert str(error) == f"{tmp_path} is a directory, not a CSV file"
    for text in ("", "\ufeff", " \n\n"):
        error = failing_import(app, write(tmp_path, "empty.csv", text), "stock", db)
        assert isinstance(error, CsvFileError)
        assert (error.file, error.row, error.column) == ("empty.csv", None, None)
        assert str(error) == (
            "empty.csv is empty: it needs a header row with the columns sku, location, on_hand for --kind stock"
        )


def test_a_file_that_is_not_utf8_names_the_row_that_is_not_and_imports_nothing(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    cases = [
        ("sku,location,on_hand\nINK,main,5\nOCHRE,Entrep\xf4t,3\n", 3),  # a later row, saved as Latin-1
        ('sku,location,on_hand\r\nINK,"main\r\nfloor",5\r\n\r\nOCHRE,b\xe4ck,3\r\n', 4),  # quoted newline, blank row
        ("sku,location,on_h\xe4nd\nINK,main,5\n", 1),  # the header
    ]
    for text, row in cases:
        path = tmp_path / "latin1.csv"
        path.write_bytes(text.encode("latin-1"))
        error = failing_import(catalog, path, "stock", db)
        assert isinstance(error, CsvFileError)
        assert (error.file, error.row, error.column) == ("latin1.csv", row, None)
        assert str(error) == (
            f"latin1.csv, row {row}: not UTF-8 text (save the file as UTF-8 CSV). Nothing from this file was imported."
        )
    path = tmp_path / "utf16.csv"
    path.write_bytes(STOCK.encode("utf-16"))
    assert failing_import(catalog, path, "stock", db).row == 1


def test_a_utf8_file_with_a_byte_order_mark_imports(catalog: Application, tmp_path: Path, db: Db) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + STOCK.replace("main", "entrepôt")).encode("utf-8"))
    assert import_file(catalog.bus, path, "stock").rows == 3
    assert db.rows(t.stock_levels, t.stock_levels.c.sku == "INK")[0]["location"] == "entrepôt"


DUPLICATE_KEYS = [
    (
        "suppliers.csv",
        "suppliers",
        SUPPLIERS + "ROYAL,Royal Talens again,x@royal.example,5\n",
        4,
        "supplier",
        "'ROYAL' is already on row 2",
    ),
    (
        "skus.csv",
        "skus",
        SKUS + "OCHRE,Yellow ochre 2,W&N,Ochre,PY43,37 ml,false,WN,W-OCH2,4.20,30,2,1,1,4,10,Oil,\n",
        5,
        "sku",
        "'OCHRE' is already on row 3",
    ),
    ("stock.csv", "stock", STOCK + "OCHRE,back,7\n", 5, "sku", "'OCHRE' at location 'back' is already on row 4"),
]


def test_a_duplicate_key_names_the_second_row_and_imports_nothing(catalog: Application, tmp_path: Path, db: Db) -> None:
    for name, kind, text, row, column, problem in DUPLICATE_KEYS:
        error = failing_import(catalog, write(tmp_path, name, text), kind, db)
        assert (error.file, error.row, error.column) == (name, row, column)
        assert str(error).startswith(f"{name}, row {row}, column {column!r}: {problem}"), str(error)
    # the same SKU at another location, and receipts repeating a SKU, are not duplicates
    assert load(catalog, tmp_path, "stock.csv", STOCK + "INK,back,1\n", "stock") == 4
    assert load(catalog, tmp_path, "receipts.csv", RECEIPTS + "INK,main,1,2026-03-02T09:00:00Z,\n", "receipts") == 3


def test_a_supplier_email_that_is_not_an_address_names_its_row_and_column(
    app: Application, tmp_path: Path, db: Db
) -> None:
    for email in ("not-an-email", "po@wn", "po @wn.example", "po@@wn.example", "a@b@wn.example"):
        text = SUPPLIERS + f"BAD,Bad Supplier,{email},7\n"
        error = failing_import(app, write(tmp_path, "suppliers.csv", text), "suppliers", db)
        assert (error.file, error.row, error.column) == ("suppliers.csv", 4, "email"), email
        assert str(error).startswith(f"suppliers.csv, row 4, column 'email': {email!r} is not an email address")
    text = SUPPLIERS + "EMPTY,No Email Yet,,7\nPLUS,Plus,Orders+PO@mail.plus-art.example,7\n"
    assert load(app, tmp_path, "suppliers.csv", text, "suppliers") == 4
    assert {r["code"]: r["email"] for r in db.rows(t.suppliers)}["EMPTY"] == ""


def test_dates_in_the_file_keep_their_zone_as_utc(catalog: Application, tmp_path: Path, db: Db) -> None:
    load(
        catalog,
        tmp_path,
        "r.csv",
        "sku,location,quantity,received_at,po_number\nINK,main,1,2026-03-02T10:00:00+02:00,\n",
        "receipts",
    )
    assert db.rows(t.receipts)[0]["received_at"] == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert db.rows(t.receipts)[0]["received_at"].date() == date(2026, 3, 2)


def test_row_numbers_count_blank_rows_as_a_spreadsheet_shows_them(catalog: Application, tmp_path: Path, db: Db) -> None:
    path = write(tmp_path, "stock.csv", STOCK + "\n\n,,\nINK,back,ten\n")  # two blank rows, one of empty cells
    error = failing_import(catalog, path, "stock", db)
    assert (error.row, error.column) == (8, "on_hand")
    orders = ORDERS.replace("W-1,web", "\nW-1,web", 1).replace(",OCHRE,", ",NOPE,")
    error = failing_import(catalog, write(tmp_path, "orders.csv", orders), "orders", db)
    assert (error.row, error.column) == (5, "sku")  # the unknown SKU's own row, after the blank one


def test_a_value_too_long_for_its_column_names_the_row_and_imports_nothing(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    long_sku = "X" * 65
    error = failing_import(catalog, write(tmp_path, "stock.csv", STOCK + f"{long_sku},main,1\n"), "stock", db)
    assert (error.row, error.column) == (5, "sku")
    assert "is 65 characters long; at most 64 are kept" in str(error)
    orders = ORDERS.replace(",Bea", ",Bea,#" + "9" * 64).replace("customer_name\n", "customer_name,order_ref\n")
    error = failing_import(catalog, write(tmp_path, "orders.csv", orders), "orders", db)
    assert (error.row, error.column) == (2, "order_ref")


def test_the_length_limits_are_the_database_columns(app: Application) -> None:
    columns = {
        "sku": t.skus.c.code,
        "supplier": t.suppliers.c.code,
        "location": t.locations.c.code,
        "order_id": t.orders.c.id,
        "channel": t.orders.c.channel,
        "customer_email": t.orders.c.customer_email,
        "customer_phone": t.orders.c.customer_phone,
        "customer_name": t.orders.c.customer_name,
        "order_ref": t.orders.c.reference,
        "po_number": t.receipts.c.po_number,
        "supplier_sku": t.supplier_items.c.supplier_sku,
        "email": t.suppliers.c.email,
    }
    for kind, limits in MAX_LENGTHS.items():
        for column, limit in limits.items():
            table_column = (
                columns[column] if column in columns else (t.skus if kind is ImportKind.SKUS else t.suppliers).c[column]
            )
            assert table_column.type.length == limit, (kind, column)


def test_an_orders_customer_facing_number_is_imported(catalog: Application, tmp_path: Path, db: Db) -> None:
    orders = ORDERS.replace("customer_name\n", "customer_name,order_ref\n").replace(",Bea", ",Bea,#1002")
    load(catalog, tmp_path, "orders.csv", orders, "orders")
    assert db.rows(t.orders, t.orders.c.id == "W-2")[0]["reference"] == "#1002"
    assert db.rows(t.orders, t.orders.c.id == "W-1")[0]["reference"] is None


ORDERS_HEADER = ORDERS.splitlines()[0]


def test_a_customer_email_that_is_not_an_address_names_its_row_and_column(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    for email in ("not-an-email", "a@customer", "a @customer.example", "a@@customer.example"):
        for row, text in (
            (2, ORDERS.replace("b@customer.example", email)),  # a one-row order
            (4, ORDERS[: ORDERS.rindex("a@customer.example")] + email + ",+15550001,2,OCHRE,1,Al\n"),  # a later row
        ):
            error = failing_import(catalog, write(tmp_path, "orders.csv", text), "orders", db)
            assert (error.file, error.row, error.column) == ("orders.csv", row, "customer_email"), email
            assert str(error).startswith(
                f"orders.csv, row {row}, column 'customer_email': {email!r} is not an email address"
            ), str(error)
    text = ORDERS + "W-3,web,2026-03-01T12:00:00Z,0,false,,,1,INK,1,\n"  # no email at all: allowed
    assert load(catalog, tmp_path, "orders.csv", text, "orders") == 3
    assert db.rows(t.orders, t.orders.c.id == "W-3")[0]["customer_email"] is None


def test_a_column_named_twice_in_the_header_is_refused(catalog: Application, tmp_path: Path, db: Db) -> None:
    cases = [
        ("stock.csv", "stock", "sku,location,on_hand,on_hand\nINK,main,5,6\n", "on_hand"),
        (
            "orders.csv",
            "orders",
            ORDERS_HEADER + ",quantity\nW-1,web,2026-03-01T10:00:00Z,0,false,,,1,INK,2,,9\n",
            "quantity",
        ),
        ("orders.csv", "orders", ORDERS.replace("customer_name\n", "customer_name,customer_name\n"), "customer_name"),
    ]
    for name, kind, text, column in cases:
        error = failing_import(catalog, write(tmp_path, name, text), kind, db)
        assert (error.file, error.row, error.column) == (name, 1, column)
        assert str(error).startswith(f"{name}, row 1, column {column!r}: column {column!r} appears twice in the header")
    # columns the import ignores may repeat, as the empty names of trailing commas do
    assert load(catalog, tmp_path, "stock.csv", "sku,location,on_hand,note,note,,\nINK,main,5,a,b,,\n", "stock") == 1


ORDER_COLUMN_CHANGES = [
    ("channel", "web,2026-03-01T10:00:00Z", "pos,2026-03-01T10:00:00Z", "'pos' here, 'web' there"),
    ("placed_at", "T10:00:00Z,1", "T10:05:00Z,1", "'2026-03-01T10:05:00Z' here, '2026-03-01T10:00:00Z' there"),
    ("priority", "Z,1,true", "Z,9,true", "'9' here, '1' there"),
    ("ship_complete", "1,true,a@", "1,false,a@", "'false' here, 'true' there"),
    ("customer_email", "a@customer.example", "al@customer.example", "'al@customer.example' here"),
    ("customer_email", "a@customer.example", "", "empty here, 'a@customer.example' there"),
    ("customer_phone", "+15550001", "+15550002", "'+15550002' here, '+15550001' there"),
    ("customer_name", ",Al", ",Alan", "'Alan' here, 'Al' there"),
]


def test_every_row_of_an_order_must_repeat_the_orders_own_values(catalog: Application, tmp_path: Path, db: Db) -> None:
    first, second = ORDERS.splitlines()[2:4]  # W-1's two rows: rows 3 and 4
    for column, old, new, shown in ORDER_COLUMN_CHANGES:
        assert old in second, column
        text = ORDERS.replace(second, second.replace(old, new))
        error = failing_import(catalog, write(tmp_path, "orders.csv", text), "orders", db)
        assert (error.file, error.row, error.column) == ("orders.csv", 4, column)
        assert f"differs from the order's first row (row 3): {shown}" in str(error), str(error)
    with_ref = ORDERS.replace("customer_name\n", "customer_name,order_ref\n").replace(",Bea", ",Bea,#2")
    with_ref = with_ref.replace(first, first + ",#1").replace(second, second + ",#9")
    error = failing_import(catalog, write(tmp_path, "orders.csv", with_ref), "orders", db)
    assert (error.row, error.column) == (4, "order_ref")
    assert "differs from the order's first row (row 3): '#9' here, '#1' there" in str(error)
    # the same value written another way is the same value
    same = second.replace("10:00:00Z,1,true", "10:00:00+00:00,01,yes")
    assert load(catalog, tmp_path, "orders.csv", ORDERS.replace(second, same), "orders") == 2
    assert db.count(t.order_lines, t.order_lines.c.order_id == "W-1") == 2


HUGE = "99999999999999999999"
TOO_LARGE = [
    ("stock.csv", "stock", STOCK + f"INK,back,{HUGE}\n", 5, "on_hand"),
    ("stock.csv", "stock", STOCK + "INK,back,2147483648\n", 5, "on_hand"),
    ("receipts.csv", "receipts", RECEIPTS + f"INK,main,{HUGE},2026-03-02T09:00:00Z,\n", 4, "quantity"),
    ("orders.csv", "orders", ORDERS + f"W-3,web,2026-03-01T12:00:00Z,0,false,,,1,INK,{HUGE},\n", 5, "quantity"),
    ("orders.csv", "orders", ORDERS + f"W-3,web,2026-03-01T12:00:00Z,{HUGE},false,,,1,INK,1,\n", 5, "priority"),
    ("orders.csv", "orders", ORDERS + f"W-3,web,2026-03-01T12:00:00Z,0,false,,,{HUGE},INK,1,\n", 5, "line_no"),
    ("skus.csv", "skus", SKU_HEADER + f"X,Thing,,,,,false,,,,,{HUGE},1,0,0,0,,\n", 2, "moq"),
    ("skus.csv", "skus", SKU_HEADER + f"X,Thing,,,,,false,,,,,1,1,0,0,{HUGE},,\n", 2, "order_up_to"),
    ("skus.csv", "skus", SKU_HEADER + f"X,Thing,,,,,false,ROYAL,X,1.00,{HUGE},1,1,0,0,0,,\n", 2, "lead_time_days"),
    ("suppliers.csv", "suppliers", SUPPLIERS + f"BIG,Big,b@big.example,{HUGE}\n", 4, "lead_time_days"),
]


def test_a_whole_number_too_large_for_the_database_names_its_row_and_column(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    load(catalog, tmp_path, "stock.csv", STOCK, "stock")
    each_fails_at_its_cell(catalog, tmp_path, db, TOO_LARGE, "'", "is too large; it must be between", "and 2147483647")
    error = failing_import(catalog, write(tmp_path, "stock.csv", STOCK + f"INK,back,-{HUGE}\n"), "stock", db)
    assert (error.row, error.column) == (5, "on_hand")
    assert f"'-{HUGE}' is too far below zero; it must be between -2147483648 and 2147483647" in str(error)
    # the largest whole number there is room for imports
    assert load(catalog, tmp_path, "stock.csv", "sku,location,on_hand\nINK,main,2147483647\n", "stock") == 1
    assert db.rows(t.stock_levels, t.stock_levels.c.sku == "INK")[0]["on_hand"] == 2147483647


def test_a_semicolon_or_tab_separated_file_is_told_to_be_saved_as_comma_separated(
    app: Application, tmp_path: Path, db: Db
) -> None:
    for separator, called in ((";", "semicolon"), ("\t", "tab")):
        text = STOCK.replace(",", separator)
        error = failing_import(app, write(tmp_path, "stock.csv", text), "stock", db)
        assert isinstance(error, CsvFileError)  # the fix is to the file as a whole
        assert (error.file, error.row, error.column) == ("stock.csv", 1, None)
        assert f"the file looks {called}-separated" in str(error)
        assert 'save it from the spreadsheet as "CSV (comma delimited)"' in str(error)
        assert "missing column" not in str(error)


def test_a_header_in_another_case_names_the_columns_that_differ_only_in_case(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    error = failing_import(
        catalog, write(tmp_path, "stock.csv", STOCK.replace("sku,location", "SKU,Location")), "stock", db
    )
    assert (error.row, error.column) == (1, "sku")
    assert str(error).startswith(
        "stock.csv, row 1, column 'sku': column name(s) differ only in case: "
        "'SKU' should be 'sku', 'Location' should be 'location' (column names are lower case)"
    ), str(error)
    assert "missing column" not in str(error)
    # an optional column in another case would be ignored, its values lost: refused too
    text = ORDERS.replace("customer_name\n", "customer_name,Order_Ref\n").replace(",Bea", ",Bea,#2")
    error = failing_import(catalog, write(tmp_path, "orders.csv", text), "orders", db)
    assert (error.row, error.column) == (1, "order_ref")
    assert "'Order_Ref' should be 'order_ref'" in str(error)


def test_a_missing_column_message_lists_the_columns_the_header_has(app: Application, tmp_path: Path, db: Db) -> None:
    error = failing_import(app, write(tmp_path, "stock.csv", "SKU,where,on_hand\nINK,main,5\n"), "stock", db)
    assert str(error).startswith(
        "stock.csv, row 1, column 'sku': missing column(s) location for --kind stock; "
        "column name(s) differ only in case: 'SKU' should be 'sku' (column names are lower case); "
        "the header has 'SKU', 'where', 'on_hand'."
    ), str(error)
    wide = ",".join(f"field_{i}" for i in range(20))
    error = failing_import(app, write(tmp_path, "stock.csv", wide + "\n"), "stock", db)
    assert "missing column(s) sku, location, on_hand for --kind stock; the header has 'field_0', 'field_1'" in str(
        error
    )
    assert "'field_7' and 12 more." in str(error) and "field_8" not in str(error)
    error = failing_import(app, write(tmp_path, "stock.csv", ",,\n" + STOCK), "stock", db)
    assert "the header has no column names (it must be the first row)" in str(error)


def test_a_location_that_reads_like_a_known_one_is_a_typo_and_imports_nothing(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    load(catalog, tmp_path, "stock.csv", STOCK, "stock")  # main and back
    before = db.snapshot()
    for typo in ("Main", " BACK", "ma-in"):
        path = write(tmp_path, "count.csv", f"sku,location,on_hand\nINK,{typo},5\n")
        with pytest.raises(CsvImportError) as caught:
            import_file(catalog.bus, path, "stock", known_locations=catalog.read.locations())
        assert (caught.value.row, caught.value.column) == (2, "location")
        assert "did you mean" in str(caught.value)
        assert db.snapshot() == before
    receipt = write(
        tmp_path, "in.csv", "sku,location,quantity,received_at,po_number\nINK,Back,1,2026-03-02T08:00:00Z,\n"
    )
    with pytest.raises(CsvImportError, match="did you mean 'back'"):
        import_file(catalog.bus, receipt, "receipts", known_locations=catalog.read.locations())
    new = write(tmp_path, "count.csv", "sku,location,on_hand\nINK,annex,5\n")  # a new place, not a typo
    assert import_file(catalog.bus, new, "stock", known_locations=catalog.read.locations()).rows == 1


def test_orders_imported_before_are_skipped_and_named_so_overlapping_exports_import(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    load(catalog, tmp_path, "monday.csv", ORDERS, "orders")  # W-1 and W-2
    tuesday = ORDERS + "W-3,pos,2026-03-02T09:00:00Z,0,false,c@customer.example,,1,OCHRE,1,Cy\n"
    result = import_file(
        catalog.bus, write(tmp_path, "tuesday.csv", tuesday), "orders", stored_orders=catalog.read.stored_orders
    )
    assert (result.rows, result.already_imported) == (1, ("W-1", "W-2"))
    assert sorted(r["id"] for r in db.rows(t.orders)) == ["W-1", "W-2", "W-3"]
    with pytest.raises(CsvImportError, match="already exists"):  # without the lookup: refused, as before
        import_file(catalog.bus, write(tmp_path, "again.csv", tuesday), "orders")


def test_an_amount_too_large_for_its_column_is_refused_with_its_cell(
    catalog: Application, tmp_path: Path, db: Db
) -> None:
    huge = SKU_HEADER + "X,Thing,,,,,false,ROYAL,X,12345678901.00,,1,1,0,0,0,,\n"
    error = failing_import(catalog, write(tmp_path, "skus.csv", huge), "skus", db)
    assert (error.row, error.column) == (2, "unit_cost") and "is too large" in str(error)
