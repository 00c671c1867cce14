"""The redaction's fast path for uvicorn's access-log records (one per request): a record that
cannot hold an address or a phone number passes untouched (its arguments not even formatted),
one that can is redacted field by field to exactly what redacting its whole message gives, and
its arguments stay the 5-tuple uvicorn's access formatter unpacks."""

from __future__ import annotations

import logging
import random
import sys

import pytest
from uvicorn.logging import AccessFormatter

from backorder.notify import redact as module
from backorder.notify.redact import ACCESS_FORMAT, ACCESS_LOGGER, clean, redact


def access_record(*args: object) -> logging.LogRecord:
    return logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, ACCESS_FORMAT, args, None)


def test_a_webhook_request_line_passes_untouched_without_running_the_patterns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    args = ("127.0.0.1:54321", "POST", "/webhooks/shopify/web", "1.1", 200)
    record = access_record(*args)
    before = record.args

    def not_called(*_: object) -> str:
        raise AssertionError("the general path ran")

    monkeypatch.setattr(module, "redact", not_called)
    monkeypatch.setattr(record, "getMessage", not_called)
    assert clean(record) is record
    assert record.args is before and record.args == args and record.msg == ACCESS_FORMAT


@pytest.mark.parametrize(
    "client, path",
    [
        ("127.0.0.1:54321", "/self-service/orders?email=ada@example.com&phone=+447700900123"),
        ("10.1.2.3:80", "/customers/07700900123/orders"),
        ("10.1.2.3:80", "/sms?to=+1 2-3 4-5 6"),  # a '+' number with no three digits in a row
        ("10.1.2.3:80", "/customers/415-555-0134?x=(415) 555-0134"),
        ("ada@example.com:0", "/webhooks/shopify/web"),  # a client host taken from X-Forwarded-For
        ("+44 7700 900123:0", "/webhooks/pos/store-123"),
        ("::1:5000", "/webhooks/woocommerce/b2b-2024"),
        ("", "/api/v1/orders/WEB-1001"),
    ],
)
def test_a_request_line_that_can_hold_personal_data_is_redacted_as_its_whole_message_would_be(
    client: str, path: str
) -> None:
    record = access_record(client, "GET", path, "1.1", 404)
    expected = redact(record.getMessage())
    clean(record)
    assert record.getMessage() == expected
    assert "ada@example.com" not in expected and "7700 900123" not in expected and "07700900123" not in expected
    assert isinstance(record.args, tuple) and len(record.args) == 5
    formatted = AccessFormatter(fmt="%(client_addr)s %(request_line)s %(status_code)s", use_colors=False).format(record)
    assert "@example.com" not in formatted and "900123" not in formatted


PIECES = (
    "ada@example.com",
    "b.c@x.co",
    "@",
    "+",
    "+44 7700 900123",
    "+1",
    "415-555-0134",
    "(415) 555-0134",
    "07700900123",
    "0",
    "123",
    "4567",
    "1.2.3.4",
    ":5000",
    "10.0.0.1:80",
    " ",
    "-",
    ".",
    "(",
    ")",
    "/",
    "?q=",
    "&e=",
    "%40",
    "'",
    "a",
    "Zz",
    "HTTP",
    '"',
    "9" * 7,
)


def test_field_by_field_redaction_equals_whole_message_redaction_on_random_request_lines() -> None:
    rng = random.Random(20261127)
    changed = 0
    for _ in range(3000):
        client = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4)))
        path = "/" + "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))
        method, version = rng.choice(["GET", "POST", "DELETE"]), rng.choice(["1.0", "1.1", "2"])
        record = access_record(client, method, path, version, rng.choice([200, 404, 503]))
        message = record.getMessage()
        expected = redact(message)
        changed += expected != message
        clean(record)
        assert record.getMessage() == expected, (client, path)
    assert changed > 1000  # most lines really held something to redact


def test_an_access_record_of_another_shape_takes_the_general_path() -> None:
    odd = access_record("127.0.0.1:1", "BREW", "/pot?to=ada@example.com", "1.1", 418)
    with_exception = access_record("127.0.0.1:1", "GET", "/x", "1.1", 500)
    try:
        raise ValueError("customer ada@example.com")
    except ValueError:
        with_exception.exc_info = sys.exc_info()
    for record in (odd, with_exception):
        clean(record)
        assert "ada@example.com" not in record.getMessage()
        assert "ada@example.com" not in (record.exc_text or "")
