"""The access log of the served app holds no bearer tokens: ``/self-service/<token>`` (a signed link
that lets anyone ship, cancel or substitute the order for 60 days) and ``/hooks/unsubscribe/<token>``
(which also encodes the customer's address) are logged as ``…/[redacted]``.

uvicorn logs one record per request on ``uvicorn.access``: ``'%s - "%s %s HTTP/%s" %d'`` with
``(client_addr, method, path_with_query, http_version, status_code)`` (the same in its h11,
httptools and zttp protocols); its ``AccessFormatter`` unpacks that 5-tuple, so the filter keeps it."""

from __future__ import annotations

import io
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.logging import AccessFormatter

from backorder.bootstrap import Application, bootstrap, read_config
from backorder.web.app import ACCESS_LOGGER, REDACTED, RedactTokens, create_app, redact_tokens

ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'
SELF_SERVICE_TOKEN = "eyJvIjoiV0VCLTEwMDEifQ.aB3xYz.Q1w2E3r4T5y6U7i8O9p0-_AsDfGh"
UNSUBSCRIBE_TOKEN = "eyJhIjoiYWRhQGV4YW1wbGUuY29tIiwibyI6IldFQi0xMDAxIn0.ZmFrZS1zaWduYXR1cmU"


def access_record(*args: object) -> logging.LogRecord:
    return logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, ACCESS_FORMAT, args, None)


def formatted(record: logging.LogRecord) -> str:
    fmt = '%(client_addr)s - "%(request_line)s" %(status_code)s'
    return AccessFormatter(fmt=fmt, use_colors=False).format(record)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/self-service/{SELF_SERVICE_TOKEN}", f"/self-service/{REDACTED}"),
        (f"/self-service/{SELF_SERVICE_TOKEN}?choice=ship", f"/self-service/{REDACTED}?choice=ship"),
        (f"/hooks/unsubscribe/{UNSUBSCRIBE_TOKEN}", f"/hooks/unsubscribe/{REDACTED}"),
        (f"/self-service/{SELF_SERVICE_TOKEN}/extra", f"/self-service/{REDACTED}"),
        ("/dashboard/orders?page=2&token=abc123&key=k", f"/dashboard/orders?page=2&token={REDACTED}&key={REDACTED}"),
    ],
)
def test_a_token_in_an_access_record_is_redacted_and_the_record_keeps_its_shape(path: str, expected: str) -> None:
    for method in ("GET", "POST"):
        record = access_record("127.0.0.1:54321", method, path, "1.1", 200)

        assert RedactTokens().filter(record) is True
        assert record.msg == ACCESS_FORMAT
        assert record.args == ("127.0.0.1:54321", method, expected, "1.1", 200)
        line = formatted(record)
        assert line == f'127.0.0.1:54321 - "{method} {expected} HTTP/1.1" 200 OK'
        assert SELF_SERVICE_TOKEN not in line and UNSUBSCRIBE_TOKEN not in line and "abc123" not in line


@pytest.mark.parametrize(
    "path",
    ["/webhooks/shopify/web", "/api/v1/orders?limit=50&offset=0", "/healthz", "/hooks/twilio/status?bo=bo-12", "/"],
)
def test_a_request_without_a_token_is_left_as_it_was(path: str) -> None:
    args = ("10.0.0.7:40000", "GET", path, "1.1", 204)
    record = access_record(*args)
    before = record.args

    assert RedactTokens().filter(record) is True
    assert record.args is before and record.args == args


def test_a_record_already_flattened_to_its_message_is_redacted_too() -> None:
    # the PII redaction (notify.redact) may replace a record's arguments by the cleaned message
    record = logging.LogRecord(
        ACCESS_LOGGER,
        logging.INFO,
        __file__,
        1,
        f'[email]:0 - "GET /self-service/{SELF_SERVICE_TOKEN} HTTP/1.1" 200',
        None,
        None,
    )
    RedactTokens().filter(record)
    assert record.getMessage() == f'[email]:0 - "GET /self-service/{REDACTED} HTTP/1.1" 200'


def test_redact_tokens_leaves_other_query_parameters() -> None:
    assert redact_tokens("/dashboard/outbox?status=dead&design=x") == "/dashboard/outbox?status=dead&design=x"


# --- the real thing: uvicorn serving the app, on loopback --------------------------------------


@pytest.fixture
def application(tmp_path: Path) -> Iterator[Application]:
    app = bootstrap(
        read_config(None, environ={}),
        database_url=f"sqlite:///{tmp_path / 'backorder.db'}",
        sandbox_folder=False,
        rng=random.Random(5),
    )
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def uvicorn_loggers() -> Iterator[None]:
    """uvicorn's logging config replaces its loggers' handlers: put them back afterwards."""
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {
        n: (list(lg.handlers), list(lg.filters), lg.level, lg.propagate, lg.disabled)
        for n in names
        for lg in [logging.getLogger(n)]
    }
    try:
        yield
    finally:
        for n, (handlers, filters, level, propagate, disabled) in saved.items():
            lg = logging.getLogger(n)
            lg.handlers[:] = handlers
            lg.filters[:] = filters
            lg.setLevel(level)
            lg.propagate = propagate
            lg.disabled = disabled


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_served_app_logs_self_service_and_unsubscribe_requests_without_their_tokens(
    application: Application, uvicorn_loggers: None
) -> None:
    assert application.links is not None and application.signer is not None
    self_service = application.links.token_for("WEB-1001")
    unsubscribe = application.signer.unsubscribe_token("ada@example.com", "WEB-1001")
    port = free_loopback_port()
    # as `backorder serve` runs it (uvicorn's own logging config, access log on)
    config = uvicorn.Config(
        create_app(application), host="127.0.0.1", port=port, log_level="info", access_log=True, http="auto"
    )
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(AccessFormatter(fmt='%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    logging.getLogger(ACCESS_LOGGER).addHandler(handler)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            statuses: list[Any] = [
                client.get(f"/self-service/{self_service}").status_code,
                client.get(f"/hooks/unsubscribe/{unsubscribe}").status_code,
                client.get("/healthz").status_code,
            ]
        assert statuses[0] < 500 and statuses[1:] == [200, 200]  # no such order: a page that says so
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        logging.getLogger(ACCESS_LOGGER).removeHandler(handler)

    log = captured.getvalue()
    assert f'"GET /self-service/{REDACTED} HTTP/1.1" {statuses[0]}' in log
    assert f'"GET /hooks/unsubscribe/{REDACTED} HTTP/1.1" 200' in log
    assert '"GET /healthz HTTP/1.1"' in log  # the rest of the log is as it was
    assert self_service not in log and unsubscribe not in log
    assert self_service.split(".")[0] not in log and unsubscribe.split(".")[0] not in log


def test_serve_installs_the_filter_where_uvicorns_logging_config_keeps_it(
    application: Application, uvicorn_loggers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backorder import cli

    access = logging.getLogger(ACCESS_LOGGER)
    access.filters[:] = [f for f in access.filters if not isinstance(f, RedactTokens)]
    seen: dict[str, Any] = {}

    def run(app: Any, **kwargs: Any) -> None:
        uvicorn.Config(app, **kwargs)  # configures logging as uvicorn.run does, serves nothing
        seen.update(kwargs, filters=list(access.filters))

    monkeypatch.setattr(uvicorn, "run", run)
    cli._serve(application, "127.0.0.1", free_loopback_port(), with_worker=False)

    assert seen["access_log"] is True
    assert sum(isinstance(f, RedactTokens) for f in seen["filters"]) == 1
