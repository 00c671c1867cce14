"""Read-side queries: what the dispatcher, CLI, API and dashboard show. Read-only
transactions; nothing here changes state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, or_, select

from backorder.domain.substitutes import CatalogItem, suggest
from backorder.store import tables as t
from backorder.store.engine import READ_ONLY
from backorder.store.repositories import SqlOrders, _chunks


@dataclass(frozen=True)
class Contact:
    order_id: str
    channel: str
    email: str | None
    phone: str | None
    name: str | None
    reference: str | None = None  # the order number the customer knows, when it is not the id

    @property
    def order_ref(self) -> str:
        """How messages name the order to its customer."""
        return self.reference or self.order_id


class ReadModel:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _conn(self) -> Connection:
        return self.engine.connect().execution_options(**READ_ONLY)

    def contact(self, order_id: str) -> Contact | None:
        o = t.orders.c
        with self._conn() as conn:
            r = conn.execute(
                select(o.id, o.channel, o.customer_email, o.customer_phone, o.customer_name, o.reference).where(
                    o.id == order_id
                )
            ).first()
        return Contact(r.id, r.channel, r.customer_email, r.customer_phone, r.customer_name, r.reference) if r else None

    def stored_orders(self, ids: Iterable[str]) -> set[str]:
        """Which of these order ids are stored."""
        found: set[str] = set()
        with self._conn() as conn:
            for chunk in _chunks(sorted(set(ids))):
                found.update(conn.execute(select(t.orders.c.id).where(t.orders.c.id.in_(chunk))).scalars())
        return found

    def locations(self) -> list[str]:
        with self._conn() as conn:
            return list(conn.execute(select(t.locations.c.code).order_by(t.locations.c.position)).scalars())

    def sku_names(self, codes: Iterable[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        with self._conn() as conn:
            for chunk in _chunks(sorted(set(codes))):
                names.update(
                    {
                        r[0]: r[1]
                        for r in conn.execute(select(t.skus.c.code, t.skus.c.name).where(t.skus.c.code.in_(chunk)))
                    }
                )
        return names

    def supplier(self, code: str) -> dict[str, Any] | None:
        with self._conn() as conn:
            r = conn.execute(select(t.suppliers).where(t.suppliers.c.code == code)).first()
        return dict(r._mapping) if r else None

    def sellable(self, sku: str, locations: Sequence[str] = (), buffer: int = 0) -> int:
        """Available to sell on a channel: on hand − allocated over its locations − its buffer, ≥ 0."""
        s = t.stock_levels.c
        q = select(func.coalesce(func.sum(s.on_hand - s.allocated), 0)).where(s.sku == sku)
        if locations:
            q = q.where(s.location.in_(list(locations)))
        with self._conn() as conn:
            total = int(conn.execute(q).scalar_one())
        return max(total - buffer, 0)

    def customer_facts(self, order_id: str) -> dict[str, Any] | None:
        """What a customer message may claim about the order now (None: no such order).

        ``reserved``: an open line holds allocated, unshipped stock. ``can_ship_now``: the
        self-service page offers to ship what is in stock (the order is not ship-complete and
        something is reserved). ``substitutes_offered``: the self-service page suggests a
        substitute (``domain.substitutes.suggest``) for at least one waiting line. ``held_skus``:
        the SKUs of a ship-complete order's waiting lines that stock could cover now; they wait
        only for the order's other lines (the order takes all of its lines or none).
        ``reserved_lines``: every open line's reserved, unshipped units (sku, name, quantity), by
        line number: what "everything is reserved for you" lists, not only what the event moved."""
        o, c, lv = t.orders.c, t.order_lines.c, t.stock_levels.c
        with self._conn() as conn:
            ship_complete = conn.execute(select(o.ship_complete).where(o.id == order_id)).scalar()
            if ship_complete is None:
                return None
            s = t.skus.c
            lines = conn.execute(
                select(c.sku, s.name, c.quantity, c.allocated, c.shipped, c.backordered)
                .join(t.skus, s.code == c.sku)
                .where(c.order_id == order_id, c.status == "open")
                .order_by(c.line_no)
            ).all()
            waiting = [line for line in lines if line.backordered > 0]
            catalog = {item.code: item for item in _substitute_catalog(conn, {line.sku for line in waiting})}
            held: list[str] = []
            if ship_complete and waiting:
                free = dict(
                    conn.execute(
                        select(lv.sku, func.sum(lv.on_hand - lv.allocated))
                        .where(lv.sku.in_(sorted({line.sku for line in waiting})))
                        .group_by(lv.sku)
                    ).all()
                )
                need: dict[str, int] = {}
                for line in waiting:
                    need[line.sku] = need.get(line.sku, 0) + line.backordered
                covered = [code for code, units in need.items() if int(free.get(code) or 0) >= units]
                if len(covered) < len(need):  # some line is short: the covered ones are held for it
                    held = sorted(covered)
        reserved = any(line.allocated > line.shipped for line in lines)
        candidates = list(catalog.values())
        substitutes = any(
            suggest(catalog[line.sku], candidates, line.quantity - line.shipped)
            for line in waiting
            if line.sku in catalog
        )
        return {
            "reserved": reserved,
            "can_ship_now": reserved and not ship_complete,
            "substitutes_offered": substitutes,
            "held_skus": held,
            "reserved_lines": [
                {"sku": line.sku, "name": line.name, "quantity": line.allocated - line.shipped}
                for line in lines
                if line.allocated > line.shipped
            ],
        }

    def substitute_catalog(self, skus: Iterable[str]) -> list[CatalogItem]:
        """``skus`` and what could stand in for them (see :func:`_substitute_catalog`)."""
        with self._conn() as conn:
            return _substitute_catalog(conn, set(skus))

    # --- order lines, explain, export ------------------------------------------------------

    def lines(self, order_id: str | None = None) -> list[dict[str, Any]]:
        c = t.order_lines.c
        q = select(c.order_id, c.line_no, c.sku, c.quantity, c.allocated, c.shipped, c.backordered, c.status, c.eta)
        if order_id:
            q = q.where(c.order_id == order_id)
        with self._conn() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(c.order_id, c.line_no))]

    def iter_lines(self, batch: int = 5000) -> Iterable[dict[str, Any]]:
        c = t.order_lines.c
        q = select(c.order_id, c.line_no, c.sku, c.quantity, c.allocated, c.shipped, c.backordered, c.status, c.eta)
        with self._conn() as conn:
            result = conn.execution_options(yield_per=batch).execute(q.order_by(c.order_id, c.line_no))
            for r in result:
                yield dict(r._mapping)

    def explain(self, order_id: str) -> dict[str, Any] | None:
        """Per line: what was allocated when and from which receipt, and which higher-ranked
        lines of the same SKU were served before it."""
        with self._conn() as conn:
            orders = SqlOrders(conn, lambda: None)
            order = orders.get(order_id)
            if order is None:
                return None
            ledger = orders.ledger(order_id)
            receipts = _receipts(conn, {r.source_ref for r in ledger if r.source_ref and r.source_ref.startswith("R")})
            lines_out = []
            for line in order.lines:
                history = [
                    {
                        "at": r.at.isoformat(),
                        "kind": r.kind,
                        "quantity": r.quantity,
                        "location": r.location,
                        "source": r.source,
                        "source_ref": r.source_ref,
                        "receipt": receipts.get(r.source_ref or ""),
                    }
                    for r in ledger
                    if r.line_no == line.line_no
                ]
                # Who went first matters to a line that waited (or waits): one that got all its
                # stock when it arrived was served before anyone ranked ahead of it later.
                waited = line.backordered > 0 or any(
                    h["kind"] == "allocate" and h["source"] != "arrival" for h in history
                )
                ahead = _ranked_ahead(conn, order, line.sku, line.line_no) if waited else []
                lines_out.append(
                    {
                        "line_no": line.line_no,
                        "sku": line.sku,
                        "quantity": line.quantity,
                        "allocated": line.allocated,
                        "shipped": line.shipped,
                        "backordered": line.backordered,
                        "status": line.status.value,
                        "eta": line.eta.isoformat() if line.eta else None,
                        "history": history,
                        "ranked_ahead": ahead,
                    }
                )
        return {
            "order_id": order.id,
            "channel": order.channel,
            "placed_at": order.placed_at.isoformat(),
            "priority": order.priority,
            "ship_complete": order.ship_complete,
            "lines": lines_out,
        }

    def counts(self) -> dict[str, int]:
        with self._conn() as conn:

            def n(table: Any, *where: Any) -> int:
                return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

            c = t.order_lines.c
            return {
                "orders": n(t.orders),
                "order_lines": n(t.order_lines),
                "backorder_lines": n(t.order_lines, _ever_backordered()),
                "open_backorders": n(t.order_lines, c.status == "open", c.backordered > 0),
                "open_backorder_units": int(
                    conn.execute(
                        select(func.coalesce(func.sum(c.backordered), 0)).where(c.status == "open")
                    ).scalar_one()
                ),
                "purchase_orders": n(t.purchase_orders),
                "receipts": n(t.receipts),
                "allocated_from_receipts": int(
                    conn.execute(
                        select(func.coalesce(func.sum(t.allocation_ledger.c.quantity), 0)).where(
                            t.allocation_ledger.c.kind == "allocate", t.allocation_ledger.c.source == "receipt"
                        )
                    ).scalar_one()
                ),
                "notifications": n(t.sandbox_messages),
            }

    def purchase_orders_due(self, on: date) -> list[dict[str, Any]]:
        """Sent or acknowledged POs with units outstanding expected on or before ``on``."""
        p, pl = t.purchase_orders.c, t.po_lines.c
        with self._conn() as conn:
            rows = conn.execute(
                select(p.number, pl.sku, pl.quantity, pl.received, pl.expected_on)
                .join(t.po_lines, pl.po_id == p.id)
                .where(p.status.in_(["sent", "acknowledged"]), pl.expected_on <= on, pl.quantity > pl.received)
                .order_by(p.id, pl.id)
            ).all()
        grouped: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            grouped.setdefault(r.number, []).append(
                {"sku": r.sku, "quantity": r.quantity, "received": r.received, "expected_on": r.expected_on}
            )
        return [
            {"number": number, "lines": lines}
            for number, lines in grouped.items()
            if any(line["quantity"] > line["received"] for line in lines)
        ]

    def ready_to_ship(self) -> list[tuple[str, list[tuple[int, int]]]]:
        """Orders whose open lines are all covered: (order id, [(line no, units to ship)])."""
        c = t.order_lines.c
        with self._conn() as conn:
            waiting = select(c.order_id).where(c.status == "open", c.backordered > 0)
            rows = conn.execute(
                select(c.order_id, c.line_no, c.allocated - c.shipped)
                .where(c.status == "open", c.allocated > c.shipped, c.order_id.not_in(waiting))
                .order_by(c.order_id, c.line_no)
            ).all()
        grouped: dict[str, list[tuple[int, int]]] = {}
        for order_id, line_no, units in rows:
            grouped.setdefault(order_id, []).append((line_no, int(units)))
        return list(grouped.items())

    def order_allocated_from_receipt(self) -> str | None:
        a = t.allocation_ledger.c
        with self._conn() as conn:
            return conn.execute(
                select(a.order_id).where(a.kind == "allocate", a.source == "receipt").order_by(a.id).limit(1)
            ).scalar()

    def purchase_orders(self) -> list[dict[str, Any]]:
        p, pl = t.purchase_orders.c, t.po_lines.c
        with self._conn() as conn:
            rows = conn.execute(
                select(
                    p.number,
                    p.supplier,
                    p.status,
                    p.created_at,
                    p.sent_at,
                    func.count(pl.id),
                    func.sum(pl.quantity),
                    func.sum(pl.quantity * pl.unit_cost),
                )
                .join(t.po_lines, pl.po_id == p.id)
                .group_by(p.id, p.number, p.supplier, p.status, p.created_at, p.sent_at)
                .order_by(p.id)
            ).all()
        return [
            {
                "number": r[0],
                "supplier": r[1],
                "status": r[2],
                "created_at": r[3],
                "sent_at": r[4],
                "lines": int(r[5]),
                "units": int(r[6] or 0),
                "value": Decimal(r[7] or 0).quantize(Decimal("0.01")),
            }
            for r in rows
        ]


def _ever_backordered() -> Any:
    """A line was backordered when it did not get its whole quantity on arrival."""
    a = t.allocation_ledger.c
    c = t.order_lines.c
    arrival = (
        select(func.coalesce(func.sum(a.quantity), 0))
        .where(a.order_id == c.order_id, a.line_no == c.line_no, a.kind == "allocate", a.source == "arrival")
        .scalar_subquery()
    )
    return arrival < c.quantity


def _substitute_catalog(conn: Connection, skus: set[str]) -> list[CatalogItem]:
    """The SKUs ``skus`` (with pigments) and the in-stock SKUs that share a pigment code with one
    of them: every candidate ``domain.substitutes.suggest`` could choose, without reading the
    rest of the catalog. ``available`` is on hand − allocated, summed over locations."""
    if not skus:
        return []
    s, lv = t.skus.c, t.stock_levels.c
    available = select(func.coalesce(func.sum(lv.on_hand - lv.allocated), 0)).where(lv.sku == s.code).scalar_subquery()
    columns = [s.code, s.name, s.brand, s.product_line, s.pigments, s.size, s.unit_price, available.label("available")]
    wanted = list(conn.execute(select(*columns).where(s.pigments != "", s.code.in_(sorted(skus)))))
    pigments = sorted({code.upper() for r in wanted for code in str(r.pigments).split()})
    padded = func.upper(" " + s.pigments + " ")  # codes are space-separated: match whole codes only
    candidates = (
        conn.execute(
            select(*columns).where(
                or_(*(padded.like(f"% {code} %") for code in pigments)), s.code.not_in(sorted(skus)), available > 0
            )
        ).all()
        if pigments
        else []
    )
    return [
        CatalogItem(
            code=r.code,
            brand=r.brand,
            product_line=r.product_line,
            pigments=tuple(str(r.pigments).split()),
            size=r.size,
            unit_price=Decimal(r.unit_price) if r.unit_price is not None else None,
            available=int(r.available),
            name=r.name,
        )
        for r in [*wanted, *candidates]
    ]


def _receipts(conn: Connection, refs: set[str]) -> dict[str, dict[str, Any]]:
    ids = [int(ref[1:]) for ref in refs if ref[1:].isdigit()]
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(ids)):
        for r in conn.execute(select(t.receipts).where(t.receipts.c.id.in_(chunk))):
            found[f"R{r.id}"] = {
                "id": r.id,
                "quantity": r.quantity,
                "location": r.location,
                "received_at": r.received_at.isoformat(),
                "po_number": r.po_number,
            }
    return found


def _ranked_ahead(conn: Connection, order: Any, sku: str, line_no: int, limit: int = 20) -> list[dict[str, Any]]:
    """Lines of the same SKU ranked before this one that received stock."""
    c = t.order_lines.c
    rows = conn.execute(
        select(c.order_id, c.line_no, c.priority, c.placed_at, c.allocated, c.status).where(
            c.sku == sku, c.order_id != order.id, c.allocated > 0
        )
    ).all()
    mine = (-order.priority, order.placed_at, order.id, line_no)
    ahead = [r for r in rows if (-r.priority, r.placed_at, r.order_id, r.line_no) < mine]
    ahead.sort(key=lambda r: (-r.priority, r.placed_at, r.order_id, r.line_no))
    return [
        {
            "order_id": r.order_id,
            "line_no": r.line_no,
            "priority": r.priority,
            "placed_at": r.placed_at.isoformat(),
            "allocated": r.allocated,
            "status": r.status,
        }
        for r in ahead[:limit]
    ]
