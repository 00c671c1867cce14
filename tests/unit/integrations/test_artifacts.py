"""What we ship into Magento and SFCC: it parses (php -l, node --check, XML), and the payloads it
builds are exactly the fixtures the connectors' contract cases verify and parse."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from backorder.connectors.base import ConnectorDeps, InboundRequest
from backorder.connectors.registry import load_specs
from backorder.connectors.signatures import sign_standard_webhook, verify_standard_webhook
from backorder.domain.commands import CancelOrder, NewLine, PlaceOrder, SetStockLevel

REPO = Path(__file__).resolve().parents[3]
MAGENTO = REPO / "integrations" / "magento"
MODULE = MAGENTO / "Backorder_Sync"
SFCC = REPO / "integrations" / "sfcc"
CARTRIDGE = SFCC / "int_backorder"
HERE = Path(__file__).resolve().parent
PHP = shutil.which("php")
NODE = shutil.which("node")
SECRET = "whsec_c2ZjYy1jYXJ0cmlkZ2Utc2VjcmV0"
needs_php = pytest.mark.skipif(
    PHP is None,
    reason="php is not installed (scripts/ensure-test-tools.sh installs php-cli); the structural PHP checks still run",
)
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")

PHP_FILES = sorted(MODULE.rglob("*.php"))
JS_FILES = sorted(CARTRIDGE.rglob("*.js"))
XML_FILES = sorted([*MODULE.rglob("*.xml"), *SFCC.rglob("*.xml")])


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr or done.stdout
    return done.stdout


def test_the_artifacts_have_the_files_their_readmes_describe() -> None:
    assert len(PHP_FILES) >= 10 and len(JS_FILES) == 2 and len(XML_FILES) >= 8
    for readme in (MAGENTO / "README.md", SFCC / "README.md"):
        assert "install" in readme.read_text(encoding="utf-8").lower()


@needs_php
@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: str(p.relative_to(MODULE)))
def test_every_php_file_passes_php_lint(path: Path) -> None:
    assert "No syntax errors" in _run(PHP or "php", "-l", str(path))


def _strip_php(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    source = re.sub(r"(?m)//.*$", "", source)
    return re.sub(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", "''", source)


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: str(p.relative_to(MODULE)))
def test_every_php_file_is_well_formed_without_php(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert source.startswith("<?php\ndeclare(strict_types=1);")
    code = _strip_php(source)
    for opening, closing in ("{}", "()", "[]"):
        assert code.count(opening) == code.count(closing), f"unbalanced {opening}{closing}"
    if path.name != "registration.php":
        relative = path.relative_to(MODULE).with_suffix("")
        namespace = "Backorder\\Sync\\" + "\\".join(relative.parts[:-1])
        assert f"namespace {namespace};" in source
        assert re.search(rf"\bclass {relative.name}\b", source), f"class {relative.name} not declared"


def test_every_class_the_module_xml_names_exists() -> None:
    named = set()
    for name in ("events.xml", "di.xml", "crontab.xml"):
        for element in ET.parse(MODULE / "etc" / name).iter():
            for attribute in ("instance", "type"):
                value = element.get(attribute, "")
                if value.startswith("Backorder\\Sync\\"):
                    named.add(value)
    assert len(named) == 6
    for cls in named:
        assert (MODULE / (cls.removeprefix("Backorder\\Sync\\").replace("\\", "/") + ".php")).is_file(), cls


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: p.name)
def test_every_xml_file_parses(path: Path) -> None:
    assert ET.parse(path).getroot().tag


def test_the_module_observes_order_placement_and_stock_changes() -> None:
    events = {e.get("name") for e in ET.parse(MODULE / "etc" / "events.xml").iter("event")}
    assert {"sales_order_place_after", "cataloginventory_stock_item_save_after"} <= events
    plugin = ET.parse(MODULE / "etc" / "di.xml").find("type")
    assert plugin is not None and plugin.get("name") == "Magento\\InventoryApi\\Api\\SourceItemsSaveInterface"


@needs_node
@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.name)
def test_every_js_file_passes_node_check(path: Path) -> None:
    _run(NODE or "node", "--check", str(path))


def test_the_step_type_points_at_the_job_step_module() -> None:
    step = json.loads((CARTRIDGE / "steptypes.json").read_text())["step-types"]["script-module-step"][0]
    assert (REPO / "integrations" / "sfcc" / (step["module"])).is_file()
    assert step["function"] == "execute"
    assert "exports = { execute" in (CARTRIDGE / "cartridge/scripts/jobsteps/SendBackorderEvents.js").read_text()


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


MODULE_FIXTURES = sorted(p for p in (MAGENTO / "fixtures").glob("*.json") if not p.name.startswith("adobe."))


@pytest.mark.parametrize("fixture", MODULE_FIXTURES, ids=lambda p: p.name)
def test_magento_fixture_fields_are_the_ones_the_php_builder_writes(fixture: Path) -> None:
    builder = (MODULE / "Model" / "PayloadBuilder.php").read_text()
    for key in _keys(json.loads(fixture.read_bytes())):
        assert f"'{key}'" in builder, f"{key} is not written by PayloadBuilder.php"


@pytest.mark.parametrize("fixture", sorted((SFCC / "fixtures").glob("*.json")), ids=lambda p: p.name)
def test_sfcc_fixture_fields_are_the_ones_the_js_builder_writes(fixture: Path) -> None:
    builder = (CARTRIDGE / "cartridge/scripts/backorder/payloads.js").read_text()
    for key in _keys(json.loads(fixture.read_bytes())):
        assert re.search(rf"\b{key}\b\s*:", builder), f"{key} is not written by payloads.js"


@needs_php
def test_the_php_payload_builder_produces_the_magento_fixtures_byte_for_byte() -> None:
    built = json.loads(_run(PHP or "php", str(HERE / "magento_payloads.php"), str(MODULE)))
    assert set(built) == {p.name for p in (MAGENTO / "fixtures").glob("*.json") if not p.name.startswith("adobe.")}
    for name, event in built.items():
        assert event["body"] + "\n" == (MAGENTO / "fixtures" / name).read_text(encoding="utf-8"), name
    assert built["order.placed.json"]["webhook_id"] == "mg-order-placed-42"


@needs_php
def test_the_php_signer_matches_the_standard_webhooks_verifier() -> None:
    body = '{"type":"order.placed","data":{"a":"é"}}'
    script = (
        f"require '{MODULE}/Model/Signer.php'; "
        f"echo \\Backorder\\Sync\\Model\\Signer::sign('{SECRET}', 'mg-order-placed-42', 1795764600, $argv[1]);"
    )
    signature = _run(PHP or "php", "-r", script, body)
    assert signature == sign_standard_webhook(SECRET, "mg-order-placed-42", 1795764600, body.encode())
    verify_standard_webhook(
        body.encode(),
        {"webhook-id": "mg-order-placed-42", "webhook-timestamp": "1795764600", "webhook-signature": signature},
        SECRET,
        now=1795764610,
    )


@needs_node
def test_the_sfcc_job_step_run_under_node_sends_signed_events_the_connector_parses() -> None:
    out = json.loads(_run(NODE or "node", str(HERE / "sfcc_harness.js"), str(CARTRIDGE), SECRET))
    assert out["status"]["code"] == "OK"
    spec = load_specs()["sfcc"]
    settings = spec.settings.model_validate(
        {"platform": "sfcc", "webhook_secret": SECRET, "inventory_locations": {"inventory_london": "london"}}
    )
    connector = spec.build("channels.eu", settings, ConnectorDeps(http_client_factory=lambda n: httpx.Client()))
    commands = []
    for sent in out["requests"]:
        headers = {k.lower(): v for k, v in sent["headers"].items()}
        received = datetime.fromtimestamp(int(headers["webhook-timestamp"]) + 2, UTC)
        request = InboundRequest("sfcc", "eu", sent["url"], headers, sent["body"].encode(), received)
        connector.verify(request)
        identity = connector.identify(request)
        commands.extend(connector.parse(identity.topic, request.headers, request.body))
    assert [r["headers"]["webhook-id"] for r in out["requests"][:2]] == [
        "sfcc-order-created-00001234",
        "sfcc-order-cancelled-00001234",
    ]
    assert commands == [
        PlaceOrder(
            "eu-00001234",
            "eu",
            datetime(2026, 11, 27, 9, 24, 51, tzinfo=UTC),
            (NewLine(1, "WN-CAD-RED-5ML", 2), NewLine(2, "WN-COTMAN-SET-12", 1)),
            customer_email="ada@example.com",
            customer_phone="+441632960001",
            customer_name="Ada Lovelace",
            reference="00001234",
        ),
        CancelOrder("eu-00001234", reason="cancelled in SFCC"),
        SetStockLevel("WN-CAD-RED-5ML", "london", 14, datetime(2026, 11, 27, 6, tzinfo=UTC), "sfcc:eu"),
    ]
    fixture = json.loads((SFCC / "fixtures" / "order.created.json").read_bytes())
    assert fixture["data"] == json.loads(out["requests"][0]["body"])["data"]
