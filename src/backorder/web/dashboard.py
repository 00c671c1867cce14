"""The staff dashboard (issue 5): server-rendered Jinja2 pages with htmx, static files from the
package. Every GET only reads; every change is a POST with the session's CSRF token that builds a
command for the message bus (or calls the outbox queue) and writes an audit entry."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select, update
from starlette.datastructures import MutableHeaders

from backorder.bootstrap import Application
from backorder.domain import commands
from backorder.domain.errors import DomainError
from backorder.notify.render import money as format_money
from backorder.staff.service import ROLES
from backorder.store import tables as t
from backorder.store.staff import SORTS, LineFilter
from backorder.web import security
from backorder.web.security import StaffUser

TEMPLATES = Path(__file__).parent / "templates"
PAGE = 50


def build_templates(application: Application) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env

    currency = application.config.messages.currency

    def money(value: Any) -> str:
        return format_money(value, currency)

    def when(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M")
        if isinstance(value, date):
            return value.isoformat()
        return str(value)

    env.filters["money"] = money
    env.filters["when"] = when
    env.globals["shop_name"] = "backorder"
    return templates


def _int(value: str | None, default: int | None = None, lo: int = 0, hi: int = 1_000_000) -> int | None:
    """A query parameter as a whole number within [lo, hi] (pages, filters): out of range is clamped."""
    try:
        return max(lo, min(hi, int(value))) if value not in (None, "") else default  # type: ignore[arg-type]
    except ValueError:
        return default


def _whole(value: str | None, lo: int, hi: int) -> int | str:
    """A number staff typed into a form, or why it is refused: never clamped, a typo must not
    become another number that is then acted on."""
    text = (value or "").strip()
    try:
        number = int(text)
    except ValueError:
        return f"{text!r} is not a whole number" if text else "no number given"
    if not lo <= number <= hi:
        return f"{number:,} is outside {lo:,}…{hi:,}"
    return number


MAX_PO_EDIT_UNITS = 1_000_000  # typed on a draft PO line; more is a typo (an automatic proposal has its own limit)
MAX_AGE_DAYS = 36_500  # a century: further back than any order, and within the dates Python can hold


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def line_filter(q: Any) -> LineFilter:
    status = q.get("status") or "backordered"
    return LineFilter(
        sku=(q.get("sku") or "").strip() or None,
        supplier=(q.get("supplier") or "").strip() or None,
        channel=(q.get("channel") or "").strip() or None,
        status=status if status in ("backordered", "open", "shipped", "cancelled", "all") else "backordered",
        min_age_days=_int(q.get("min_age"), hi=MAX_AGE_DAYS),
        max_age_days=_int(q.get("max_age"), hi=MAX_AGE_DAYS),
        eta_before=_date(q.get("eta_before")),
        eta_missing=q.get("eta_missing") == "1",
        order_id=(q.get("order") or "").strip() or None,
    )


_ORDER_KEYS = ("name", "number", "order_no", "orderNo", "increment_id", "order_increment_id", "order_id", "id")
_ITEM_KEYS = ("line_items", "lines", "items", "product_line_items", "productItems")


def about_event(body: bytes) -> str:
    """What a received event is about, read from its raw JSON whatever the platform: the order's
    number and its SKUs ("order #1001: WN-PB29-5, SCH-PB29-5"), so staff can tell which sale a
    failed event is; "" when the body says nothing recognisable."""
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        return ""
    for envelope in ("data", "order"):  # Standard Webhooks / cartridge envelopes, Magento's {"order": …}
        if isinstance(data, dict) and isinstance(data.get(envelope), dict):
            data = data[envelope]
    if not isinstance(data, dict):
        return ""
    number = next((data[k] for k in _ORDER_KEYS if isinstance(data.get(k), (str, int)) and str(data[k])), None)
    items = next((data[k] for k in _ITEM_KEYS if isinstance(data.get(k), list)), [])
    skus = [str(i.get("sku") or i.get("product_id") or i.get("productId")) for i in items if isinstance(i, dict)]
    skus = [s for s in skus if s and s != "None"]
    text = f"order {number}" if number is not None else ""
    if skus:
        shown = ", ".join(skus[:5]) + (f" and {len(skus) - 5} more" if len(skus) > 5 else "")
        text = f"{text}: {shown}" if text else shown
    return text


def _inbox_bodies(application: Application, ids: list[int]) -> dict[int, bytes]:
    if not ids:
        return {}
    i = t.inbox.c
    with application.engine.connect() as conn:
        return {r.id: bytes(r.body) for r in conn.execute(select(i.id, i.body).where(i.id.in_(ids)))}


def _safe_next(value: str | None, default: str) -> str:
    return value if value and value.startswith("/dashboard") and not value.startswith("//") else default


def build_router(application: Application) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    templates = build_templates(application)
    staff = application.staff
    assert staff is not None
    queries = staff.queries

    def render(
        request: Request, name: str, user: StaffUser | None, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        context.update(
            user=user,
            csrf=user.csrf_token if user else "",
            path=request.url.path,
            notice=_signed_notice(request.query_params),
            roles=ROLES,
        )
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def _notice_mac(notice: str) -> str:
        return hmac.new(application.secret_key.encode(), notice.encode(), hashlib.sha256).hexdigest()[:24]

    def _signed_notice(params: Any) -> str | None:
        """The banner text of a redirect this app made; a ``?notice=`` anyone can write into a link
        (a phishing aid: "session expired, sign in at …") is not shown."""
        notice, mac = params.get("notice"), params.get("nm") or ""
        return notice if notice and hmac.compare_digest(mac.encode(), _notice_mac(notice).encode()) else None

    def back(to: str, notice: str) -> RedirectResponse:
        sep = "&" if "?" in to else "?"
        return RedirectResponse(f"{to}{sep}{urlencode({'notice': notice, 'nm': _notice_mac(notice)})}", status_code=303)

    def act(
        user: StaffUser, action: str, target: str, detail: dict[str, Any], run: Callable[[], Any]
    ) -> tuple[bool, str]:
        """Run one staff action and audit it, whether it worked or not."""
        try:
            result = run()
        except DomainError as exc:
            staff.audit(user.actor, action, target, {**detail, "error": str(exc)}, outcome="refused")
            return False, str(exc)
        staff.audit(user.actor, action, target, detail)
        return True, "" if result is None else str(result)

    # --- login -------------------------------------------------------------------------------

    @router.get("/", response_class=RedirectResponse)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard", status_code=303)

    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        token = security.secrets.token_urlsafe(24)
        response = render(
            request,
            "login.html",
            None,
            login_csrf=token,
            next=_safe_next(request.query_params.get("next"), "/dashboard"),
        )
        security.set_cookie(response, request, application, security.LOGIN_CSRF_COOKIE, token, 3600)
        return response

    @router.post("/login", response_class=HTMLResponse)
    async def login_submit(request: Request) -> Response:
        form = await request.form()
        # no user name holds a NUL (and PostgreSQL text cannot): one is a failed sign-in like any other
        username = str(form.get("username") or "").replace("\x00", "\ufffd")
        password = str(form.get("password") or "")
        target = _safe_next(str(form.get("next") or ""), "/dashboard")
        if not security.login_csrf_matches(request, str(form.get("csrf_token") or "")):
            return render(
                request,
                "login.html",
                None,
                400,
                login_csrf="",
                next=target,
                error="The form expired: reload the page and sign in again.",
            )
        client = request.client.host if request.client else "unknown"
        try:
            done = security.login(application, username, password, client)
        except security.LoginThrottled as exc:
            response = render(
                request,
                "login.html",
                None,
                429,
                login_csrf=request.cookies.get(security.LOGIN_CSRF_COOKIE, ""),
                next=target,
                error=f"Too many failed sign-ins. Try again after {exc.until:%H:%M} UTC.",
            )
            response.headers["Retry-After"] = str(max(1, int((exc.until - application.clock.now()).total_seconds())))
            return response
        if done is None:
            return render(
                request,
                "login.html",
                None,
                401,
                login_csrf=request.cookies.get(security.LOGIN_CSRF_COOKIE, ""),
                next=target,
                error="Wrong user name or password.",
            )
        token, _ = done
        response = RedirectResponse(target, status_code=303)
        security.set_cookie(
            response,
            request,
            application,
            security.SESSION_COOKIE,
            token,
            int(security.SESSION_LIFETIME.total_seconds()),
        )
        response.delete_cookie(security.LOGIN_CSRF_COOKIE, path="/")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        user = security.require(request, application)
        await security.form_with_csrf(request, user)
        security.logout(application, user)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(security.SESSION_COOKIE, path="/")
        return response

    # --- overview -----------------------------------------------------------------------------

    @router.get("/dashboard", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        user = security.require(request, application)
        return render(request, "overview.html", user, o=queries.overview(application.clock.now()))

    # --- backorders ---------------------------------------------------------------------------

    @router.get("/dashboard/backorders", response_class=HTMLResponse)
    def backorders(request: Request) -> HTMLResponse:
        user = security.require(request, application)
        q = request.query_params
        f = line_filter(q)
        sort = q.get("sort") if q.get("sort") in SORTS else "age"
        page = _int(q.get("page"), 1, 1) or 1
        rows, total = queries.lines(f, application.clock.now(), sort, PAGE, (page - 1) * PAGE)
        params = {k: v for k, v in q.items() if k not in ("page", "notice", "nm") and v}
        context = dict(
            rows=rows,
            total=total,
            f=f,
            sort=sort,
            sorts=list(SORTS),
            page=page,
            pages=max(1, -(-total // PAGE)),
            params=params,
            query=urlencode(params),
            channels=queries.channels(),
            suppliers=queries.suppliers(),
        )
        name = (
            "_backorders_table.html"
            if request.headers.get("hx-request") and request.headers.get("hx-target") == "results"
            else "backorders.html"
        )
        return render(request, name, user, **context)

    @router.post("/dashboard/backorders/bulk")
    async def bulk(request: Request) -> Response:
        user = security.require(request, application, "operator")
        form = await security.form_with_csrf(request, user)
        action = (form.get("action") or [""])[0]
        target = _safe_next((form.get("next") or [""])[0], "/dashboard/backorders")
        picked: dict[str, list[int]] = {}
        skus: set[str] = set()
        for value in form.get("sel", []):
            parts = value.split("|")
            if len(parts) < 3:
                continue
            order_id, line_no, sku = "|".join(parts[:-2]), parts[-2], parts[-1]
            if order_id and line_no.isdigit():
                picked.setdefault(order_id, []).append(int(line_no))
                if sku:
                    skus.add(sku)
        done: list[str] = []
        failed: list[str] = []
        if action == "rerun":
            ok, msg = act(
                user,
                "run_backorder_processing",
                ",".join(sorted(skus)) or "*",
                {"skus": sorted(skus)},
                lambda: application.bus.handle(commands.RunBackorderProcessing(tuple(sorted(skus)))),
            )
            return back(
                target,
                "Allocation re-run " + ("for the selected SKUs." if skus else "for every SKU.")
                if ok
                else f"Re-run refused: {msg}",
            )
        if not picked:
            return back(target, "Select at least one line first.")
        if action == "cancel":
            for order_id, line_nos in sorted(picked.items()):
                cmd = commands.CancelOrder(order_id, tuple(sorted(line_nos)), reason="cancelled by staff")
                ok, msg = act(
                    user,
                    "cancel_lines",
                    order_id,
                    {"line_nos": sorted(line_nos)},
                    lambda cmd=cmd: application.bus.handle(cmd),
                )  # type: ignore[misc]
                (done if ok else failed).append(order_id if ok else f"{order_id}: {msg}")
            return back(
                target,
                f"Cancelled lines on {len(done)} order(s)." + (f" Refused: {'; '.join(failed)}" if failed else ""),
            )
        if action == "priority":
            priority = _whole((form.get("priority") or [""])[0], -1000, 1000)
            if isinstance(priority, str):
                return back(target, f"Priority not set: {priority}. Nothing changed.")
            for order_id in sorted(picked):
                cmd2 = commands.ChangePriority(order_id, priority)
                ok, msg = act(
                    user,
                    "change_priority",
                    order_id,
                    {"priority": priority},
                    lambda cmd=cmd2: application.bus.handle(cmd),
                )  # type: ignore[misc]
                (done if ok else failed).append(order_id if ok else f"{order_id}: {msg}")
            return back(
                target,
                f"Priority {priority} set on {len(done)} order(s)."
                + (f" Refused: {'; '.join(failed)}" if failed else ""),
            )
        return back(target, "Unknown action.")

    @router.get("/dashboard/orders/{order_id}", response_class=HTMLResponse)
    def order(request: Request, order_id: str) -> HTMLResponse:
        user = security.require(request, application)
        found = queries.order(order_id)
        if found is None:
            return render(
                request, "error.html", user, 404, title="No such order", message=f"There is no order {order_id!r}."
            )
        explain = application.read.explain(order_id)
        link = application.links.link_for(order_id) if application.links and user.can("operator") else None
        return render(
            request,
            "order.html",
            user,
            order=found,
            explain=explain,
            link=link,
            audit=staff.store.audit_entries(50, target=order_id),
        )

    # --- SKUs ---------------------------------------------------------------------------------

    @router.get("/dashboard/skus", response_class=HTMLResponse)
    def skus(request: Request) -> HTMLResponse:
        user = security.require(request, application)
        q = (request.query_params.get("q") or "").strip()
        page = _int(request.query_params.get("page"), 1, 1) or 1
        rows, total = queries.skus(q or None, PAGE, (page - 1) * PAGE)
        return render(
            request, "skus.html", user, rows=rows, total=total, q=q, page=page, pages=max(1, -(-total // PAGE))
        )

    @router.get("/dashboard/skus/{code}", response_class=HTMLResponse)
    def sku(request: Request, code: str) -> HTMLResponse:
        user = security.require(request, application)
        found = queries.sku(code, application.clock.now())
        if found is None:
            return render(request, "error.html", user, 404, title="No such SKU", message=f"There is no SKU {code!r}.")
        chart = {"projection": found["projection"], "demand": found["demand_90d"]}
        return render(
            request, "sku.html", user, sku=found, chart_json=json.dumps(chart, default=str).replace("<", "\\u003c")
        )

    # --- purchase orders ----------------------------------------------------------------------

    @router.get("/dashboard/purchase-orders", response_class=HTMLResponse)
    def purchase_orders(request: Request) -> HTMLResponse:
        user = security.require(request, application)
        status = request.query_params.get("status") or None
        if status not in (None, "draft", "sent", "acknowledged", "overdue", "received", "cancelled"):
            status = None
        page = _int(request.query_params.get("page"), 1, 1) or 1
        rows, total = queries.purchase_orders(status, application.clock.now(), PAGE, (page - 1) * PAGE)
        return render(
            request,
            "purchase_orders.html",
            user,
            rows=rows,
            total=total,
            status=status,
            page=page,
            pages=max(1, -(-total // PAGE)),
        )

    @router.get("/dashboard/purchase-orders/{number}", response_class=HTMLResponse)
    def purchase_order(request: Request, number: str) -> HTMLResponse:
        user = security.require(request, application)
        po = queries.purchase_order(number, application.clock.now())
        if po is None:
            return render(
                request,
                "error.html",
                user,
                404,
                title="No such purchase order",
                message=f"There is no purchase order {number!r}.",
            )
        names = application.read.sku_names(line["sku"] for line in po["lines"])
        return render(
            request, "purchase_order.html", user, po=po, names=names, audit=staff.store.audit_entries(50, target=number)
        )

    @router.post("/dashboard/purchase-orders/{number}/lines")
    async def edit_po(request: Request, number: str) -> Response:
        user = security.require(request, application, "operator")
        form = await security.form_with_csrf(request, user)
        here = f"/dashboard/purchase-orders/{number}"
        changed, errors = [], []
        for key, values in form.items():
            if not key.startswith("qty__"):
                continue
            sku = key.removeprefix("qty__")
            quantity = _whole(values[0], 0, MAX_PO_EDIT_UNITS)
            if isinstance(quantity, str):
                errors.append(f"{sku}: {quantity}, not changed")
                continue
            po = queries.purchase_order(number, application.clock.now())
            current = next((x["quantity"] for x in (po or {}).get("lines", []) if x["sku"] == sku), None)
            if current == quantity:
                continue
            cmd = commands.EditDraftPurchaseOrderLine(number, sku, quantity)
            ok, msg = act(
                user,
                "edit_purchase_order_line",
                number,
                {"sku": sku, "from": current, "to": quantity},
                lambda cmd=cmd: application.bus.handle(cmd),
            )  # type: ignore[misc]
            (changed if ok else errors).append(sku if ok else f"{sku}: {msg}")
        return back(
            here,
            (f"Updated {', '.join(changed)}." if changed else "Nothing changed.")
            + (f" Refused: {'; '.join(errors)}" if errors else ""),
        )

    @router.post("/dashboard/purchase-orders/{number}/send")
    async def send_po(request: Request, number: str) -> Response:
        user = security.require(request, application, "operator")
        await security.form_with_csrf(request, user)
        ok, msg = act(
            user, "send_purchase_order", number, {}, lambda: application.bus.handle(commands.SendPurchaseOrder(number))
        )
        return back(f"/dashboard/purchase-orders/{number}", "Sent to the supplier." if ok else f"Not sent: {msg}")

    # --- outbox and inbox ---------------------------------------------------------------------

    @router.get("/dashboard/outbox", response_class=HTMLResponse)
    def outbox(request: Request) -> HTMLResponse:
        user = security.require(request, application)
        status = request.query_params.get("status") or None
        if status not in (None, "pending", "in_flight", "sent", "skipped", "dead"):
            status = None
        action = request.query_params.get("action") or None
        page = _int(request.query_params.get("page"), 1, 1) or 1
        rows, total = queries.outbox(status, action, PAGE, (page - 1) * PAGE)
        return render(
            request,
            "outbox.html",
            user,
            rows=rows,
            total=total,
            status=status,
            action=action,
            page=page,
            pages=max(1, -(-total // PAGE)),
            counts=application.queue.counts(),
        )

    @router.post("/dashboard/outbox/retry")
    async def outbox_retry(request: Request) -> Response:
        user = security.require(request, application, "operator")
        form = await security.form_with_csrf(request, user)
        ids = sorted({int(v) for v in form.get("id", []) if v.isdigit()})
        target = _safe_next((form.get("next") or [""])[0], "/dashboard/outbox")
        if not ids:
            return back(target, "Select at least one delivery.")
        statuses = queries.outbox_status(ids)
        dead = [i for i in ids if statuses.get(i) == "dead"]
        pending = [i for i in ids if statuses.get(i) == "pending"]
        now = application.clock.now()
        replayed = application.queue.retry(dead, now, dead_only=True) if dead else 0
        retried = application.queue.retry(pending, now, dead_only=False) if pending else 0
        staff.audit(
            user.actor, "outbox_retry", ",".join(map(str, ids))[:200], {"replayed": dead, "retried_now": pending}
        )
        skipped = len(ids) - replayed - retried
        return back(
            target,
            f"Replayed {replayed} dead letter(s), retried {retried} pending now."
            + (f" {skipped} not retryable (already sent or in flight)." if skipped else ""),
        )

    @router.get("/dashboard/inbox", response_class=HTMLResponse)
    def inbox(request: Request) -> HTMLResponse:
        user = security.require(request, application)
        status = request.query_params.get("status") or None
        page = _int(request.query_params.get("page"), 1, 1) or 1
        rows, total = queries.inbox(status, PAGE, (page - 1) * PAGE)
        bodies = _inbox_bodies(application, [r["id"] for r in rows])
        for r in rows:
            r["about"] = about_event(bodies.get(r["id"], b""))
        return render(
            request,
            "inbox.html",
            user,
            rows=rows,
            total=total,
            status=status,
            page=page,
            pages=max(1, -(-total // PAGE)),
        )

    @router.post("/dashboard/inbox/{event_id}/reprocess")
    async def reprocess(request: Request, event_id: int) -> Response:
        user = security.require(request, application, "operator")
        await security.form_with_csrf(request, user)
        reprocess_inbox = getattr(application, "reprocess_inbox", None)  # issue 3 may provide one
        if callable(reprocess_inbox):
            reprocess_inbox(event_id)
            changed = 1
        else:
            # the processor picks up rows in `received` again: reset the failed row
            with application.engine.begin() as conn:
                changed = conn.execute(
                    update(t.inbox)
                    .where(t.inbox.c.id == event_id, t.inbox.c.status == "failed")
                    .values(status="received", error=None)
                ).rowcount
        staff.audit(user.actor, "inbox_reprocess", str(event_id), {"reset": bool(changed)})
        return back(
            "/dashboard/inbox?status=failed",
            f"Event {event_id} queued for processing again."
            if changed
            else f"Event {event_id} was not failed: nothing changed.",
        )

    # --- connectors and audit -----------------------------------------------------------------

    @router.get("/dashboard/connectors", response_class=HTMLResponse)
    def connectors(request: Request) -> HTMLResponse:
        user = security.require(request, application)
        activity = queries.connector_activity()
        routes = application.routes
        configured: list[dict[str, Any]] = []
        found: list[tuple[str, Any]] = [
            (role, getattr(routes, role)) for role in ("email", "sms", "staff", "purchasing")
        ]
        found += [("channel", c) for c in routes.channels.values()]
        for role, connector in found:
            if connector is None:
                continue
            settings = connector.settings
            configured.append(
                {
                    "role": role,
                    "name": connector.name,
                    "kind": getattr(settings, "kind", "?"),
                    "missing_credentials": list(settings.missing_credentials()),
                }
            )
        for cid, settings in routes.channel_settings.items():
            if cid not in routes.channels:
                configured.append(
                    {
                        "role": "channel",
                        "name": f"channels.{cid}",
                        "kind": getattr(settings, "kind", "?"),
                        "missing_credentials": [],
                        "api_only": True,
                    }
                )
        registration = getattr(application, "webhook_registrations", None)  # issue 3 may provide one
        for entry in configured:
            entry.update(activity.get(entry["name"]) or {})
            entry["webhooks"] = registration(entry["name"]) if callable(registration) else None
        others = sorted(set(activity) - {e["name"] for e in configured})
        return render(
            request, "connectors.html", user, configured=configured, others=[{"name": n, **activity[n]} for n in others]
        )

    @router.get("/dashboard/audit", response_class=HTMLResponse)
    def audit(request: Request) -> HTMLResponse:
        user = security.require(request, application, "admin")
        page = _int(request.query_params.get("page"), 1, 1) or 1
        rows = staff.store.audit_entries(PAGE, (page - 1) * PAGE)
        return render(request, "audit.html", user, rows=rows, page=page, users=staff.store.users())

    return router


CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"


def install(app: Any, application: Application) -> None:
    """Static files, security headers and the error pages of the staff area (called by app.py)."""
    from fastapi.staticfiles import StaticFiles

    templates = build_templates(application)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")

    def page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
        user = security.current_user(request, application)
        context = {
            "user": user,
            "csrf": user.csrf_token if user else "",
            "path": request.url.path,
            "title": title,
            "message": message,
        }
        return templates.TemplateResponse(request, "error.html", context, status_code=status)

    @app.exception_handler(security.LoginRequired)
    async def login_required(request: Request, exc: Exception) -> Response:
        if request.method == "GET":
            return RedirectResponse(f"/login?{urlencode({'next': request.url.path})}", status_code=303)
        return page(request, 401, "Signed out", "Your session has ended. Sign in again; nothing was changed.")

    @app.exception_handler(security.Forbidden)
    async def forbidden(request: Request, exc: Exception) -> Response:
        needed = getattr(exc, "needed", "operator")
        return page(request, 403, "Not allowed", f"This needs the {needed} role. Nothing was changed.")

    @app.exception_handler(security.CsrfFailed)
    async def csrf_failed(request: Request, exc: Exception) -> Response:
        return page(
            request,
            403,
            "Form expired",
            "The form's security token did not match (an old tab, or a request from another site). Nothing was changed: reload the page and try again.",
        )

    app.add_middleware(SecurityHeaders)


class SecurityHeaders:
    """Security headers on every response, as a plain ASGI middleware: it only edits the
    response start message, so bodies stream through untouched and webhooks pay ~nothing
    (Starlette's BaseHTTPMiddleware cost about 1 ms a request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _security_headers(scope["path"])

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _security_headers(path: str) -> list[tuple[str, str]]:
    extra = [("X-Content-Type-Options", "nosniff")]
    if not path.startswith(("/api/", "/webhooks/", "/openapi.json", "/metrics", "/healthz")):
        extra += [
            ("Content-Security-Policy", CSP),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer" if path.startswith("/self-service") else "same-origin"),
        ]
    if path.startswith(("/dashboard", "/self-service", "/login")):
        extra.append(("Cache-Control", "no-store"))
    return extra
