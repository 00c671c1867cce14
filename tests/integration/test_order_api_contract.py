"""POST /api/v1/orders, the POS/B2B order API, on SQLite and PostgreSQL: only a placed order is a
201; an order id already recorded with other lines is a 409 (never a silent "ignored"); the channel
key is checked before the body; every body the schema accepts fits the database columns; a failure
reason never carries an SQL statement; and the OpenAPI document says all of it (Schemathesis)."""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backorder.bootstrap import Application, bootstrap
from backorder.config import parse_config
from backorder.connectors.base import settings_lookup
from backorder.connectors.registry import load_specs
from backorder.domain import commands as c
from backorder.store import tables as t
from backorder.web.app import create_app

with warnings.catch_warnings():  # Starlette prefers httpx2 for its test client; httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import SettableClock

POS_KEY = "pos-key-1"
CONFIG: dict[str, Any] = {
    "worker": {"bop_interval_minutes": 0},
    "channels": {"pos": {"platform": "pos", "api_key": POS_KEY}},
}
ORDER: dict[str, Any] = {"order_id": "T-1", "lines": [{"sku": "INK", "quantity": 2}, {"sku": "PEN", "quantity": 1}]}
INT_MAX = 2_147_483_647


@pytest.fixture
def app(database_url: str, clock: SettableClock) -> Iterator[Application]:
    cfg = parse_config(CONFIG, settings_lookup(load_specs()), environ={})
    application = bootstrap(cfg, database_url=database_url, clock=clock, sandbox_folder=False, rng=random.Random(7))
    application.bus.handle(c.UpsertSku("INK", "Ink"))
    application.bus.handle(c.UpsertSku("PEN", "Pen"))
    application.bus.handle(c.AdjustStock("INK", "main", 5))
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def client(app: Application) -> Iterator[TestClient]:
    with TestClient(create_app(app)) as test_client:
        yield test_client


def post(client: TestClient, body: Any, key: str | None = None, api_key: str = POS_KEY) -> Any:
    headers = {"Authorization": f"Bearer {api_key}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/api/v1/orders", json=body, headers=headers)


def inbox(app: Application) -> list[dict[str, Any]]:
    with app.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t.inbox).order_by(t.inbox.c.id))]


def lines(app: Application, order_id: str) -> list[tuple[int, str, int]]:
    return [(ln["line_no"], ln["sku"], ln["quantity"]) for ln in app.read.lines(order_id)]


# --- 201 only for a placed order; other lines under the same order id are a conflict ------------


def test_an_order_id_resent_with_other_lines_is_a_conflict_and_changes_nothing(
    app: Application, client: TestClient
) -> None:
    first = post(client, ORDER, key="k-1")
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "processed" and first.json()["order_id"] == "pos-T-1"
    held = lines(app, "pos-T-1")
    edited = {**ORDER, "lines": [{"sku": "INK", "quantity": 5}]}
    for answer in (post(client, edited, key="k-2"), post(client, edited), post(client, edited, key="k-2")):
        assert answer.status_code == 409, answer.text
        detail = answer.json()["detail"]
        assert "pos-T-1 is already recorded with other lines" in detail
        assert "POST /api/v1/orders/pos-T-1/cancel" in detail
    assert lines(app, "pos-T-1") == held
    # a line removed, or the same lines numbered otherwise, is another order too
    assert post(client, {**ORDER, "lines": ORDER["lines"][:1]}, key="k-3").status_code == 409
    renumbered = [{**ln, "line_no": n} for ln, n in zip(ORDER["lines"], (2, 1), strict=True)]
    assert post(client, {**ORDER, "lines": renumbered}, key="k-4").status_code == 409
    assert lines(app, "pos-T-1") == held


def test_the_same_order_again_is_a_200_and_a_retry_gets_the_original_answer(
    app: Application, client: TestClient
) -> None:
    first = post(client, ORDER)  # no Idempotency-Key: the body's hash is the key
    assert first.status_code == 201, first.text
    retry = post(client, ORDER)
    assert (retry.status_code, retry.json()) == (200, first.json())
    # the same lines under a new key (or re-serialised): recorded before, nothing changes
    numbered = {**ORDER, "lines": [{**ln, "line_no": n} for n, ln in enumerate(ORDER["lines"], 1)]}
    for body, key in ((ORDER, "k-new"), (numbered, None)):
        again = post(client, body, key=key)
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "ignored" and "already recorded" in again.json()["detail"]
    assert lines(app, "pos-T-1") == [(1, "INK", 2), (2, "PEN", 1)]
    assert [row["status"] for row in inbox(app)] == ["processed", "ignored", "ignored"]
    # each request that reached the inbox is audited once, as the channel; the retry is not
    with app.engine.connect() as conn:
        audited = [
            (r.actor, r.action, r.target, r.outcome)
            for r in conn.execute(select(t.audit_log).where(t.audit_log.c.action == "place_order"))
        ]
    assert (
        audited
        == [("channel:pos", "place_order", "pos-T-1", "ok")]
        + [("channel:pos", "place_order", "pos-T-1", "refused")] * 2
    )


# --- the channel key comes first ---------------------------------------------------------------


