"""The FastAPI application factory. Routes are thin: parse, build a command, call the bus.

Webhooks skip FastAPI: :class:`BackorderApp` hands ``POST /webhooks/<platform>/<channel>`` to the
raw ASGI ingress (``web/webhooks.py``) before routing and middleware, so the hot path of the
service costs only what it must (body, signature, inbox commit). Everything else is FastAPI.

The app's URLs carry bearer secrets in their path: ``/self-service/<token>`` (a signed link that
lets anyone ship, cancel or substitute the order for 60 days) and ``/hooks/unsubscribe/<token>``
(which also encodes the customer's address). :class:`RedactTokens`, installed on uvicorn's access
logger by :func:`create_app`, writes them as ``[redacted]`` in the access log."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from backorder import __version__
from backorder.bootstrap import Application
from backorder.store.migrate import is_current
from backorder.web.webhooks import PREFIX, WebhookIngress, answer_json

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"
_TOKEN_IN_PATH = re.compile(r"(/(?:self-service|hooks/unsubscribe)/)[^?#\s\"]+")
"""Everything after a token route's prefix, up to the query (a token never holds a '?')."""
_SECRET_IN_QUERY = re.compile(
    r"([?&;](?:[^=&;#\s\"]*(?:token|secret|signature|password|api[_-]?key)[^=&;#\s\"]*|key|sig)=)[^&;#\s\"]*",
    re.IGNORECASE,
)
"""No route of ours takes a secret in its query; should a client send one anyway, its value goes."""


def redact_tokens(text: str) -> str:
    """``text`` (a request path with its query, or a whole access-log line) without secrets."""
    if "/self-service/" in text or "/hooks/unsubscribe/" in text:
        text = _TOKEN_IN_PATH.sub(rf"\1{REDACTED}", text)
    if "=" in text:
        text = _SECRET_IN_QUERY.sub(rf"\1{REDACTED}", text)
    return text


class RedactTokens(logging.Filter):
    """A filter for uvicorn's access logger. Its records are ``'%s - "%s %s HTTP/%s" %d'`` with
    ``(client, method, path_with_query, http_version, status)``; only the path is rewritten, so
    the arguments stay the 5-tuple uvicorn's ``AccessFormatter`` unpacks and the format is unchanged.
    A record already flattened to a message (no arguments) has its message rewritten."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            if len(args) >= 3 and isinstance(args[2], str):
                path = redact_tokens(args[2])
                if path != args[2]:
                    record.args = (*args[:2], path, *args[3:])
        elif not args and isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        return True


def install_access_log_redaction(logger: logging.Logger | None = None) -> RedactTokens:
    """Put :class:`RedactTokens` on uvicorn's access logger (once). Logger filters survive
    uvicorn's own ``dictConfig`` of its loggers, which replaces handlers but keeps filters."""
    target = logger or logging.getLogger(ACCESS_LOGGER)
    for existing in target.filters:
        if isinstance(existing, RedactTokens):
            return existing
    installed = RedactTokens()
    target.addFilter(installed)
    return installed


class BackorderApp(FastAPI):
    """FastAPI, with a tiny dispatcher in front: webhook POSTs go straight to the ingress."""

    webhook_ingress: WebhookIngress | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")):
            # no URL holds a NUL; PostgreSQL text cannot hold one either (it would be a 500)
            await answer_json(send, 400, b'{"detail":"a NUL character (%00) is not allowed in a URL"}')
            return
        ingress = self.webhook_ingress
        if ingress is not None and PREFIX in scope.get("path", "") and ingress.matches(scope):
            await ingress(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(application: Application) -> FastAPI:
    app = BackorderApp(title="backorder", version=__version__, docs_url="/api/docs", openapi_url="/openapi.json")
    app.state.backorder = application
    install_access_log_redaction()  # whichever server runs the app, its access log holds no tokens

    @app.get("/healthz", tags=["ops"])
    def healthz() -> Any:
        # The worker inside `backorder serve` (set by the command as app.state.backorder_worker,
        # anything with a status() -> "ok" | "starting" | "failing since <time>: <error>" |
        # "stopped"); no "worker" key when this process runs none. A stopped worker (its thread
        # died) is a 503: this process no longer delivers; a failing one (it retries) is reported.
        monitor = getattr(app.state, "backorder_worker", None)
        worker = {"worker": monitor.status()} if monitor is not None else {}
        worker_stopped = worker.get("worker") == "stopped"
        try:
            schema_ok = is_current(application.engine)
        except Exception as exc:  # the database is unreachable: say so, with a 503
            return JSONResponse(
                {"status": "error", "database": f"unreachable: {type(exc).__name__}", **worker}, status_code=503
            )
        worker_ok = worker.get("worker", "ok") in ("ok", "starting")
        body = {
            "status": "ok" if schema_ok and worker_ok else "degraded",
            "database": "ok" if schema_ok else "schema out of date",
            **worker,
            "outbox": application.queue.counts(),
            "version": __version__,
        }
        return JSONResponse(body, status_code=200 if schema_ok and not worker_stopped else 503)

    # Each area contributes a router built from the application (nothing at import time).
    from backorder.web import api, dashboard, provider_hooks, selfservice, webhooks

    if application.channel_services is not None:
        app.webhook_ingress = WebhookIngress(application)
        app.include_router(webhooks.build_router(application, app.webhook_ingress))
    for area in (provider_hooks, api, dashboard, selfservice):
        app.include_router(area.build_router(application))
    dashboard.install(app, application)  # issue 5: static files, security headers, error pages
    return app
