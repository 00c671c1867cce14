"""The bundled demo catalog (src/backorder/demo_data) is consistent and realistic enough for
``backorder demo`` to show suppliers, substitutes and backorders out of the box."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from importlib.resources.abc import Traversable

import pytest

PIGMENT_CODE = re.compile(r"^P(B|R|Y|G|V|O|Br|Bk|W)\d+(:\d+)?$")
SKU_HEADER = [
    "sku", "name", "brand", "colour", "pigments", "size", "hazmat", "supplier", "supplier_sku",
    "unit_cost", "lead_time_days", "moq", "case_pack", "safety_stock", "reorder_point", "order_up_to",
    "product_line", "unit_price",
]  # fmt: skip


def demo_data() -> Traversable:
    return files("backorder") / "demo_data"


def read_rows(name: str) -> tuple[list[str], list[dict[str, str]]]:
    with (demo_data() / name).open("r", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def suppliers() -> list[dict[str, str]]:
    header, rows = read_rows("suppliers.csv")
    assert header == ["supplier", "name", "email", "lead_time_days"]
    return rows


@pytest.fixture(scope="module")
def skus() -> list[dict[str, str]]:
    header, rows = read_rows("skus.csv")
    assert header == SKU_HEADER
    return rows


@pytest.fixture(scope="module")
def stock() -> list[dict[str, str]]:
    header, rows = read_rows("stock.csv")
    assert header == ["sku", "location", "on_hand"]
    return rows


def two_places(text: str) -> bool:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return False
    return value.is_finite() and value > 0 and value.as_tuple().exponent == -2


def test_the_catalog_offers_at_least_300_skus_from_at_least_6_suppliers(skus, suppliers):
    assert len(skus) >= 300
    assert len(suppliers) >= 6
    assert len({row["supplier"] for row in skus}) >= 6


def test_sku_and_supplier_codes_are_unique(skus, suppliers):
    codes = [row["sku"] for row in skus]
    assert len(codes) == len(set(codes))
    supplier_codes = [row["supplier"] for row in suppliers]
    assert len(supplier_codes) == len(set(supplier_codes))


def test_every_sku_is_bought_from_a_listed_supplier(skus, suppliers):
    known = {row["supplier"] for row in suppliers}
    assert {row["supplier"] for row in skus} <= known


def test_supplier_emails_use_reserved_example_domains_and_lead_times_are_plausible(suppliers):
    for row in suppliers:
        assert row["email"].rsplit("@", 1)[1] in {"example.com", "example.net"}, row
        assert 5 <= int(row["lead_time_days"]) <= 45, row


def test_pigments_are_colour_index_codes(skus):
    coloured = [row for row in skus if row["pigments"]]
    assert len(coloured) >= 300
    for row in coloured:
        for code in row["pigments"].split(" "):
            assert PIGMENT_CODE.match(code), (row["sku"], code)


def test_costs_and_prices_are_two_place_decimals_with_a_retail_markup(skus):
    for row in skus:
        assert two_places(row["unit_cost"]), row
        assert two_places(row["unit_price"]), row
        markup = Decimal(row["unit_price"]) / Decimal(row["unit_cost"])
        assert Decimal("1.7") <= markup <= Decimal("2.3"), row


def test_order_quantities_and_flags_are_well_formed(skus):
    for row in skus:
        assert row["hazmat"] in {"true", "false"}, row
        assert 1 <= int(row["moq"]) <= 24, row
        assert int(row["case_pack"]) in {1, 3, 6, 10, 12}, row
        assert row["lead_time_days"] == "" or int(row["lead_time_days"]) > 0, row


def test_reorder_points_sit_between_safety_stock_and_order_up_to_unless_made_to_order(skus):
    made_to_order = 0
    for row in skus:
        safety, reorder, up_to = (int(row[k]) for k in ("safety_stock", "reorder_point", "order_up_to"))
        assert safety >= 0, row
        if up_to == 0:
            assert reorder == 0, row
            made_to_order += 1
        else:
            assert reorder >= safety, row
            assert up_to > reorder, row
    assert 0.10 <= made_to_order / len(skus) <= 0.20


def test_solvents_are_flagged_as_hazmat_and_brushes_and_paper_carry_no_pigments(skus):
    for row in skus:
        if "Mineral Spirits" in row["name"]:
            assert row["hazmat"] == "true", row
        if "Brush" in row["product_line"] or "Paper" in row["product_line"]:
            assert row["pigments"] == "", row
    assert any(row["hazmat"] == "true" for row in skus)


def test_some_pigment_and_size_is_sold_by_at_least_three_brands(skus):
    brands: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in skus:
        for code in row["pigments"].split():
            brands[(code, row["size"])].add(row["brand"])
    assert len(brands[("PB29", "15 ml")]) >= 3
    assert max(len(b) for b in brands.values()) >= 3


def test_every_stock_row_names_a_known_sku_at_a_known_location(skus, stock):
    known = {row["sku"] for row in skus}
    for row in stock:
        assert row["sku"] in known, row
        assert row["location"] in {"shop-floor", "warehouse"}, row
        int(row["on_hand"])
    assert len({(row["sku"], row["location"]) for row in stock}) == len(stock)


def test_some_skus_are_oversold_and_some_are_out_of_stock_so_the_demo_shows_backorders(skus, stock):
    assert any(int(row["on_hand"]) < 0 for row in stock)
    totals: dict[str, int] = defaultdict(int)
    for row in stock:
        totals[row["sku"]] += int(row["on_hand"])
    out_of_stock = [row["sku"] for row in skus if totals.get(row["sku"], 0) == 0]
    assert 0.05 <= len(out_of_stock) / len(skus) <= 0.20
