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


def clean(record: logging.LogRecord) -> logging.LogRecord:
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
