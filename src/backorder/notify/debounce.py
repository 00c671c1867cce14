"""ETA-change debounce: a customer hears of a new ETA only when it moved by at least
``min_days`` from what they were last told, and at most once per ``interval`` per order.
Staff still see every change (their rule is separate)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class EtaDecision:
    send: bool
    changes: tuple[dict[str, Any], ...] = ()
    wait_until: datetime | None = None
    reason: str = ""


def _as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def moved_enough(told: date | None, current: date | None, min_days: int) -> bool:
    if told == current:
        return False
    if told is None or current is None:
        return True  # a date appeared or became unknown: worth saying
    return abs((current - told).days) >= min_days


def decide(
    changes: Sequence[Mapping[str, Any]],
    told: Mapping[int, tuple[date | None, datetime]],
    current: Mapping[int, date | None],
    now: datetime,
    *,
    min_days: int,
    interval: timedelta,
) -> EtaDecision:
    """``changes`` are the event's ETA changes; ``told`` the last ETA told per line with when;
    ``current`` the lines' ETAs now (read at send time, so a stale event sends fresh dates)."""
    significant = []
    for change in changes:
        line_no = int(change["line_no"])
        now_eta = current.get(line_no, _as_date(change.get("current")))
        last = told[line_no][0] if line_no in told else _as_date(change.get("previous"))
        if moved_enough(last, now_eta, min_days):
            significant.append(
                {
                    **change,
                    "current": now_eta.isoformat() if now_eta else None,
                    "previous": last.isoformat() if last else None,
                }
            )
    if not significant:
        return EtaDecision(False, reason=f"ETA moved by less than {min_days} day(s) since the customer was told")
    last_at = max((at for _, at in told.values()), default=None)
    if last_at is not None and now - last_at < interval:
        return EtaDecision(
            False, tuple(significant), last_at + interval, "the customer heard from us less than a day ago"
        )
    return EtaDecision(True, tuple(significant))
