"""Fake Shopify Admin GraphQL and WooCommerce REST servers on loopback (threaded http.server),
recording every request they receive."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Recorded:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []

    def add(self, method: str, path: str, query: dict[str, list[str]], body: Any, headers: dict[str, str]) -> None:
        with self.lock:
            self.requests.append({"method": method, "path": path, "query": query, "body": body, "headers": headers})

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)


def shopify_answer(body: dict[str, Any]) -> dict[str, Any]:
    query, variables = body.get("query", ""), body.get("variables") or {}
    if "query ItemsBySku" in query:
        nodes = [
            {
                "id": f"gid://shopify/ProductVariant/{i}",
                "sku": s,
                "inventoryItem": {"id": f"gid://shopify/InventoryItem/{900 + i}"},
            }
            for i, s in enumerate(["INK", "PEN"], 1)
        ]
        return {"data": {"productVariants": {"nodes": nodes}}}
    if "query CurrentLevels" in query:
        return {
            "data": {
                "nodes": [
                    {"id": i, "inventoryLevel": {"quantities": [{"name": "available", "quantity": 10}]}}
                    for i in variables.get("ids", [])
                ]
            }
        }
    if "mutation SetAvailable" in query:
        return {
            "data": {
                "inventorySetQuantities": {
                    "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/1"},
                    "userErrors": [],
                }
            }
        }
    if "mutation TagOrder" in query:
        return {"data": {"tagsAdd": {"node": {"id": variables.get("id")}, "userErrors": []}}}
    if "mutation UntagOrder" in query:
        return {"data": {"tagsRemove": {"node": {"id": variables.get("id")}, "userErrors": []}}}
    if "query OrderFulfillmentOrders" in query:
        return {
            "data": {
                "order": {
                    "id": variables.get("id"),
                    "fulfillmentOrders": {
                        "nodes": [{"id": "gid://shopify/FulfillmentOrder/77", "status": "OPEN", "fulfillmentHolds": []}]
                    },
                }
            }
        }
    if "mutation HoldFulfillmentOrder" in query:
        return {
            "data": {
                "fulfillmentOrderHold": {"fulfillmentHold": {"id": "gid://shopify/FulfillmentHold/1"}, "userErrors": []}
            }
        }
    if "query RecentOrders" in query:
        return {"data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}}}
    return {"errors": [{"message": "unexpected operation"}]}


def woo_answer(method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
    products = {"INK": {"id": 95, "sku": "INK", "parent_id": 0}, "PEN": {"id": 96, "sku": "PEN", "parent_id": 0}}
    if method == "GET" and path == "/wp-json/wc/v3/products":
        sku = (query.get("sku") or [""])[0]
        return 200, [products[sku]] if sku in products else []
    if method == "POST" and path.endswith("/batch"):
        return 200, {"update": [{"id": u["id"], "stock_quantity": u["stock_quantity"]} for u in body.get("update", [])]}
    if method == "POST" and path.endswith("/notes"):
        return 201, {"id": 501, "note": body.get("note"), "customer_note": False}
    if method == "PUT" and path.startswith("/wp-json/wc/v3/orders/"):
        return 200, {"id": int(path.rsplit("/", 1)[-1]), "meta_data": body.get("meta_data", [])}
    if method == "GET" and path == "/wp-json/wc/v3/orders":
        return 200, []
    return 404, {"code": "rest_no_route"}


def _handler(kind: str, recorded: Recorded) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            query = parse_qs(split.query)
            recorded.add(self.command, split.path, query, body, {k.lower(): v for k, v in self.headers.items()})
            if kind == "shopify":
                status, answer = 200, shopify_answer(body or {})
            else:
                status, answer = woo_answer(self.command, split.path, query, body or {})
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def fake_server(kind: str) -> Iterator[tuple[str, Recorded]]:
    recorded = Recorded()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(kind, recorded))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
