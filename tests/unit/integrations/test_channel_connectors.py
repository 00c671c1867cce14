"""Behaviour of the Magento and SFCC connectors beyond the shared contract."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import ValidationError
from tests.contract.cases import magento as magento_case
from tests.contract.cases import sfcc as sfcc_case
from tests.contract.framework import NOW, Recorder, build_connector

from backorder.connectors.base import ConnectorDeps, OrderTag, StockUpdate
from backorder.connectors.errors import MalformedPayload, StaleTimestamp
from backorder.connectors.magento import MagentoSettings
from backorder.connectors.registry import load_specs
from backorder.connectors.sfcc import SfccSettings


def test_a_magento_source_cannot_be_both_pushed_to_and_read() -> None:
    with pytest.raises(ValidationError, match="push_source_code"):
        MagentoSettings(platform="magento", push_source_code="default", source_locations={"default": "main"})


def test_a_channel_with_only_a_webhook_secret_reports_its_missing_credentials() -> None:
    assert MagentoSettings(platform="magento", webhook_secret="whsec_eA==").missing_credentials() == [
        "base_url",
        "access_token",
    ]
    missing = SfccSettings(platform="sfcc", webhook_secret="whsec_eA==").missing_credentials()
    assert {"client_id", "client_secret", "base_url", "short_code"} <= set(missing)


def test_the_swagger_check_rejects_a_misspelt_field_and_an_unknown_path() -> None:
    good = httpx.Request(
        "POST",
        "https://s.test/rest/default/V1/inventory/source-items",
        headers={"Authorization": "Bearer x"},
        json={"sourceItems": [{"sku": "A", "source_code": "default", "quantity": 1, "status": 1}]},
    )
    magento_case.validate_against_swagger(good)
    misspelt = httpx.Request(
        "POST",
        good.url,
        headers={"Authorization": "Bearer x"},
        json={"sourceItems": [{"sku": "A", "source": "default", "quantity": 1}]},
    )
    with pytest.raises(Exception, match="source"):
        magento_case.validate_against_swagger(misspelt)
    with pytest.raises(AssertionError, match="not a path"):
        magento_case.validate_against_swagger(
            httpx.Request("POST", "https://s.test/rest/default/V1/orders/42/backorder")
        )


def test_the_sfcc_token_is_fetched_once_and_refreshed_once_after_a_401() -> None:
    issued: list[str] = []
    revoked: set[str] = set()

    def answer(request: httpx.Request) -> httpx.Response:
        if str(request.url).startswith(sfcc_case.TOKEN_URL):
            issued.append(f"tok{len(issued) + 1}")
            return httpx.Response(200, json={"access_token": issued[-1], "expires_in": 1799})
        token = request.headers["authorization"].removeprefix("Bearer ")
        return httpx.Response(401 if token in revoked else 200, json={})

    recorder = Recorder(answer)
    connector = build_connector(sfcc_case.CASE, recorder)
    for sku in ("A", "B", "C"):
        connector.push_stock([StockUpdate(sku, 1)])
    assert issued == ["tok1"] and len(recorder.requests) == 4
    revoked.add("tok1")
    connector.push_stock([StockUpdate("D", 4)])
    kinds = [
        "token" if str(r.url).startswith(sfcc_case.TOKEN_URL) else r.headers["authorization"] for r in recorder.requests
    ]
    assert kinds[4:] == ["Bearer tok1", "token", "Bearer tok2"]


def test_a_stale_magento_event_is_rejected() -> None:
    sample = magento_case.CASE.inbound[0]
    connector = build_connector(magento_case.CASE, lambda r: httpx.Response(500))
    headers = sample.sign(sample.body)
    from backorder.connectors.base import InboundRequest

    late = NOW.replace(minute=NOW.minute + 6)
    with pytest.raises(StaleTimestamp):
        connector.verify(InboundRequest("magento", "x", "u", headers, sample.body, late))


def test_an_unknown_event_type_is_a_malformed_payload() -> None:
    connector = build_connector(magento_case.CASE, lambda r: httpx.Response(500))
    body = json.dumps({"type": "order.teleported", "timestamp": "2026-11-27T09:00:00Z", "data": {}}).encode()
    with pytest.raises(MalformedPayload, match=r"order\.teleported"):
        connector.parse("order.teleported", {}, body)


def test_magento_does_not_hold_an_order_that_cannot_be_held() -> None:
    recorder = Recorder(magento_case._answer("complete"))
    connector = build_connector(magento_case.CASE, recorder)
    receipt = connector.tag_order(
        OrderTag("bo-1", "contract.magento-000000042", "contract.magento-000000042", True, "note")
    )
    assert [r.url.path.rsplit("/", 1)[-1] for r in recorder.requests] == ["orders", "comments"]
    assert "commented" in receipt.detail


def test_connectors_build_without_an_injected_http_client() -> None:
    spec = load_specs()["magento"]
    connector = spec.build("channels.web", spec.settings.model_validate({"platform": "magento"}), ConnectorDeps())
    assert connector.name == "channels.web"
