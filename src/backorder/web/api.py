"""REST API v1 under /api/v1 (issues 3 and 5).

Authentication: ``Authorization: Bearer bo_<prefix>_<secret>`` (``backorder apikey add``). Keys
are stored as SHA-256 hashes and carry the scopes ``read`` or ``read write``. List endpoints
paginate with ``limit``/``offset`` and return ``total`` and ``next_offset``. Every write is a
command on the message bus (or the outbox queue) and is audited as ``apikey:<prefix>``.

``POST /api/v1/orders`` (a POS/B2B order) is the exception: it takes the channel's own
``api_key`` (``[channels.<id>] api_key``, the ``ChannelKey`` scheme), checked before the body."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, RootModel, ValidationInfo, field_validator
from starlette.concurrency import run_in_threadpool

from backorder.bootstrap import Application
from backorder.channels.api_orders import INT_MAX, NO_NUL, ApiOrder, order_lines
from backorder.domain import commands, events
from backorder.domain.errors import DomainError, UnknownOrder, UnknownSku
from backorder.staff.service import ApiPrincipal
from backorder.store.engine import driver_reason, is_unavailable
from backorder.store.staff import LineFilter

log = logging.getLogger(__name__)


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    # answered by the app before routing (web/app.py): no URL holds a NUL, PostgreSQL text neither
    400: {"model": Problem, "description": "A NUL character (%00) in the URL"},
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
    """Either ``line_nos`` or ``"all": true``: an empty body cancels nothing (422)."""

    cancel_all: bool = Field(
        False, alias="all", description="cancel every open line of the order (instead of naming them in line_nos)"
    )
    line_nos: list[Annotated[int, Field(ge=1, le=INT_MAX)]] = Field(
        default_factory=list,
        max_length=1000,
        validate_default=True,
        description="the lines to cancel; required unless all is true",
    )
    reason: str = Field("cancelled via API", max_length=200, pattern=NO_NUL)

    @field_validator("line_nos")
    @classmethod
    def _lines_or_all(cls, line_nos: list[int], info: ValidationInfo) -> list[int]:
        cancel_all = info.data.get("cancel_all")
        if cancel_all is None:  # `all` was invalid itself: reported on its own
            return line_nos
        if cancel_all and line_nos:
            raise ValueError('give either line_nos or "all": true, not both')
        if not cancel_all and not line_nos:
            raise ValueError('name the lines to cancel in line_nos, or send "all": true to cancel every open line')
        return sorted(set(line_nos))


class PriorityIn(BaseModel):
    priority: int = Field(ge=-1000, le=1000)


class RunIn(BaseModel):
    skus: list[Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]] = Field(
        default_factory=list, max_length=1000
    )


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


# --- POST /api/v1/orders (issue 3): its models, its key, its route -----------------------------


class ChannelOrderOut(BaseModel):
    order_id: str
    inbox_id: int
    status: str
    detail: str = ""


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class RequestInvalid(BaseModel):
    detail: list[FieldError] = Field(description="what does not match the schema (nothing was recorded)")


class OrderFailed(BaseModel):
    detail: str = Field(description="why the order was refused")
    inbox_id: int = Field(description="the inbox row, kept as failed (`backorder inbox reprocess ID` runs it again)")


class OrderUnprocessable(RootModel[OrderFailed | RequestInvalid]):
    """The two 422 answers of ``POST /api/v1/orders``."""


_channel_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ChannelKey",
    description="A POS/B2B channel's own `api_key` (`[channels.<id>] api_key`); not a `backorder apikey` key",
)


def _api_channel(request: Request) -> str:
    """The channel whose ``api_key`` the request presents, else 401."""
    services = request.app.state.backorder.channel_services
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    channel = (
        services.api_channel_for_key(presented)
        if services is not None and scheme.lower() == "bearer" and presented
        else None
    )
    if channel is None:
        raise HTTPException(401, "missing or unknown channel API key", headers={"WWW-Authenticate": "Bearer"})
    return str(channel)


def _channel(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_channel_bearer)]
) -> str:
    # the key was checked by ChannelKeyFirst; the dependency declares the security scheme
    found = getattr(request.state, "api_channel", None)
    return found if isinstance(found, str) else _api_channel(request)


ChannelKey = Annotated[str, Depends(_channel)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=150,
        description="The client's key for this order: a retry with the same key (and body) is answered "
        "from the first request. Without it, the body's SHA-256 is the key.",
    ),
]


class ChannelKeyFirst(APIRoute):
    """The route of ``POST /api/v1/orders``: the channel key is checked before FastAPI reads and
    validates the body, so a request without a valid key gets 401, never a 422 that lists the
    order's fields."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def key_first(request: Request) -> Response:
            request.state.api_channel = _api_channel(request)
            return await handler(request)

        return key_first


def _line_keys(lines: Any) -> list[tuple[int, str, int]]:
    return sorted((int(ln["line_no"]), str(ln["sku"]), int(ln["quantity"])) for ln in lines)


