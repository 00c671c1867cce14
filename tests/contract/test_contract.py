"""Every connector, one contract (see framework.py for what is checked)."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from backorder.connectors.base import InboundRequest, ReceivesWebhooks
from backorder.connectors.errors import (
    InvalidSignature,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    TransportFailure,
    WebhookRejected,
)
from backorder.connectors.registry import load_specs
from tests.contract.cases import all_cases
from tests.contract.framework import NOW, ContractCase, InboundSample, OutboundCall, Recorder, build_connector

CASES = all_cases()
OUTBOUND = [(case, call) for case in CASES for call in case.outbound]
HTTP_OUTBOUND = [(case, call) for case, call in OUTBOUND if call.ok_response is not None]
INBOUND = [(case, sample) for case in CASES for sample in case.inbound]


def _id(item: object) -> str:
    if isinstance(item, ContractCase):
        return item.kind
    return getattr(item, "name", str(item))


def test_every_registered_connector_has_a_contract_case() -> None:
    assert set(load_specs()) == {case.kind for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_settings_validate_and_keep_secrets_out_of_repr(case: ContractCase) -> None:
    spec = load_specs()[case.kind]
    settings = spec.settings.model_validate(case.settings)
    for name in case.secret_fields:
        value = getattr(settings, name)
        assert isinstance(value, SecretStr), f"{case.kind}.{name} must be a SecretStr"
        assert value.get_secret_value() not in repr(settings)


@pytest.mark.parametrize(("case", "call"), OUTBOUND, ids=_id)
def test_a_successful_call_returns_a_receipt(case: ContractCase, call: OutboundCall) -> None:
    recorder = Recorder(call.ok_response or (lambda r: httpx.Response(500)))
    receipt = call.invoke(build_connector(case, recorder))
    assert receipt.detail or receipt.provider_ref
    if call.ok_response is not None:
        assert len(recorder.requests) >= 1


@pytest.mark.parametrize(("case", "call"), HTTP_OUTBOUND, ids=_id)
def test_the_request_matches_the_vendors_published_spec(case: ContractCase, call: OutboundCall) -> None:
    assert call.validate is not None, f"{case.kind}.{call.name}: an HTTP call must be checked against a spec"
    assert call.ok_response is not None
    recorder = Recorder(call.ok_response)
    call.invoke(build_connector(case, recorder))
    for request in recorder.requests:
        call.validate(request)


@pytest.mark.parametrize(("case", "call"), HTTP_OUTBOUND, ids=_id)
def test_429_with_retry_after_is_retryable_and_keeps_the_wait(case: ContractCase, call: OutboundCall) -> None:
    recorder = Recorder(lambda r: httpx.Response(429, headers={"Retry-After": "17"}))
    with pytest.raises(RateLimited) as caught:
        call.invoke(build_connector(case, recorder))
    assert caught.value.retry_after == pytest.approx(17)


@pytest.mark.parametrize(("case", "call"), HTTP_OUTBOUND, ids=_id)
def test_a_5xx_answer_is_retryable(case: ContractCase, call: OutboundCall) -> None:
    recorder = Recorder(lambda r: httpx.Response(503, text="maintenance"))
    with pytest.raises(ProviderUnavailable):
        call.invoke(build_connector(case, recorder))


@pytest.mark.parametrize(("case", "call"), HTTP_OUTBOUND, ids=_id)
@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_answers_are_fatal_and_sent_once(case: ContractCase, call: OutboundCall, status: int) -> None:
    recorder = Recorder(lambda r: httpx.Response(status, json={"error": "no"}))
    with pytest.raises(Rejected) as caught:
        call.invoke(build_connector(case, recorder))
    assert caught.value.status_code == status
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(("case", "call"), HTTP_OUTBOUND, ids=_id)
def test_a_network_failure_is_a_retryable_transport_failure(case: ContractCase, call: OutboundCall) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(TransportFailure) as caught:
        call.invoke(build_connector(case, refuse))
    assert isinstance(caught.value.__cause__, httpx.HTTPError)


def _request(case: ContractCase, sample: InboundSample, body: bytes, headers: dict[str, str]) -> InboundRequest:
    lowered = {k.lower(): v for k, v in {**sample.extra_headers, **headers}.items()}
    return InboundRequest(case.kind, "contract", sample.url, lowered, body, NOW)


def _receiver(case: ContractCase) -> ReceivesWebhooks:
    connector = build_connector(case, lambda r: httpx.Response(500))
    assert isinstance(connector, ReceivesWebhooks)
    return connector


@pytest.mark.parametrize(("case", "sample"), INBOUND, ids=_id)
def test_a_signed_sample_verifies_and_parses_into_commands(case: ContractCase, sample: InboundSample) -> None:
    receiver = _receiver(case)
    request = _request(case, sample, sample.body, sample.sign(sample.body))
    receiver.verify(request)
    identity = receiver.identify(request)
    assert identity.event_key
    sample.expect(receiver.parse(identity.topic, request.headers, request.body))


@pytest.mark.parametrize(("case", "sample"), INBOUND, ids=_id)
def test_a_flipped_bit_in_the_body_is_rejected(case: ContractCase, sample: InboundSample) -> None:
    receiver = _receiver(case)
    headers = sample.sign(sample.body)
    tampered = bytearray(sample.body)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(InvalidSignature):
        receiver.verify(_request(case, sample, bytes(tampered), headers))


@pytest.mark.parametrize(("case", "sample"), INBOUND, ids=_id)
def test_a_missing_signature_is_rejected(case: ContractCase, sample: InboundSample) -> None:
    receiver = _receiver(case)
    headers = {
        k: v
        for k, v in sample.sign(sample.body).items()
        if k.lower() not in {h.lower() for h in sample.signature_headers}
    }
    assert sample.signature_headers, "name the signature headers of the sample"
    with pytest.raises(WebhookRejected):
        receiver.verify(_request(case, sample, sample.body, headers))


@pytest.mark.parametrize(("case", "sample"), INBOUND, ids=_id)
def test_the_same_json_re_serialised_is_rejected(case: ContractCase, sample: InboundSample) -> None:
    receiver = _receiver(case)
    headers = sample.sign(sample.body)
    try:
        reserialised = json.dumps(json.loads(sample.body), indent=1).encode()
    except ValueError:
        pytest.skip("not a JSON body")
    assert reserialised != sample.body
    with pytest.raises(InvalidSignature):
        receiver.verify(_request(case, sample, reserialised, headers))