@pytest.mark.parametrize("body", [b'{"not": "an order"}', b"{not json", b""])
@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic cG9zOmtleQ==", "Bearer "])
def test_a_request_without_the_channel_key_is_401_whatever_its_body(
    app: Application, client: TestClient, body: bytes, auth: str | None
) -> None:
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
    answer = client.post("/api/v1/orders", content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json() == {"detail": "missing or unknown channel API key"}
    assert inbox(app) == []


def test_a_staff_api_key_is_not_a_channel_key(app: Application, client: TestClient) -> None:
    assert app.staff is not None
    writer = app.staff.add_api_key("writer", ("read", "write")).secret
    assert post(client, ORDER, api_key=writer).status_code == 401
    assert inbox(app) == []


# --- bodies within the schema fit the columns ----------------------------------------------------


def line(**fields: Any) -> dict[str, Any]:
    return {"order_id": "T-9", "lines": [{"sku": "INK", "quantity": 1, **fields}]}


def customer(**fields: Any) -> dict[str, Any]:
    return {"order_id": "T-9", "lines": [{"sku": "INK", "quantity": 1}], "customer": fields}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (line(quantity=INT_MAX + 1), ["lines", 0, "quantity"]),
        (line(line_no=INT_MAX + 1), ["lines", 0, "line_no"]),
        (line(sku="S" * 65), ["lines", 0, "sku"]),
        (line(sku="IN\x00K"), ["lines", 0, "sku"]),
        ({**line(), "priority": INT_MAX + 1}, ["priority"]),
        ({**line(), "priority": -INT_MAX - 2}, ["priority"]),
        ({**line(), "reference": "R" * 65}, ["reference"]),
        ({**line(), "reference": "R\x00"}, ["reference"]),
        ({**line(), "placed_at": "2026-03-02T09:00:00"}, ["placed_at"]),
        ({**line(), "placed_at": "0001-01-01T00:00:00+01:00"}, ["placed_at"]),
        ({**line(), "order_id": "T\x009"}, ["order_id"]),
        (customer(name="N" * 201), ["customer", "name"]),
        (customer(name="Ada\x00"), ["customer", "name"]),
        (customer(phone="1" * 41), ["customer", "phone"]),
        (customer(phone="\x00"), ["customer", "phone"]),
        (customer(email="a" * 310 + "@example.com"), ["customer", "email"]),
        (customer(email="not an address"), ["customer", "email"]),
        (customer(email="ada@example.com\x00"), ["customer", "email"]),
    ],
)
def test_a_body_beyond_the_columns_fails_validation_naming_the_field(
    app: Application, client: TestClient, body: dict[str, Any], field: list[Any]
) -> None:
    answer = post(client, body, key="k-bad")
    assert answer.status_code == 422, answer.text
    assert [e["loc"] for e in answer.json()["detail"]] == [["body", *field]]
    assert inbox(app) == []  # nothing recorded: the client fixes the body and sends it again


def test_a_body_at_the_limits_of_every_column_is_placed(app: Application, client: TestClient) -> None:
    body = {
        "order_id": "T-" + "9" * 98,
        "placed_at": "2026-03-02T08:00:00+14:00",
        "lines": [{"sku": "INK", "quantity": INT_MAX, "line_no": INT_MAX}, {"sku": "PEN", "quantity": 1}],
        "customer": {"email": "a" * 299 + "@" + "e" * 15 + ".test", "phone": "+" * 40, "name": "Ü" * 200},
        "priority": -INT_MAX - 1,
        "reference": "R" * 64,
    }
    answer = post(client, body, key="k-max")
    assert answer.status_code == 201, answer.text
    assert lines(app, answer.json()["order_id"]) == [(2, "PEN", 1), (INT_MAX, "INK", INT_MAX)]


def test_an_unexpected_store_error_is_kept_without_its_sql(
    app: Application, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(cmd: c.Command) -> Any:
        raise IntegrityError(
            "INSERT INTO orders (id, customer_email) VALUES (?, ?)",
            ("pos-T-1", "ada@example.com"),
            Exception("UNIQUE constraint failed: orders.id"),
        )

    monkeypatch.setattr(app.bus, "handle", fails)
    answer = post(client, {**ORDER, "customer": {"email": "ada@example.com"}}, key="k-1")
    assert answer.status_code == 422, answer.text
    (row,) = inbox(app)
    assert row["status"] == "failed"
    for reason in (answer.json()["detail"], row["error"]):
        assert reason == "unexpected error: IntegrityError: (builtins.Exception) UNIQUE constraint failed: orders.id"
        assert "[SQL" not in reason and "INSERT" not in reason and "ada@example.com" not in reason
    assert answer.json()["inbox_id"] == row["id"]


# --- the OpenAPI document says what the server does ----------------------------------------------


def test_the_openapi_document_declares_the_channel_key_the_idempotency_key_and_both_422s(
    client: TestClient,
) -> None:
    doc = client.get("/openapi.json").json()
    operation = doc["paths"]["/api/v1/orders"]["post"]
    assert operation["security"] == [{"ChannelKey": []}]
    scheme = doc["components"]["securitySchemes"]["ChannelKey"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and "api_key" in scheme["description"]
    (header,) = operation["parameters"]
    assert (header["name"], header["in"], header["required"]) == ("Idempotency-Key", "header", False)
    assert {"200", "201", "202", "401", "409", "413", "422", "503"} <= set(operation["responses"])
    unprocessable = operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    shapes = {ref["$ref"].split("/")[-1] for ref in doc["components"]["schemas"][unprocessable]["anyOf"]}
    assert shapes == {"OrderFailed", "RequestInvalid"}
    quantity = doc["components"]["schemas"]["ApiLine"]["properties"]["quantity"]
    assert quantity["maximum"] == INT_MAX


def test_the_order_api_matches_its_openapi_document(app: Application) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app))
    (operation,) = [
        op for op in (r.ok() for r in schema.get_all_operations()) if (op.method, op.path) == ("post", "/api/v1/orders")
    ]

    @given(operation.as_strategy())
    @settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
    def conforms(case: Any) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {POS_KEY}"},
            checks=[
                checks.not_a_server_error,
                checks.status_code_conformance,
                checks.content_type_conformance,
                checks.response_schema_conformance,
            ],
        )

    conforms()
