"""The FastAPI application factory. Routes are thin: parse, build a command, call the bus.

Webhooks skip FastAPI: :class:`BackorderApp` hands ``POST /webhooks/<platform>/<channel>`` to the
raw ASGI ingress (``web/webhooks.py``) before routing and middleware, so the hot path of the
service costs only what it must (body, signature, inbox commit). Everything else is FastAPI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from backorder import __version__
from backorder.bootstrap import Application
from backorder.store.migrate import is_current
from backorder.web.webhooks import PREFIX, WebhookIngress


class BackorderApp(FastAPI):
    """FastAPI, with a tiny dispatcher in front: webhook POSTs go straight to the ingress."""

    webhook_ingress: WebhookIngress | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        ingress = self.webhook_ingress
        if ingress is not None and PREFIX in scope.get("path", "") and ingress.matches(scope):
            await ingress(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(application: Application) -> FastAPI:
    app = BackorderApp(title="backorder", version=__version__, docs_url="/api/docs", openapi_url="/openapi.json")
    app.state.backorder = application

    @app.get("/healthz", tags=["ops"])
    def healthz() -> Any:
        try:
            schema_ok = is_current(application.engine)
        except Exception as exc:  # the database is unreachable: say so, with a 503
            return JSONResponse({"status": "error", "database": f"unreachable: {type(exc).__name__}"}, status_code=503)
        body = {
            "status": "ok" if schema_ok else "degraded",
            "database": "ok" if schema_ok else "schema out of date",
            "outbox": application.queue.counts(),
            "version": __version__,
        }
        return JSONResponse(body, status_code=200 if schema_ok else 503)

    # Each area contributes a router built from the application (nothing at import time).
    from backorder.web import api, dashboard, provider_hooks, selfservice, webhooks

    if application.channel_services is not None:
        app.webhook_ingress = WebhookIngress(application)
        app.include_router(webhooks.build_router(application, app.webhook_ingress))
    for area in (provider_hooks, api, dashboard, selfservice):
        app.include_router(area.build_router(application))
    dashboard.install(app, application)  # issue 5: static files, security headers, error pages
    return app
