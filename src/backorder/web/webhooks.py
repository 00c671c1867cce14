"""Channel webhook ingress: POST /webhooks/{platform}/{channel_id} (issue 3).

In order: the channel must exist with that platform (404); the body must fit
``server.max_body_bytes`` (413: a declared Content-Length over the limit is refused unread, and
the stream is read with a running cap); the platform's signature over the raw bytes must verify
(401); then the event is committed to the inbox, keyed by the provider's event id (else a hash
of the body), and only then answered 200. A duplicate is answered 200 and changes nothing. The
rejections store nothing but a counter. Processing happens later, from the inbox.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from backorder.bootstrap import Application
from backorder.connectors.base import InboundRequest
from backorder.connectors.errors import WebhookRejected

log = logging.getLogger(__name__)

_DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class BodyTooLarge(Exception):
    pass


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, or :class:`BodyTooLarge` as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


def build_router(application: Application) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    services = application.channel_services
    limit = application.config.server.max_body_bytes

    def _reject(platform: str, reason: str, status: int, message: str) -> JSONResponse:
        services.metrics.rejected.labels(platform, reason).inc()
        return JSONResponse({"error": message}, status_code=status)

    @router.post(
        "/webhooks/{platform}/{channel_id}",
        summary="Receive a signed channel webhook",
        responses={
            401: {"description": "Signature missing, wrong, or its timestamp stale; nothing stored"},
            404: {"description": "No channel with this id and platform; nothing stored"},
            413: {"description": "Body over the configured limit; not read whole, nothing stored"},
            503: {"description": "The inbox could not be written; the platform should retry"},
        },
    )
    async def receive(platform: str, channel_id: str, request: Request) -> Any:
        settings = services.settings.get(channel_id)
        receiver = services.receivers.get(channel_id)
        if settings is None or receiver is None or settings.kind != platform:
            return _reject(platform[:40], "unknown_channel", 404, "no channel is configured for this webhook URL")
        try:
            body = await read_capped(request, limit)
        except BodyTooLarge:
            return _reject(platform, "too_large", 413, f"body is larger than {limit} bytes")
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}
        inbound = InboundRequest(platform, channel_id, str(request.url), headers, body, application.clock.now())
        try:
            receiver.verify(inbound)
        except WebhookRejected as exc:
            return _reject(platform, type(exc).__name__, exc.status_code, exc.reason)
        identity = receiver.identify(inbound)
        try:
            row_id, created = await services.writer.record(
                (platform, channel_id, identity.event_key, identity.topic, headers, body, inbound.received_at)
            )
        except Exception:  # not committed: not acknowledged either, so the platform retries
            log.exception("inbox commit failed for a %s webhook on channel %s", platform, channel_id)
            return JSONResponse(
                {"status": "unavailable", "detail": "the inbox could not be written; retry later"},
                status_code=503,
                headers={"Retry-After": "30"},
            )
        counter = services.metrics.accepted if created else services.metrics.duplicates
        counter.labels(platform, channel_id).inc()
        return JSONResponse({"status": "accepted" if created else "duplicate", "inbox_id": row_id})

    return router
