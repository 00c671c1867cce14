"""The customer self-service page behind signed links (issue 5).

``GET /self-service/{token}`` shows the order's backordered lines with ETAs and the choices;
``POST`` applies one choice for the order through the same commands staff use (``CancelOrder``,
``ShipAvailableNow``, ``SubstituteLine``) and audits it as ``customer:<order id>``. A tampered or
expired token gets a clear page and changes nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from backorder.bootstrap import Application
from backorder.domain import commands
from backorder.domain.errors import DomainError
from backorder.domain.substitutes import Suggestion, suggest
from backorder.web.dashboard import build_templates
from backorder.web.security import derived_token

CHOICES = ("wait", "ship_now", "substitute", "cancel")


def link_for(application: Application, order_id: str) -> str:
    """The signed, expiring link a customer message carries (the dispatcher's ``choices_url``)."""
    assert application.links is not None
    return application.links.link_for(order_id)


def suggestions_for(application: Application, order: dict[str, Any]) -> dict[int, list[Suggestion]]:
    waiting = [line for line in order["lines"] if line["status"] == "open" and line["backordered"] > 0]
    if not waiting:
        return {}
    catalog = application.read.substitute_catalog(line["sku"] for line in waiting)
    by_code = {c.code: c for c in catalog}
    out: dict[int, list[Suggestion]] = {}
    for line in waiting:
        wanted = by_code.get(line["sku"])
        if wanted is not None:
            out[line["line_no"]] = suggest(wanted, catalog, line["quantity"] - line["shipped"])
    return out


def build_router(application: Application) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    templates = build_templates(application)
    staff = application.staff
    links = application.links
    assert staff is not None and links is not None

    def problem_page(request: Request, problem: str) -> HTMLResponse:
        if problem == "expired":
            title, message, status = (
                "This link has expired",
                "For your security, choice links stop working after a while. Reply to the message you received, "
                "or contact the shop, and we will send you a new one. Nothing about your order was changed.",
                410,
            )
        else:
            title, message, status = (
                "This link is not valid",
                "The link may have been copied incompletely or altered. Open it again from the message you "
                "received, or contact the shop. Nothing about your order was changed.",
                400,
            )
        return templates.TemplateResponse(
            request,
            "selfservice_problem.html",
            {"title": title, "message": message, "user": None, "csrf": ""},
            status_code=status,
        )

    def show(
        request: Request,
        token: str,
        order_id: str,
        notice: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        order = staff.queries.order(order_id)
        if order is None:
            return problem_page(request, "invalid")
        waiting = [line for line in order["lines"] if line["status"] == "open" and line["backordered"] > 0]
        can_ship_now = not order["ship_complete"] and any(
            line["status"] == "open" and line["allocated"] > line["shipped"] for line in order["lines"]
        )
        # the customer's last choice (from the audit log): shown, and selected, when they come back
        last = next(
            (
                entry
                for entry in staff.store.audit_entries(50, target=order_id)
                if entry["action"] == "self_service_choice" and entry["outcome"] == "ok"
            ),
            None,
        )
        context = {
            "order": order,
            "waiting": waiting,
            "suggestions": suggestions_for(application, order),
            "can_ship_now": can_ship_now,
            "last_choice": {"choice": last["detail"].get("choice"), "at": last["at"]} if last else None,
            "token": token,
            "form_token": derived_token(application.secret_key, "self-service", token),
            "notice": notice,
            "error": error,
            "user": None,
            "csrf": "",
        }
        return templates.TemplateResponse(request, "selfservice.html", context, status_code=status)

    @router.get("/self-service/{token}", response_class=HTMLResponse)
    def page(request: Request, token: str) -> HTMLResponse:
        check = links.check(token)
        if check.order_id is None:
            return problem_page(request, check.problem or "invalid")
        return show(request, token, check.order_id)

    @router.post("/self-service/{token}", response_class=HTMLResponse)
    async def choose(request: Request, token: str) -> Response:
        check = links.check(token)
        if check.order_id is None:
            return problem_page(request, check.problem or "invalid")
        order_id = check.order_id
        form = await request.form()
        actor = f"customer:{order_id}"
        if str(form.get("form_token") or "") != derived_token(application.secret_key, "self-service", token):
            staff.audit(actor, "self_service_choice", order_id, {"error": "form token mismatch"}, outcome="refused")
            return show(request, token, order_id, error="The form expired. Please choose again.", status=403)
        choice = str(form.get("choice") or "")
        order = staff.queries.order(order_id)
        assert order is not None  # the link was signed for an order that exists
        waiting = [line for line in order["lines"] if line["status"] == "open" and line["backordered"] > 0]
        detail: dict[str, Any] = {"choice": choice}
        cmd: commands.Command | None = None
        if choice not in CHOICES:
            return show(request, token, order_id, error="Please pick one of the options.", status=400)
        if choice != "wait" and not waiting:
            return show(request, token, order_id, error="Nothing on this order is waiting any more.", status=409)
        if choice == "ship_now":
            cmd = commands.ShipAvailableNow(order_id)
        elif choice == "cancel":
            line_nos = tuple(line["line_no"] for line in waiting)
            detail["line_nos"] = list(line_nos)
            cmd = commands.CancelOrder(order_id, line_nos, reason="cancelled by customer")
        elif choice == "substitute":
            offered = suggestions_for(application, order)
            picks: list[commands.Command] = []
            for line in waiting:
                wanted = str(form.get(f"sub_{line['line_no']}") or "")
                if not wanted:
                    continue
                if wanted not in {s.code for s in offered.get(line["line_no"], [])}:
                    staff.audit(
                        actor,
                        "self_service_choice",
                        order_id,
                        {**detail, "error": f"{wanted} not offered"},
                        outcome="refused",
                    )
                    return show(
                        request,
                        token,
                        order_id,
                        error=f"{wanted} is not available as a substitute any more. Please choose again.",
                        status=409,
                    )
                picks.append(commands.SubstituteLine(order_id, line["line_no"], wanted))
            if not picks:
                return show(request, token, order_id, error="Pick a substitute for at least one line.", status=400)
            detail["substitutes"] = {
                f"line {c.line_no}": c.substitute_sku for c in picks if isinstance(c, commands.SubstituteLine)
            }
            cmd = picks[0] if len(picks) == 1 else commands.ImportBatch(tuple(picks))
        try:
            if cmd is not None:
                application.bus.handle(cmd)
        except DomainError as exc:
            staff.audit(actor, "self_service_choice", order_id, {**detail, "error": str(exc)}, outcome="refused")
            return show(request, token, order_id, error=f"That could not be done: {exc}", status=409)
        staff.audit(actor, "self_service_choice", order_id, detail)
        notices = {
            "wait": "Thank you: we will keep your order and ship it as soon as everything arrives.",
            "ship_now": "Thank you: we are packing what is in stock now; the rest follows when it arrives.",
            "substitute": "Thank you: the substitute replaces the waiting item on your order.",
            "cancel": "Done: the waiting items are cancelled.",
        }
        return show(request, token, order_id, notice=notices[choice])

    return router
