"""CSV parsing without a database: the checks on a header and on whole numbers, and the messages
they give (``tests/integration/test_import.py`` covers the same files end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backorder.importer import INTEGER_MAX, INTEGER_MIN, CsvFileError, CsvImportError, ImportKind, _Row, parse_file


def row(value: str) -> _Row:
    return _Row("f.csv", 7, {"n": value}, {})


@pytest.mark.parametrize("value", [str(INTEGER_MIN), str(INTEGER_MAX), "0", " 12 ", "+5", "-0"])
def test_whole_numbers_within_the_database_integer_range_are_read(value: str) -> None:
    assert row(value).integer("n") == int(value)


@pytest.mark.parametrize(
    ("value", "minimum", "problem"),
    [
        (str(INTEGER_MAX + 1), None, "'2147483648' is too large; it must be between -2147483648 and 2147483647"),
        (str(INTEGER_MIN - 1), None, "'-2147483649' is too far below zero; it must be between -2147483648 and"),
        ("99999999999999999999", 1, "'99999999999999999999' is too large; it must be between 1 and 2147483647"),
        ("-99999999999999999999", 1, "must be at least 1, got '-99999999999999999999'"),
        ("9" * 5000, None, "'999999999999…' (5000 characters) is too large"),  # beyond what int() converts
        ("-" + "9" * 5000, 0, "must be at least 0, got '-99999999999…' (5001 characters)"),
        ("1e3", None, "'1e3' is not a whole number"),
    ],
)
def test_a_whole_number_out_of_range_names_the_row_and_column(value: str, minimum: int | None, problem: str) -> None:
    with pytest.raises(CsvImportError) as caught:
        row(value).integer("n", minimum=minimum)
    assert (caught.value.row, caught.value.column) == (7, "n")
    assert str(caught.value).startswith(f"f.csv, row 7, column 'n': {problem}"), str(caught.value)


def parse(tmp_path: Path, text: str, kind: ImportKind = ImportKind.STOCK) -> CsvImportError:
    path = tmp_path / "f.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CsvImportError) as caught:
        parse_file(path, kind)
    return caught.value


def test_the_separator_named_is_the_one_the_header_uses_most(tmp_path: Path) -> None:
    error = parse(tmp_path, "sku;location;on_hand\tnote\n")
    assert isinstance(error, CsvFileError)
    assert "the file looks semicolon-separated" in str(error)
    error = parse(tmp_path, "sku\tlocation\ton_hand;x\n")
    assert "the file looks tab-separated" in str(error)
    # one column and no separator in it: an ordinary missing-columns message
    error = parse(tmp_path, "sku\nINK\n")
    assert not isinstance(error, CsvFileError)
    assert "missing column(s) location, on_hand for --kind stock; the header has 'sku'" in str(error)


def test_a_column_named_twice_is_found_after_the_header_is_trimmed(tmp_path: Path) -> None:
    error = parse(tmp_path, "sku, location ,on_hand,location\nINK,main,1,back\n")
    assert (error.row, error.column) == (1, "location")
    assert "column 'location' appears twice in the header; keep one of them" in str(error)


def test_a_long_column_name_is_shortened_in_the_message(tmp_path: Path) -> None:
    error = parse(tmp_path, "sku,location," + "x" * 100 + "\n")
    assert f"the header has 'sku', 'location', '{'x' * 23}…'." in str(error)


def test_an_orders_differing_value_shows_both_values_even_when_one_is_empty(tmp_path: Path) -> None:
    header = "order_id,channel,placed_at,priority,ship_complete,customer_email,customer_phone,line_no,sku,quantity\n"
    first = "A,web,2026-03-01T10:00:00Z,0,false,,+1555,1,INK,1\n"
    error = parse(tmp_path, header + first + first.replace(",+1555,1,", ",,2,"), ImportKind.ORDERS)
    assert (error.row, error.column) == (3, "customer_phone")
    assert "differs from the order's first row (row 2): empty here, '+1555' there" in str(error)
