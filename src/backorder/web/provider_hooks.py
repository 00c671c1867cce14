"""Messaging providers calling back: delivery status, opt-outs, bounces (issue 4).

    POST /hooks/twilio/status      Twilio status callback (X-Twilio-Signature)  → delivery status
    POST /hooks/twilio/inbound     Twilio incoming message (X-Twilio-Signature) → STOP / START
    POST /hooks/sendgrid/events    SendGrid Event Webhook (ECDSA)               → status, bounce, spam report
    POST /hooks/mailgun/events     Mailgun webhook (HMAC in the body)           → status, bounce, complaint
    GET  /hooks/unsubscribe/{t}    a page with one button (link scanners must not unsubscribe)
    POST /hooks/unsubscribe/{t}    RFC 8058 one-click unsubscribe (and the page's button)

A bad signature is 401 and changes nothing. Addresses never reach the logs (see notify.redact).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from backorder.bootstrap import Application
from backorder.connectors import signatures
from backorder.connectors.errors import WebhookRejected
from backorder.connectors.mailgun.mapping import event_update as mailgun_update
from backorder.connectors.sendgrid.mapping import event_updates as sendgrid_updates
from backorder.connectors.twilio.mapping import is_opt_in, is_opt_out, status_update

log = logging.getLogger(__name__)
# Statuses (and SendGrid's ``dropped``: it drops mail to addresses on its own bounce, spam-report
# or invalid lists) that suppress the address; a bounce or a drop also falls back to SMS.
_SUPPRESS_REASON = {"bounced": "bounce", "complained": "complaint", "dropped": "dropped"}
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def _rejected(exc: WebhookRejected) -> JSONResponse:
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


def build_router(application: Application) -> APIRouter:
    router = APIRouter(prefix="/hooks", tags=["provider hooks"])
    app = application

    def public_url(request: Request) -> str:
        base = app.config.server.public_url.rstrip("/")
        query = request.url.query
        return f"{base}{request.url.path}" + (f"?{query}" if query else "")

    async def twilio_form(request: Request) -> dict[str, str]:
        settings = app.routes.sms.settings if app.routes.sms is not None else None
        token = _secret(getattr(settings, "auth_token", None))
        if not token:
            raise WebhookRejected(404, "no Twilio account is configured for SMS")
        body = await request.body()
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        signatures.verify_twilio(
            public_url(request), params, request.headers.get(signatures.TWILIO_SIGNATURE_HEADER), token, body=body
        )
        return params

    @router.post("/twilio/status")
    async def twilio_status(request: Request) -> Response:
        try:
            params = await twilio_form(request)
        except WebhookRejected as exc:
            return _rejected(exc)
        update = status_update(params)
        if update is not None and app.messaging is not None:
            ref, raw, status = update
            message_id = request.query_params.get("bo")
            record = app.messaging.find_message(message_id=message_id, provider_ref=None if message_id else ref)
            if record is not None:
                detail = f"twilio {raw}" + (f" (error {params['ErrorCode']})" if params.get("ErrorCode") else "")
                app.messaging.update_status(record.message_id, status, detail, app.clock.now())
        return Response(status_code=204)

    @router.post("/twilio/inbound")
    async def twilio_inbound(request: Request) -> Response:
        try:
            params = await twilio_form(request)
        except WebhookRejected as exc:
            return _rejected(exc)
        sender, body = params.get("From", ""), params.get("Body", "")
        if app.messaging is not None and sender:
            now = app.clock.now()
            if is_opt_out(body):
                if app.messaging.suppress(sender, "sms", "stop", "twilio", now):
                    app.queue.enqueue("send_sms_confirmation", "sms", {"phone": sender}, now)
                log.info("an SMS opt-out was recorded")
            elif is_opt_in(body):
                app.messaging.lift_suppression(sender)
                log.info("an SMS opt-in was recorded")
        return Response(TWIML_EMPTY, media_type="application/xml")

    def apply_update(
        message_id: str | None, ref: str | None, status: str, kind: str, address: str | None, source: str
    ) -> None:
        state = app.messaging
        if state is None:
            return
        now = app.clock.now()
        record = state.find_message(message_id=message_id) if message_id else state.find_message(provider_ref=ref)
        if record is not None:
            state.update_status(record.message_id, status, f"{source} {kind}", now)
        reason = _SUPPRESS_REASON.get(status) or _SUPPRESS_REASON.get(kind)
        if reason and address:
            state.suppress(address, "email", reason, source, now)
        if reason in ("bounce", "dropped") and record is not None:
            app.dispatcher.fallback_to_sms(record.message_id)

    @router.post("/sendgrid/events")
    async def sendgrid_events(request: Request) -> Response:
        settings = app.routes.email.settings if app.routes.email is not None else None
        key = getattr(settings, "event_verification_key", None)
        if not key:
            return JSONResponse({"error": "no SendGrid event verification key is configured"}, status_code=404)
        body = await request.body()
        try:
            signatures.verify_sendgrid_event(
                key,
                body,
                request.headers.get(signatures.SENDGRID_SIGNATURE_HEADER),
                request.headers.get(signatures.SENDGRID_TIMESTAMP_HEADER),
                now=int(app.clock.now().timestamp()),
                tolerance=72 * 3600,
            )
        except WebhookRejected as exc:
            return _rejected(exc)
        try:
            events = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "not JSON"}, status_code=400)
        for update in sendgrid_updates(events if isinstance(events, list) else []):
            apply_update(*update, source="sendgrid")
        return Response(status_code=204)

    @router.post("/mailgun/events")
    async def mailgun_events(request: Request) -> Response:
        settings = app.routes.email.settings if app.routes.email is not None else None
        key = _secret(getattr(settings, "webhook_signing_key", None))
        if not key:
            return JSONResponse({"error": "no Mailgun webhook signing key is configured"}, status_code=404)
        body = await request.body()
        try:
            payload = json.loads(body)
            signature = payload.get("signature") or {}
            signatures.verify_mailgun(
                str(signature.get("timestamp", "")),
                str(signature.get("token", "")),
                signature.get("signature"),
                key,
                now=int(app.clock.now().timestamp()),
            )
        except WebhookRejected as exc:
            return _rejected(exc)
        except (ValueError, AttributeError):
            return JSONResponse({"error": "not a Mailgun webhook body"}, status_code=400)
        update = mailgun_update(payload)
        if update is not None:
            apply_update(*update, source="mailgun")
        return Response(status_code=204)

    def unsubscribe_target(token: str) -> dict[str, Any] | None:
        return app.signer.read_unsubscribe(token) if app.signer is not None else None

    @router.get("/unsubscribe/{token}", response_class=HTMLResponse)
    def unsubscribe_page(token: str) -> Response:
        if unsubscribe_target(token) is None:
            return HTMLResponse("<p>This link is not valid.</p>", status_code=404)
        return HTMLResponse(
            '<!doctype html><html lang="en"><body style="font-family: sans-serif">'
            "<p>Stop emails about your backorders?</p>"
            f'<form method="post" action="/hooks/unsubscribe/{token}">'
            '<button type="submit">Unsubscribe</button></form></body></html>'
        )

    @router.post("/unsubscribe/{token}", response_class=HTMLResponse)
    def unsubscribe(token: str) -> Response:
        target = unsubscribe_target(token)
        if target is None or app.messaging is None:
            return HTMLResponse("<p>This link is not valid.</p>", status_code=404)
        app.messaging.suppress(str(target["a"]), "email", "unsubscribe", "link", app.clock.now())
        return HTMLResponse("<p>You are unsubscribed: we will not email you about backorders again.</p>")

    return router
