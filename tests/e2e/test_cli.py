"""The `backorder` command as a user runs it: a real process, a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BACKORDER = [sys.executable, "-m", "backorder.cli"]


def run(*args: str, db: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKORDER_")}
    if db is not None:
        env["BACKORDER_DATABASE_URL"] = f"sqlite:///{db}"
    env["COLUMNS"] = "200"
    result = subprocess.run([*BACKORDER, *args], capture_output=True, text=True, env=env, timeout=240)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("demo")
    result = run("demo", "--orders", "120", "--seed", "3", "--json", "--dir", str(folder))
    data = json.loads(result.stdout)
    data["_dir"] = folder
    return data


def test_the_demo_json_reports_what_the_issue_asks_for(demo: dict[str, object]) -> None:
    for key in (
        "orders",
        "order_lines",
        "backorder_lines",
        "purchase_orders",
        "notifications",
        "allocated_from_receipts",
        "open_backorders",
    ):
        assert isinstance(demo[key], int), key
    assert demo["orders"] == 120
    assert demo["backorder_lines"] > 0
    assert demo["purchase_orders"] > 0
    assert demo["notifications"] > 0
    assert demo["allocated_from_receipts"] > 0


def test_the_demo_runs_a_shopify_and_a_woocommerce_channel_side_by_side(demo: dict[str, object]) -> None:
    by_platform = demo["orders_by_platform"]
    assert isinstance(by_platform, dict)
    assert by_platform["shopify"] > 0 and by_platform["woocommerce"] > 0  # both platforms' orders arrived
    assert sum(by_platform.values()) == demo["orders"]
    channels = demo["channels"]
    assert isinstance(channels, dict)
    for cid, platform, topic in (("web", "shopify", "orders/create"), ("wholesale", "woocommerce", "order.created")):
        entry = channels[cid]
        assert entry["platform"] == platform and entry["ingress"] == "signed webhooks"
        # every order came through the webhook route into the inbox and was processed there
        assert entry["topics"][topic] == entry["orders"] and entry["refused"] == 0
        assert set(entry["inbox"]) == {"processed"}
        # and the sellable quantity went back to the platform (the demo's in-process sandbox)
        assert entry["outbound"] == "demo platform sandbox (in process)"
        assert entry["platform_calls"]["skus_set"] > 0
    # shipments came back as platform events: Shopify fulfilments, WooCommerce completions
    assert channels["web"]["topics"].get("fulfillments/create", 0) > 0
    assert channels["wholesale"]["topics"].get("order.updated", 0) > 0
    assert channels["pos"]["ingress"] == "order API" and channels["pos"]["orders"] > 0


def test_the_demo_consolidates_purchase_orders_per_supplier(demo: dict[str, object]) -> None:
    by_supplier = demo["purchase_orders_by_supplier"]
    assert isinstance(by_supplier, dict) and by_supplier
    # consolidation: on average a PO carries several lines, not one PO per breach
    total_pos = sum(v["purchase_orders"] for v in by_supplier.values())
    total_lines = sum(v["lines"] for v in by_supplier.values())
    assert total_lines > 2 * total_pos


def test_the_demo_sandbox_holds_customer_staff_and_supplier_messages(demo: dict[str, object]) -> None:
    kinds = {key.split(":")[0] for key in demo["messages_by_type"]}
    assert {"email", "staff", "purchase_order"} <= kinds
    assert any(key.startswith("email:backorder_created") for key in demo["messages_by_type"])
    folder = Path(str(demo["_dir"])) / "sandbox_outbox"
    assert len(list(folder.glob("*.txt"))) == demo["notifications"]


def test_export_lines_lists_every_line_with_the_documented_columns(demo: dict[str, object]) -> None:
    db = Path(str(demo["_dir"])) / "demo.db"
    rows = list(csv.DictReader(io.StringIO(run("export", "lines", db=db).stdout)))
    assert len(rows) == demo["order_lines"]
    assert list(rows[0]) == ["order_id", "line_no", "sku", "quantity", "allocated", "backordered", "status", "eta"]
    for row in rows:
        if row["status"] == "open":
            assert int(row["allocated"]) + int(row["backordered"]) == int(row["quantity"])
    as_json = json.loads(run("export", "lines", "--format", "json", db=db).stdout)
    assert len(as_json) == len(rows)


def test_explain_names_the_receipt_a_waiting_order_was_served_from(demo: dict[str, object]) -> None:
    db = Path(str(demo["_dir"])) / "demo.db"
    rows = list(csv.DictReader(io.StringIO(run("export", "lines", db=db).stdout)))
    explained = 0
    for order_id in sorted({row["order_id"] for row in rows}):
        data = json.loads(run("explain", order_id, "--json", db=db).stdout)
        receipts = [h for line in data["lines"] for h in line["history"] if h["source"] == "receipt"]
        if receipts:
            assert receipts[0]["receipt"]["quantity"] > 0
            assert receipts[0]["source_ref"].startswith("R")
            human = run("explain", order_id, db=db).stdout
            assert "from receipt R" in human
            explained += 1
            break
    assert explained == 1


def test_an_unknown_order_gets_a_clear_error_and_exit_code_2(tmp_path: Path) -> None:
    result = run("explain", "NOPE-1", db=tmp_path / "x.db", check=False)
    assert result.returncode == 2
    assert "unknown order 'NOPE-1'" in result.stderr


def test_an_import_with_a_bad_row_names_file_row_and_column_and_imports_nothing(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    good = tmp_path / "suppliers.csv"
    good.write_text(
        "supplier,name,email,lead_time_days\nWN-UK,Winsor,orders@example.com,21\nDS-US,Daniel,ds@example.com,7\n"
    )
    bad = tmp_path / "suppliers2.csv"
    bad.write_text("supplier,name,email,lead_time_days\nAA,Alpha,a@example.com,5\nBB,Beta,b@example.com,soon\n")
    result = run("import", str(bad), "--kind", "suppliers", db=db, check=False)
    assert result.returncode == 2
    assert "suppliers2.csv, row 3, column 'lead_time_days'" in result.stderr
    assert "Nothing from this file was imported" in result.stderr
    run("import", str(good), "--kind", "suppliers", db=db)
    skus = tmp_path / "skus.csv"
    skus.write_text(
        "sku,name,brand,colour,pigments,size,hazmat,supplier,supplier_sku,unit_cost,lead_time_days,moq,case_pack,"
        "safety_stock,reorder_point,order_up_to\n"
        "S1,Ultramarine,WN,French Ultramarine,PB29,14 ml,false,WN-UK,0102263,4.10,,1,6,2,4,12\n"
        "S2,Ultramarine,DS,French Ultramarine,PB29,15 ml,false,XX-NO,284600,4.50,,1,6,2,4,12\n"
    )
    result = run("import", str(skus), "--kind", "skus", db=db, check=False)
    assert result.returncode == 2
    assert "skus.csv, row 3" in result.stderr and "unknown supplier 'XX-NO'" in result.stderr
    exported = run("export", "lines", db=db).stdout.strip().splitlines()
    assert exported == ["order_id,line_no,sku,quantity,allocated,backordered,status,eta"]


def test_bop_reports_what_it_allocated_as_json(tmp_path: Path) -> None:
    result = run("bop", "--json", db=tmp_path / "y.db")
    data = json.loads(result.stdout)
    assert data["units_allocated"] == 0 and data["open_backorders_after"] == 0
