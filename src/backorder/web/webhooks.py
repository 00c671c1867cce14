"""Channel webhook ingress: POST /webhooks/{platform}/{channel_id} (issue 3).

In order: the channel must exist with that platform (404); the body must fit
``server.max_body_bytes`` (413: a declared Content-Length over the limit is refused unread, and
the stream is read with a running cap); the platform's signature over the raw bytes must verify
(401); then the event is committed to the inbox, keyed by the provider's event id (else a hash
of the body), and only then answered 200. A duplicate is answered 200 and changes nothing. The
rejections store nothing but a counter. Processing happens later, from the inbox.

The ingress is a plain ASGI handler (:class:`WebhookIngress`): ``web/app.py`` dispatches
``POST /webhooks/<platform>/<channel>`` to it before FastAPI's routing, so a webhook costs no
routing, dependency injection, request/response objects or middleware. The FastAPI route below
exists for the OpenAPI document and hands any request that reaches it to the same handler.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from backorder.bootstrap import Application
from backorder.connectors.base import InboundRequest
from backorder.connectors.errors import WebhookRejected

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREFIX = "/webhooks/"
_DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_JSON_HEADERS = [(b"content-type", b"application/json"), (b"x-content-type-options", b"nosniff")]


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point (``root_path``), as routing sees it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def split_path(path: str) -> tuple[str, str] | None:
    """(platform, channel) of ``/webhooks/<platform>/<channel>``, else None (not ours)."""
    if not path.startswith(PREFIX):
        return None
    platform, sep, channel = path[len(PREFIX) :].partition("/")
    if not sep or not platform or not channel or "/" in channel:
        return None
    return platform, channel


class WebhookIngress:
    """The ingress as an ASGI handler for ``POST /webhooks/<platform>/<channel>``."""

    def __init__(self, application: Application) -> None:
        services = application.channel_services
        assert services is not None
        self.services = services
        self.clock = application.clock
        self.limit = application.config.server.max_body_bytes
        self.platforms = frozenset(application.specs) | {s.kind for s in services.settings.values()}
        self._accepted: dict[tuple[str, str], Any] = {}
        self._duplicates: dict[tuple[str, str], Any] = {}
        self._rejected: dict[tuple[str, str], Any] = {}

    def matches(self, scope: Scope) -> bool:
        """Whether this is a request for the ingress (``POST /webhooks/<platform>/<channel>``)."""
        return scope["type"] == "http" and scope["method"] == "POST" and split_path(route_path(scope)) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.handle(scope, receive, send)
        except Exception:  # a bug: answer 500 like the framework would, and log it
            log.exception("webhook ingress failed on %s", scope.get("path", "?"))
            with contextlib.suppress(Exception):  # fails if the answer had started (or the sender is gone)
                await answer_json(send, 500, b'{"error":"internal server error"}')

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = split_path(route_path(scope))
        if where is None:
            await answer_json(send, 404, b'{"detail":"Not Found"}')
            return
        platform, channel_id = where
        services = self.services
        settings = services.settings.get(channel_id)
        receiver = services.receivers.get(channel_id)
        if settings is None or receiver is None or settings.kind != platform:
            label = platform if platform in self.platforms else "other"  # bounded label values
            await self._reject(send, label, "unknown_channel", 404, "no channel is configured for this webhook URL")
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            if name not in _DROPPED_HEADERS:
                headers[name] = raw_value.decode("latin-1")
        limit = self.limit
        declared = headers.get("content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
            await self._too_large(send, platform)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender went away: nothing stored, nobody to answer
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    await self._too_large(send, platform)
                    return
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        inbound = InboundRequest(platform, channel_id, _url(scope, headers), headers, body, self.clock.now())
        try:
            receiver.verify(inbound)
        except WebhookRejected as exc:
            await self._reject(send, platform, type(exc).__name__, exc.status_code, exc.reason)
            return
        identity = receiver.identify(inbound)
        try:
            row_id, created = await services.writer.record(
                (platform, channel_id, identity.event_key, identity.topic, headers, body, inbound.received_at)
            )
        except Exception:  # not committed: not acknowledged either, so the platform retries
            log.exception("inbox commit failed for a %s webhook on channel %s", platform, channel_id)
            await answer_json(
                send,
                503,
                b'{"status":"unavailable","detail":"the inbox could not be written; retry later"}',
                [(b"retry-after", b"30")],
            )
            return
        if created:
            _child(self._accepted, services.metrics.accepted, platform, channel_id).inc()
        else:
            _child(self._duplicates, services.metrics.duplicates, platform, channel_id).inc()
        if created and row_id is not None:
            payload = b'{"status":"accepted","inbox_id":%d}' % row_id
        else:
            answer = {"status": "accepted" if created else "duplicate", "inbox_id": row_id}
            payload = json.dumps(answer, separators=(",", ":")).encode()
        await answer_json(send, 200, payload)

    async def _too_large(self, send: Send, platform: str) -> None:
        await self._reject(send, platform, "too_large", 413, f"body is larger than {self.limit} bytes")

    async def _reject(self, send: Send, platform: str, reason: str, status: int, message: str) -> None:
        _child(self._rejected, self.services.metrics.rejected, platform, reason).inc()
        await answer_json(send, status, json.dumps({"error": message}, separators=(",", ":")).encode())


def _child(cache: dict[tuple[str, str], Any], counter: Any, *labels: str) -> Any:
    """The counter's child for these labels, looked up once (``labels()`` takes a lock)."""
    key = (labels[0], labels[1])
    child = cache.get(key)
    if child is None:
        child = cache[key] = counter.labels(*labels)
    return child


def _url(scope: Scope, headers: dict[str, str]) -> str:
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    query = scope.get("query_string", b"")
    url = f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{scope['path']}"
    return f"{url}?{query.decode('latin-1')}" if query else url


async def answer_json(send: Send, status: int, payload: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """A complete JSON answer on the raw ASGI interface (no framework response object)."""
    headers = [*_JSON_HEADERS, (b"content-length", b"%d" % len(payload))]
    if extra:
        headers += extra
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class _Handled(Response):
    """A response that lets the raw ingress answer (used when FastAPI routing got the request)."""

    def __init__(self, ingress: WebhookIngress) -> None:
        super().__init__()
        self.ingress = ingress

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.ingress(scope, receive, send)


def build_router(application: Application, ingress: WebhookIngress | None = None) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    handler = ingress or WebhookIngress(application)

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
        return _Handled(handler)

    return router