def build_router(application: Application) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["api v1"], responses=ERRORS)
    staff = application.staff
    assert staff is not None
    queries = staff.queries

    def run(
        who: ApiPrincipal,
        action: str,
        target: str,
        detail: dict[str, Any],
        cmd: commands.Command,
        unchanged: Callable[[list[events.Event]], str | None] | None = None,
    ) -> list[events.Event]:
        """Apply ``cmd`` and audit it. ``unchanged``: given what happened, why the command
        changed nothing (answered 409 and audited as refused), or None."""
        try:
            happened = application.bus.handle(cmd)
        except (UnknownOrder, UnknownSku) as exc:
            staff.audit(who.actor, action, target, {**detail, "error": str(exc)}, outcome="refused")
            raise HTTPException(404, str(exc)) from None
        except DomainError as exc:
            staff.audit(who.actor, action, target, {**detail, "error": str(exc)}, outcome="refused")
            raise HTTPException(409, str(exc)) from None
        refusal = unchanged(happened) if unchanged is not None else None
        if refusal is not None:
            staff.audit(who.actor, action, target, {**detail, "error": refusal}, outcome="refused")
            raise HTTPException(409, refusal)
        staff.audit(who.actor, action, target, detail)
        return happened

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

        def cancelled(happened: list[events.Event]) -> list[int]:
            return [ln.line_no for e in happened if isinstance(e, events.BackorderCancelled) for ln in e.lines]

        happened = run(
            who,
            "cancel_lines",
            order_id,
            {"line_nos": "all" if body.cancel_all else body.line_nos},
            # CancelOrder without line numbers cancels every open line
            commands.CancelOrder(order_id, () if body.cancel_all else tuple(body.line_nos), body.reason),
            unchanged=lambda happened: (
                None if cancelled(happened) else f"order {order_id}: nothing left to cancel (shipped or cancelled)"
            ),
        )
        lines = ", ".join(str(n) for n in sorted(cancelled(happened)))
        return {"detail": f"order {order_id}: line(s) {lines} cancelled"}

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

    async def create_channel_order(
        order: ApiOrder, request: Request, channel: ChannelKey, idempotency_key: IdempotencyKey = None
    ) -> Any:
        body = await request.body()
        if len(body) > application.config.server.max_body_bytes:
            raise HTTPException(413, "body too large")
        idem = (idempotency_key or "").strip()
        key = f"idem:{idem}" if idem else "sha256:" + hashlib.sha256(body).hexdigest()
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in ("authorization", "cookie")}
        now = application.clock.now()
        our_id = f"{channel}-{order.order_id}"
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
            # ignored: the order id was recorded before (by another request); read what it holds
            held = await run_in_threadpool(queries.order, our_id) if row and row.status == "ignored" else None
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            # The order is in the inbox (received, or processing under a lease that runs out):
            # the worker processes it, and a retry (same Idempotency-Key or body) finds it there.
            return _store_unavailable(exc, "processed")
        assert row is not None
        if not created and not _same_json(row.body, body):
            raise HTTPException(409, "this Idempotency-Key was used for a different order")
        if created:  # audited once, as the channel that sent it (a retry is answered, not audited again)
            outcome = "ok" if row.status in ("processed", "received", "processing") else "refused"
            detail = {"inbox_id": row_id, "status": row.status, **({"error": row.error} if row.error else {})}
            await run_in_threadpool(staff.audit, f"channel:{channel}", "place_order", our_id, detail, outcome)
        if row.status == "failed":
            return JSONResponse({"detail": row.error or "failed", "inbox_id": row_id}, status_code=422)
        if held is not None and _line_keys(held["lines"]) != _line_keys(
            {"line_no": n.line_no, "sku": n.sku, "quantity": n.quantity} for n in order_lines(order)
        ):
            # the same order id with other lines: an edit, which this endpoint does not apply
            raise HTTPException(
                409,
                f"order {our_id} is already recorded with other lines; orders are not changed through "
                f"this endpoint (cancel lines with POST /api/v1/orders/{our_id}/cancel)",
            )
        out = {"order_id": our_id, "inbox_id": row_id, "status": row.status, "detail": row.error or ""}
        # 201 only when this request placed the order; 200 for a retry (whatever the row's state)
        # and for the same order again (ignored); 202 when the worker claimed the new row first
        code = {"processed": 201, "ignored": 200}.get(row.status, 202) if created else 200
        return JSONResponse(out, status_code=code)

    router.add_api_route(
        "/orders",
        create_channel_order,
        methods=["POST"],
        response_model=ChannelOrderOut,
        status_code=201,
        summary="Record an order from a POS or B2B channel",
        description=(
            "Authenticated with the channel's own `api_key` (`[channels.<id>] api_key`), not with a "
            "`backorder apikey` key; the key selects the channel. Recorded in the inbox under the "
            "`Idempotency-Key` (else a hash of the body) and processed at once. An order id already "
            "recorded is never changed here: the same lines again answer 200, other lines 409."
        ),
        route_class_override=ChannelKeyFirst,
        responses={
            200: {
                "model": ChannelOrderOut,
                "description": "Already recorded: a retry (same Idempotency-Key, or the same body without "
                "one) answered with the row's current state, or the same order with the same lines again "
                "(status ignored); nothing changed",
            },
            201: {"model": ChannelOrderOut, "description": "The order was placed (status processed)"},
            202: {
                "model": ChannelOrderOut,
                "description": "Recorded in the inbox, and the worker claimed it first: it is processing it",
            },
            401: {"model": Problem, "description": "Missing or unknown channel API key (checked before the body)"},
            409: {
                "model": Problem,
                "description": "The Idempotency-Key was used for a different body, or the order id is already "
                "recorded with other lines (orders are not changed through this endpoint)",
            },
            413: {"model": Problem, "description": "Body too large"},
            422: {
                "model": OrderUnprocessable,
                "description": "Either the request does not match the schema (FastAPI's list of field errors; "
                "nothing is recorded), or the order was refused, e.g. an unknown SKU (`detail` is the reason, "
                "`inbox_id` the inbox row, kept as failed)",
            },
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
