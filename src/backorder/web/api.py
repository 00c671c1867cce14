"""REST API v1 under /api/v1 (issues 3 and 5).

Authentication: ``Authorization: Bearer bo_<prefix>_<secret>`` (``backorder apikey add``). Keys
are stored as SHA-256 hashes and carry the scopes ``read`` or ``read write``. List endpoints
paginate with ``limit``/``offset`` and return ``total`` and ``next_offset``. Every write is a
command on the message bus (or the outbox queue) and is audited as ``apikey:<prefix>``."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from backorder.bootstrap import Application
from backorder.domain import commands
from backorder.domain.errors import DomainError, UnknownOrder, UnknownSku
from backorder.staff.service import ApiPrincipal
from backorder.store.engine import driver_reason, is_unavailable
from backorder.store.staff import LineFilter

log = logging.getLogger(__name__)


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or invalid API key"},
    403: {"model": Problem, "description": "The key lacks the scope"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "Not found"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": Problem, "description": "Refused by the domain rules"}}


class Page(BaseModel):
    total: int
    limit: int
    offset: int
    next_offset: int | None


class BackorderLine(BaseModel):
    order_id: str
    line_no: int
    sku: str
    sku_name: str
    supplier: str | None
    channel: str
    priority: int
    placed_at: datetime
    age_days: int
    quantity: int
    allocated: int
    shipped: int
    backordered: int
    status: str
    eta: date | None
    unit_price: Decimal | None


class BackorderPage(Page):
    items: list[BackorderLine]


class OrderLineOut(BaseModel):
    line_no: int
    sku: str
    sku_name: str
    quantity: int
    allocated: int
    shipped: int
    backordered: int
    status: str
    eta: date | None


class OrderOut(BaseModel):
    id: str
    reference: str | None = Field(None, description="the order number the customer knows, when it is not the id")
    channel: str
    placed_at: datetime
    priority: int
    ship_complete: bool
    lines: list[OrderLineOut]


class ExplainHistory(BaseModel):
    at: str
    kind: str
    quantity: int
    location: str
    source: str
    source_ref: str | None
    receipt: dict[str, Any] | None


class ExplainAhead(BaseModel):
    order_id: str
    line_no: int
    priority: int
    placed_at: str
    allocated: int
    status: str


class ExplainLine(BaseModel):
    line_no: int
    sku: str
    quantity: int
    allocated: int
    shipped: int
    backordered: int
    status: str
    eta: str | None
    history: list[ExplainHistory]
    ranked_ahead: list[ExplainAhead]


class ExplainOut(BaseModel):
    order_id: str
    channel: str
    placed_at: str
    priority: int
    ship_complete: bool
    lines: list[ExplainLine]


class SkuSummary(BaseModel):
    code: str
    name: str
    brand: str
    product_line: str
    pigments: str
    size: str
    unit_price: Decimal | None
    preferred_supplier: str | None
    on_hand: int
    allocated: int
    backordered: int


class SkuPage(Page):
    items: list[SkuSummary]


class StockAt(BaseModel):
    location: str
    on_hand: int
    allocated: int


class SkuPo(BaseModel):
    number: str
    supplier: str
    status: str
    quantity: int
    received: int
    expected_on: date | None


class QueueEntry(BaseModel):
    order_id: str
    line_no: int
    priority: int
    placed_at: datetime
    channel: str
    backordered: int
    eta: date | None


class ProjectionWeek(BaseModel):
    week: date
    on_hand: int
    incoming: int
    backorder_demand: int
    projected: int


class SkuDetail(BaseModel):
    code: str
    name: str
    brand: str
    product_line: str
    pigments: str
    size: str
    unit_price: Decimal | None
    preferred_supplier: str | None
    levels: list[StockAt]
    open_purchase_orders: list[SkuPo]
    queue: list[QueueEntry]
    projection: list[ProjectionWeek]


class PoLineOut(BaseModel):
    sku: str
    quantity: int
    received: int
    unit_cost: Decimal
    expected_on: date | None


class PurchaseOrderOut(BaseModel):
    number: str
    supplier: str
    status: str
    overdue: bool
    created_at: datetime
    sent_at: datetime | None
    value: Decimal
    lines: list[PoLineOut]


class PurchaseOrderPage(Page):
    items: list[PurchaseOrderOut]


class AttemptOut(BaseModel):
    attempt: int
    connector: str
    started_at: datetime
    finished_at: datetime
    outcome: str
    status_code: int | None
    detail: str | None


class OutboxOut(BaseModel):
    id: int
    action: str
    target: str
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    last_error: str | None
    provider_ref: str | None
    parent_id: int | None
    attempt_log: list[AttemptOut]


class OutboxPage(Page):
    items: list[OutboxOut]


class Accepted(BaseModel):
    ok: bool = True
    detail: str


class CancelIn(BaseModel):
    line_nos: list[Annotated[int, Field(ge=1, le=100_000)]] = Field(default_factory=list, max_length=1000)
    reason: str = Field("cancelled via API", max_length=200)


class PriorityIn(BaseModel):
    priority: int = Field(ge=-1000, le=1000)


class RunIn(BaseModel):
    skus: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=1000)


class PoLineIn(BaseModel):
    quantity: int = Field(ge=0, le=10_000_000)


Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


def _page(total: int, limit: int, offset: int) -> dict[str, Any]:
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if offset + limit < total else None,
    }


_bearer = HTTPBearer(auto_error=False, description="An API key from `backorder apikey add`")


def _principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> ApiPrincipal:
    application: Application = request.app.state.backorder
    assert application.staff is not None
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing API key", headers={"WWW-Authenticate": "Bearer"})
    found = application.staff.verify_api_key(credentials.credentials)
    if found is None:
        raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return found


def _reader(who: Annotated[ApiPrincipal, Depends(_principal)]) -> ApiPrincipal:
    if "read" not in who.scopes:
        raise HTTPException(403, "this key lacks the 'read' scope")
    return who


def _writer(who: Annotated[ApiPrincipal, Depends(_principal)]) -> ApiPrincipal:
    if "write" not in who.scopes:
        raise HTTPException(403, "this key lacks the 'write' scope")
    return who


Reader = Annotated[ApiPrincipal, Depends(_reader)]
Writer = Annotated[ApiPrincipal, Depends(_writer)]


def build_router(application: Application) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["api v1"], responses=ERRORS)
    staff = application.staff
    assert staff is not None
    queries = staff.queries

    def run(who: ApiPrincipal, action: str, target: str, detail: dict[str, Any], cmd: commands.Command) -> None:
        try:
            application.bus.handle(cmd)
        except (UnknownOrder, UnknownSku) as exc:
            staff.audit(who.actor, action, target, {**detail, "error": str(exc)}, outcome="refused")
            raise HTTPException(404, str(exc)) from None
        except DomainError as exc:
            staff.audit(who.actor, action, target, {**detail, "error": str(exc)}, outcome="refused")
            raise HTTPException(409, str(exc)) from None
        staff.audit(who.actor, action, target, detail)

    # --- backorders and orders ----------------------------------------------------------------

    @router.get("/backorders", response_model=BackorderPage, summary="Order lines waiting for stock (filterable)")
    def list_backorders(
        who: Reader,
        sku: Annotated[str | None, Query(max_length=64)] = None,
        supplier: Annotated[str | None, Query(max_length=64)] = None,
        channel: Annotated[str | None, Query(max_length=64)] = None,
        status: Literal["backordered", "open", "shipped", "cancelled", "all"] = "backordered",
        min_age_days: Annotated[int | None, Query(ge=0, le=100_000)] = None,
        max_age_days: Annotated[int | None, Query(ge=0, le=100_000)] = None,
        sort: Literal["age", "-age", "eta", "-eta", "sku", "units", "order", "priority"] = "age",
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        f = LineFilter(
            sku=sku,
            supplier=supplier,
            channel=channel,
            status=status,
            min_age_days=min_age_days,
            max_age_days=max_age_days,
        )
        rows, total = queries.lines(f, application.clock.now(), sort, limit, offset)
        return {"items": rows, **_page(total, limit, offset)}

    @router.get("/orders/{order_id}", response_model=OrderOut, responses=NOT_FOUND)
    def get_order(who: Reader, order_id: Annotated[str, Path(max_length=128)]) -> Any:
        found = queries.order(order_id)
        if found is None:
            raise HTTPException(404, f"no order {order_id!r}")
        return found

    @router.get("/orders/{order_id}/explain", response_model=ExplainOut, responses=NOT_FOUND)
    def explain_order(who: Reader, order_id: Annotated[str, Path(max_length=128)]) -> Any:
        found = application.read.explain(order_id)
        if found is None:
            raise HTTPException(404, f"no order {order_id!r}")
        return found

    @router.post("/orders/{order_id}/cancel", response_model=Accepted, responses={**NOT_FOUND, **CONFLICT})
    def cancel_order(who: Writer, body: CancelIn, order_id: Annotated[str, Path(max_length=128)]) -> Any:
        if queries.order(order_id) is None:
            raise HTTPException(404, f"no order {order_id!r}")
        run(
            who,
            "cancel_lines",
            order_id,
            {"line_nos": body.line_nos},
            commands.CancelOrder(order_id, tuple(body.line_nos), body.reason),
        )
        return {"detail": f"order {order_id}: open lines cancelled"}

    @router.post("/orders/{order_id}/priority", response_model=Accepted, responses={**NOT_FOUND, **CONFLICT})
    def change_priority(who: Writer, body: PriorityIn, order_id: Annotated[str, Path(max_length=128)]) -> Any:
        run(
            who,
            "change_priority",
            order_id,
            {"priority": body.priority},
            commands.ChangePriority(order_id, body.priority),
        )
        return {"detail": f"order {order_id}: priority {body.priority}"}

    @router.post("/backorders/run", response_model=Accepted, responses={**NOT_FOUND, **CONFLICT})
    def run_allocation(who: Writer, body: RunIn) -> Any:
        skus = tuple(sorted(set(body.skus)))
        run(
            who,
            "run_backorder_processing",
            ",".join(skus)[:200] or "*",
            {"skus": list(skus)},
            commands.RunBackorderProcessing(skus),
        )
        return {"detail": f"allocation re-run for {len(skus) or 'every'} SKU(s)"}

    # --- issue 3 (channels): POST /api/v1/orders goes in this section -------------------------
    # A POS or B2B portal authenticates with its channel's own key (`[channels.<id>] api_key`),
    # which selects the channel. The order goes through the inbox like a webhook (keyed by the
    # Idempotency-Key header, else a hash of the body) and is processed at once.
    from fastapi import Request as _Request

    from backorder.channels.api_orders import ApiOrder as _ApiOrder

    class ChannelOrderOut(BaseModel):
        order_id: str
        inbox_id: int
        status: str
        detail: str = ""

    channel_services = application.channel_services

    unavailable_503: dict[int | str, dict[str, Any]] = {
        503: {
            "description": "The database cannot be used right now; retry after the Retry-After seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
        }
    }

    def _store_unavailable(exc: Exception, what: str) -> JSONResponse:
        """The answer the webhook ingress gives when its inbox cannot be written: 503, Retry-After:
        30, a JSON body; logged as one line (the traceback at debug)."""
        log.warning("order API: the order could not be %s: %s: %s", what, type(exc).__name__, driver_reason(exc))
        log.debug("order API store failure", exc_info=exc)
        return JSONResponse(
            {"status": "unavailable", "detail": f"the order could not be {what}; retry later"},
            status_code=503,
            headers={"Retry-After": "30"},
        )

    async def create_channel_order(order: _ApiOrder, request: _Request) -> Any:
        import hashlib

        from starlette.concurrency import run_in_threadpool

        auth = request.headers.get("authorization", "")
        scheme, _, presented = auth.partition(" ")
        channel = channel_services.api_channel_for_key(presented.strip()) if scheme.lower() == "bearer" else None
        if channel is None:
            raise HTTPException(401, "missing or unknown channel API key", headers={"WWW-Authenticate": "Bearer"})
        body = await request.body()
        if len(body) > application.config.server.max_body_bytes:
            raise HTTPException(413, "body too large")
        idem = request.headers.get("idempotency-key", "").strip()[:150]
        key = f"idem:{idem}" if idem else "sha256:" + hashlib.sha256(body).hexdigest()
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in ("authorization", "cookie")}
        now = application.clock.now()
        try:
            row_id, created = await run_in_threadpool(
                channel_services.inbox.record, "api", channel, key, "order", headers, body, now
            )
        except Exception as exc:  # not committed, like the webhook ingress: a 503 the client retries
            return _store_unavailable(exc, "recorded")
        assert row_id is not None
        try:
            if created:
                await run_in_threadpool(channel_services.processor.process_id, row_id)
            row = await run_in_threadpool(channel_services.inbox.get, row_id)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            # The order is in the inbox (received, or processing under a lease that runs out):
            # the worker processes it, and a retry (same Idempotency-Key or body) finds it there.
            return _store_unavailable(exc, "processed")
        assert row is not None
        if not created and not _same_json(row.body, body):
            raise HTTPException(409, "this Idempotency-Key was used for a different order")
        our_id = f"{channel}-{order.order_id}"
        if row.status == "failed":
            return JSONResponse({"detail": row.error or "failed", "inbox_id": row_id}, status_code=422)
        out = {"order_id": our_id, "inbox_id": row_id, "status": row.status, "detail": row.error or ""}
        return JSONResponse(out, status_code=201 if created else 200)

    # annotations are strings in this module; FastAPI needs the local model itself
    create_channel_order.__annotations__ = {"order": _ApiOrder, "request": _Request, "return": Any}
    router.add_api_route(
        "/orders",
        create_channel_order,
        methods=["POST"],
        response_model=ChannelOrderOut,
        status_code=201,
        summary="Record an order from a POS or B2B channel",
        responses={
            200: {"model": ChannelOrderOut, "description": "Already recorded under this Idempotency-Key"},
            409: {"model": Problem, "description": "Idempotency-Key reused with a different body"},
            413: {"model": Problem, "description": "Body too large"},
            422: {"model": Problem, "description": "The order was kept in the inbox as failed"},
            **unavailable_503,
        },
    )

    # --- end of issue 3 section ---------------------------------------------------------------

    # --- SKUs ---------------------------------------------------------------------------------

    @router.get("/skus", response_model=SkuPage)
    def list_skus(
        who: Reader, q: Annotated[str | None, Query(max_length=100)] = None, limit: Limit = 50, offset: Offset = 0
    ) -> Any:
        rows, total = queries.skus(q, limit, offset)
        return {"items": rows, **_page(total, limit, offset)}

    @router.get("/skus/{code}", response_model=SkuDetail, responses=NOT_FOUND)
    def get_sku(who: Reader, code: Annotated[str, Path(max_length=64)]) -> Any:
        found = queries.sku(code, application.clock.now())
        if found is None:
            raise HTTPException(404, f"no SKU {code!r}")
        return {**found, "open_purchase_orders": found["open_pos"]}

    # --- purchase orders ----------------------------------------------------------------------

    @router.get("/purchase-orders", response_model=PurchaseOrderPage)
    def list_purchase_orders(
        who: Reader,
        status: Literal["draft", "sent", "acknowledged", "overdue", "received", "cancelled"] | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        rows, total = queries.purchase_orders(status, application.clock.now(), limit, offset)
        return {"items": rows, **_page(total, limit, offset)}

    @router.get("/purchase-orders/{number}", response_model=PurchaseOrderOut, responses=NOT_FOUND)
    def get_purchase_order(who: Reader, number: Annotated[str, Path(max_length=64)]) -> Any:
        found = queries.purchase_order(number, application.clock.now())
        if found is None:
            raise HTTPException(404, f"no purchase order {number!r}")
        return found

    @router.put("/purchase-orders/{number}/lines/{sku}", response_model=Accepted, responses={**NOT_FOUND, **CONFLICT})
    def edit_purchase_order_line(
        who: Writer,
        body: PoLineIn,
        number: Annotated[str, Path(max_length=64)],
        sku: Annotated[str, Path(max_length=64)],
    ) -> Any:
        if queries.purchase_order(number, application.clock.now()) is None:
            raise HTTPException(404, f"no purchase order {number!r}")
        run(
            who,
            "edit_purchase_order_line",
            number,
            {"sku": sku, "to": body.quantity},
            commands.EditDraftPurchaseOrderLine(number, sku, body.quantity),
        )
        return {"detail": f"{number}: {sku} set to {body.quantity}"}

    @router.post("/purchase-orders/{number}/send", response_model=Accepted, responses={**NOT_FOUND, **CONFLICT})
    def send_purchase_order(who: Writer, number: Annotated[str, Path(max_length=64)]) -> Any:
        if queries.purchase_order(number, application.clock.now()) is None:
            raise HTTPException(404, f"no purchase order {number!r}")
        run(who, "send_purchase_order", number, {}, commands.SendPurchaseOrder(number))
        return {"detail": f"{number} sent"}

    # --- outbox -------------------------------------------------------------------------------

    @router.get("/outbox", response_model=OutboxPage)
    def list_outbox(
        who: Reader,
        status: Literal["pending", "in_flight", "sent", "skipped", "dead"] | None = None,
        action: Annotated[str | None, Query(max_length=40)] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        rows, total = queries.outbox(status, action, limit, offset)
        return {"items": rows, **_page(total, limit, offset)}

    def _requeue(who: ApiPrincipal, outbox_id: int, dead_only: bool) -> Any:
        status = queries.outbox_status([outbox_id]).get(outbox_id)
        if status is None:
            raise HTTPException(404, f"no outbox row {outbox_id}")
        allowed = ("dead",) if dead_only else ("dead", "pending")
        if status not in allowed:
            raise HTTPException(
                409,
                f"outbox row {outbox_id} is {status}: only {' or '.join(allowed)} rows can be {'replayed' if dead_only else 'retried'}",
            )
        application.queue.retry([outbox_id], application.clock.now(), dead_only=dead_only)
        staff.audit(who.actor, "outbox_replay" if dead_only else "outbox_retry", str(outbox_id), {"was": status})
        return {"detail": f"outbox row {outbox_id} due now"}

    @router.post(
        "/outbox/{outbox_id}/retry",
        response_model=Accepted,
        responses={**NOT_FOUND, **CONFLICT},
        summary="Make a pending or dead row due now",
    )
    def retry_outbox(who: Writer, outbox_id: Annotated[int, Path(ge=1, le=2**62)]) -> Any:
        return _requeue(who, outbox_id, dead_only=False)

    @router.post(
        "/outbox/{outbox_id}/replay",
        response_model=Accepted,
        responses={**NOT_FOUND, **CONFLICT},
        summary="Replay a dead letter",
    )
    def replay_outbox(who: Writer, outbox_id: Annotated[int, Path(ge=1, le=2**62)]) -> Any:
        return _requeue(who, outbox_id, dead_only=True)

    # /metrics is served next to the API (built per app, not in the OpenAPI document)
    from backorder.web import metrics

    outer = APIRouter()
    outer.include_router(router)
    outer.include_router(metrics.build_router(application))

    @outer.get("/api/v1", include_in_schema=False)
    def index() -> JSONResponse:
        return JSONResponse({"openapi": "/openapi.json", "docs": "/api/docs"})

    return outer


def _same_json(stored: bytes, received: bytes) -> bool:
    """Whether a retried order is the one recorded: the same JSON, however it is spaced or its
    keys ordered (a client that re-serialises its retry is not sending a different order)."""
    if stored == received:
        return True
    try:
        return bool(json.loads(stored) == json.loads(received))
    except ValueError:
        return False
