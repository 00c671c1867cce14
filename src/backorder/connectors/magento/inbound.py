"""Inbound Magento events: our Backorder_Sync module (Standard Webhooks) and Adobe Commerce
webhooks (``x-adobe-commerce-webhook-signature``, RSA over the base64 body)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from backorder.connectors.base import InboundIdentity, InboundRequest
from backorder.connectors.errors import InvalidSignature, MalformedPayload
from backorder.connectors.magento import mapping
from backorder.connectors.magento.settings import MagentoSettings
from backorder.connectors.signatures import (
    ADOBE_COMMERCE_SIGNATURE_HEADER,
    STANDARD_WEBHOOK_SIGNATURE_HEADER,
    verify_adobe_commerce,
)
from backorder.connectors.standard_webhooks import identify_standard, parse_envelope, verify_signed
from backorder.domain.commands import Command

ADOBE_TOPIC_PREFIX = "adobe."


def _is_adobe(headers: Mapping[str, str]) -> bool:
    return ADOBE_COMMERCE_SIGNATURE_HEADER in {k.lower() for k in headers}


def verify(settings: MagentoSettings, request: InboundRequest) -> None:
    if _is_adobe(request.headers):
        if not settings.adobe_public_keys:
            raise InvalidSignature("an Adobe Commerce webhook arrived but no adobe_public_keys are configured")
        verify_adobe_commerce(
            request.body, request.headers.get(ADOBE_COMMERCE_SIGNATURE_HEADER), list(settings.adobe_public_keys)
        )
        return
    if STANDARD_WEBHOOK_SIGNATURE_HEADER not in {k.lower() for k in request.headers}:
        raise InvalidSignature(
            f"missing {STANDARD_WEBHOOK_SIGNATURE_HEADER} (Backorder_Sync) or {ADOBE_COMMERCE_SIGNATURE_HEADER} header"
        )
    verify_signed(request, settings.all_webhook_secrets())


def identify(request: InboundRequest) -> InboundIdentity:
    if not _is_adobe(request.headers):
        return identify_standard(request)
    # Adobe sends no event id: key retries of one order event by its content, else by the body.
    try:
        payload = json.loads(request.body)
        event = str(payload.get("eventName") or "unknown").removeprefix("observer.")
        entity = payload["data"]["order"]["entity_id"]
        key = f"adobe:{event}:{entity}"
    except (ValueError, KeyError, TypeError, AttributeError):
        event = "unknown"
        key = "adobe-sha256:" + hashlib.sha256(request.body).hexdigest()
    return InboundIdentity(event_key=key, topic=ADOBE_TOPIC_PREFIX + event)


def parse(
    settings: MagentoSettings, channel: str, topic: str, headers: Mapping[str, str], body: bytes
) -> list[Command]:
    if topic.startswith(ADOBE_TOPIC_PREFIX) or _is_adobe(headers):
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise MalformedPayload("Adobe Commerce webhook body is not JSON", status_code=400) from exc
        if not isinstance(payload, dict):
            raise MalformedPayload("Adobe Commerce webhook body must be a JSON object")
        return mapping.from_adobe_webhook(channel, payload)
    return mapping.from_module_event(channel, parse_envelope(body), settings.source_locations)
