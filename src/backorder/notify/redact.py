"""Keep customer personal data out of logs: email addresses and phone numbers in every log
record's message (and exception text) are replaced when the record is created, so no handler —
a file, stderr, pytest's caplog — ever sees them. :func:`install` is called by the CLI's and the
composition root's logging setup."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"\+\d[\d ()-]{6,}\d|\b\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b|\b0\d{9,10}\b")
"""International numbers with a leading + (E.164 and spaced forms), NANP 3-3-4, national 0-prefixed."""


def redact(text: str) -> str:
    return PHONE.sub("[phone]", EMAIL.sub("[email]", text))


# --- the fast path for uvicorn's access-log records -------------------------------------------
# One record per request, ``'%s - "%s %s HTTP/%s" %d' % (client, method, path, version, status)``:
# only the client address and the path (with its query) are free text. Within that shape no match
# of EMAIL or PHONE can span two fields (they are separated by ' - "', a method token, ' HTTP/' and
# '" '), and the method, version and status cannot match at all, so redacting the two free fields
# one by one gives exactly what redacting the whole message gives. A field is only run through the
# patterns when it holds what every match needs: an '@' (EMAIL), a '+' or three digits in a row
# (each PHONE alternative). A plain IPv4 ``host:port`` (octets of at most 3 digits, the port after a
# ':') cannot match either. The arguments stay a 5-tuple, as uvicorn's access formatter needs them.
ACCESS_LOGGER = "uvicorn.access"
ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'
_SUSPECT = re.compile(r"[@+]|\d{3}")
_IPV4_CLIENT = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}:\d{1,5}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
_VERSIONS = frozenset({"1.0", "1.1", "2", "2.0", "3"})


def _clean_access(record: logging.LogRecord) -> bool:
    """Redact an access-log record field by field; False when the record is not of that shape
    (then the general path runs)."""
    args = record.args
    if record.msg != ACCESS_FORMAT or type(args) is not tuple or len(args) != 5 or record.exc_info:
        return False
    client, method, path, version, status = args
    if (
        type(client) is not str
        or type(path) is not str
        or method not in _METHODS
        or version not in _VERSIONS
        or type(status) is not int
        or not 100 <= status <= 999
    ):
        return False
    new_client = (
        client if (not client or _IPV4_CLIENT.fullmatch(client) or not _SUSPECT.search(client)) else redact(client)
    )
    new_path = redact(path) if _SUSPECT.search(path) else path
    if new_client != client or new_path != path:
        record.args = (new_client, method, new_path, version, status)
    return True


def clean(record: logging.LogRecord) -> logging.LogRecord:
    if record.name == ACCESS_LOGGER and _clean_access(record):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: leave it to the handler to report
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg = cleaned
        record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    return record


class RedactPii(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        clean(record)
        return True


_installed: list[Callable[..., logging.LogRecord]] = []


def install() -> None:
    """Redact every record at creation (idempotent; safe to call from several entry points)."""
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return clean(previous(*args, **kwargs))

    _installed.append(previous)
    logging.setLogRecordFactory(factory)


def uninstall() -> None:
    if _installed:
        logging.setLogRecordFactory(_installed.pop())
