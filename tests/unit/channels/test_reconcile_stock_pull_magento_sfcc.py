"""The Magento and SFCC stock pulls without a database: keys, observed times, what is left out, and
how the reconciler decides a channel is a stock source."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from tests.contract.cases import magento as magento_case
from tests.contract.cases import sfcc as sfcc_case
from tests.contract.framework import Recorder, build_connector

from backorder.channels.reconcile import STOCK_TOPICS, Reconciler
from backorder.connectors.base import ConnectorDeps
from backorder.connectors.errors import Rejected
from backorder.connectors.magento import mapping as magento_mapping
from backorder.connectors.registry import load_specs
from backorder.connectors.sfcc import mapping as sfcc_mapping
from backorder.domain.commands import SetStockLevel

AT = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


# --- Magento keys and times ---------------------------------------------------------------------


def _key(quantity: Any, at: datetime = AT, refresh_hours: float = 24.0) -> str:
    entry = magento_mapping.pulled_source_item(
        {"sku": "INK", "source_code": "ws-london", "quantity": quantity, "status": 1}, at, refresh_hours
    )
    assert entry is not None
    return entry[0]


def test_a_magento_quantity_written_three_ways_gives_one_key() -> None:
    assert _key(12) == _key(12.0) == _key("12.0000")
    assert _key(12.5) != _key(12)
    assert _key(0) == _key(-0.0)
    assert _key(100).startswith("reconcile-stock:ws-london:INK:100:")


def test_an_unchanged_magento_level_keeps_its_key_within_a_refresh_period_and_not_across_it() -> None:
    midnight = AT.replace(hour=0, minute=0)
    assert _key(7, midnight + timedelta(hours=1)) == _key(7, midnight + timedelta(hours=23))
    assert _key(7, midnight + timedelta(hours=23)) != _key(7, midnight + timedelta(hours=25))
    # refresh off: the quantity alone
    assert _key(7, AT, 0) == _key(7, AT + timedelta(days=400), 0)


def test_a_magento_item_without_a_sku_a_source_or_a_quantity_is_left_out() -> None:
    for item in (
        {"source_code": "ws-london", "quantity": 1},
        {"sku": " ", "source_code": "ws-london", "quantity": 1},
        {"sku": "INK", "quantity": 1},
        {"sku": "INK", "source_code": "ws-london", "quantity": None},
        {"sku": "INK", "source_code": "ws-london", "quantity": "lots"},
        {"sku": "INK", "source_code": "ws-london", "quantity": True},
    ):
        assert magento_mapping.pulled_source_item(item, AT, 24) is None, item


def test_a_long_magento_key_is_hashed_to_fit_the_inbox() -> None:
    entry = magento_mapping.pulled_source_item({"sku": "X" * 190, "source_code": "ws-london", "quantity": 1}, AT, 24)
    assert entry is not None
    key, envelope = entry
    assert len(key) <= magento_mapping.EVENT_KEY_LIMIT and key.startswith("reconcile-stock:sha256:")
    assert envelope["data"]["items"][0]["sku"] == "X" * 190


def test_magentos_date_header_is_read_one_second_back_and_our_clock_is_the_fallback() -> None:
    fallback = AT - timedelta(hours=3)
    assert magento_mapping.server_time("Fri, 27 Nov 2026 09:30:00 GMT", fallback) == AT - timedelta(seconds=1)
    assert magento_mapping.server_time(None, fallback) == fallback
    assert magento_mapping.server_time("yesterday-ish", fallback) == fallback


def _magento(answer: Any, *, wall_clock: Any = None, settings: dict[str, Any] | None = None) -> Any:
    spec = load_specs()["magento"]
    values = {**magento_case.CASE.settings, **(settings or {})}

    def factory(name: str) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(answer), base_url=magento_case.BASE_URL)

    deps = ConnectorDeps(http_client_factory=factory, extras={"wall_clock": wall_clock} if wall_clock else {})
    return spec.build("channels.mage", spec.settings.model_validate(values), deps)


def test_a_magento_page_without_a_date_header_is_observed_when_the_request_left() -> None:
    sent = AT - timedelta(minutes=7)

    def answer(request: httpx.Request) -> httpx.Response:
        item = {"sku": "INK", "source_code": "ws-london", "quantity": 4, "status": 1}
        return httpx.Response(200, json={"items": [item], "search_criteria": {}, "total_count": 1})

    connector = _magento(answer, wall_clock=lambda: sent)
    ((_, body),) = connector.current_stock()
    assert connector.parse("stock.source_items", {}, body) == [SetStockLevel("INK", "london", 4, sent, "magento:mage")]


def test_an_item_of_another_source_in_magentos_answer_is_not_recorded() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        items = [
            {"sku": "INK", "source_code": "ws-london", "quantity": 4, "status": 1},
            {"sku": "INK", "source_code": "default", "quantity": 9, "status": 1},  # filter ignored by a plugin
        ]
        return httpx.Response(200, json={"items": items, "search_criteria": {}, "total_count": 2})

    found = _magento(answer).current_stock()
    assert [json.loads(body)["data"]["items"][0]["source_code"] for _, body in found] == ["ws-london"]


def test_a_magento_channel_reads_stock_only_when_it_maps_a_source() -> None:
    assert _magento(lambda r: httpx.Response(500)).reads_stock() is True
    assert _magento(lambda r: httpx.Response(500), settings={"source_locations": {}}).reads_stock() is False


# --- SFCC ----------------------------------------------------------------------------------------


def test_an_sfcc_record_without_an_allocation_is_left_out() -> None:
    for record in (
        {"product_id": "INK"},
        {"product_id": "INK", "allocation": {"amount": 3}},
        {"product_id": "INK", "allocation": {"reset_date": "2026-11-27T06:00:00.000Z"}},
        {"allocation": {"amount": 3, "reset_date": "2026-11-27T06:00:00.000Z"}},
    ):
        assert sfcc_mapping.pulled_inventory_record("inventory_london", record) is None, record


def test_an_sfcc_key_holds_the_reset_date_and_the_whole_amount() -> None:
    record = {"product_id": "INK", "allocation": {"amount": 1234567.0, "reset_date": "2026-11-27T06:00:00.000Z"}}
    entry = sfcc_mapping.pulled_inventory_record("inventory_london", record)
    assert entry is not None
    assert entry[0] == "reconcile-stock:inventory_london:INK:2026-11-27T06:00:00.000Z:1234567"


def test_an_empty_sfcc_list_is_one_request_and_no_rows() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if str(request.url).startswith(sfcc_case.TOKEN_URL):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 1799})
        return httpx.Response(200, json={"_v": "23.2", "count": 0, "start": 0, "total": 0})

    recorder = Recorder(answer)
    assert build_connector(sfcc_case.CASE, recorder).current_stock() == []
    assert [r.method for r in recorder.requests] == ["POST", "GET"]


def test_an_sfcc_answer_without_data_or_total_is_an_error() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if str(request.url).startswith(sfcc_case.TOKEN_URL):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 1799})
        return httpx.Response(200, json={"data": "nope", "total": 1})

    with pytest.raises(Rejected) as caught:
        build_connector(sfcc_case.CASE, Recorder(answer)).current_stock()
    assert caught.value.detail == "SFCC's answer for the inventory records of inventory_london has no data / total"


# --- the reconciler ------------------------------------------------------------------------------


@dataclass
class FakeInbox:
    rows: dict[tuple[str, str, str], tuple[str, bytes]] = field(default_factory=dict)

    def record(
        self, platform: str, channel: str, key: str, topic: str, headers: Any, body: bytes, now: datetime
    ) -> tuple[int, bool]:
        created = (platform, channel, key) not in self.rows
        self.rows.setdefault((platform, channel, key), (topic, body))
        return len(self.rows), created

    def record_many(self, items: list[tuple[str, str, str, str, Any, bytes, datetime]]) -> list[tuple[int, bool]]:
        return [self.record(*item) for item in items]  # a repeated key in the batch is its duplicate


class StockConnector:
    def __init__(self, kind: str, reads: bool | None, stock_source: bool, entries: list[tuple[Any, ...]]) -> None:
        self.settings = SimpleNamespace(kind=kind, stock_source=stock_source)
        self._entries = entries
        if reads is not None:
            self.reads_stock = lambda: reads

    def current_stock(self) -> list[tuple[Any, ...]]:
        return self._entries


def test_the_connector_says_whether_it_reads_stock_before_its_settings_do() -> None:
    channels: dict[str, Any] = {
        "mage": StockConnector("magento", True, False, []),
        "mage-unmapped": StockConnector("magento", False, True, []),
        "shop": StockConnector("shopify", None, True, []),
        "shop-off": StockConnector("shopify", None, False, []),
    }
    reconciler = Reconciler(FakeInbox(), None, channels)  # type: ignore[arg-type]
    assert [cid for cid in sorted(channels) if reconciler.is_stock_source(cid)] == ["mage", "shop"]
    assert not reconciler.is_stock_source("unknown")


def test_pulled_rows_take_the_platforms_stock_topic_unless_an_entry_names_its_own() -> None:
    inbox = FakeInbox()
    entries = [("k1", b"{}"), ("k2", b"{}", "stock.item"), ("k1", b"{}")]
    channels: dict[str, Any] = {"mage": StockConnector("magento", True, False, entries)}
    reconciler = Reconciler(inbox, None, channels)  # type: ignore[arg-type]
    assert reconciler.reconcile_stock("mage", AT) == {"pulled": 3, "new": 2}
    assert {key[2]: topic for key, (topic, _) in inbox.rows.items()} == {
        "k1": STOCK_TOPICS["magento"],
        "k2": "stock.item",
    }
    assert STOCK_TOPICS["magento"] == "stock.source_items" and STOCK_TOPICS["sfcc"] == "inventory.records"
