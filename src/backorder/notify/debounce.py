"""ETA-change debounce: a customer hears of a new ETA only when it moved by at least
``min_days`` from what they were last told, and at most once per ``interval`` per order.
Staff still see every change (their rule is separate).

One exception: a line the customer was told is reserved for them (an "allocated" or "ready to
ship" message) that waits again (a stock count found the units short, another shipment took them)
is told at once, whatever its date and however recently we wrote: they are otherwise waiting for
a parcel that is not coming."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple


class Told(NamedTuple):
    """What the customer was last told of one order line, and when."""

    eta: date | None
    at: datetime
    reserved: bool = False  # told the units are reserved for them (no date: nothing to wait for)


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
    told: Mapping[int, Told],
    current: Mapping[int, date | None],
    now: datetime,
    *,
    min_days: int,
    interval: timedelta,
    waiting: frozenset[int] | None = None,
) -> EtaDecision:
    """``changes`` are the event's ETA changes; ``told`` what was last told per line;
    ``current`` the lines' ETAs now and ``waiting`` the lines that wait now (both read at send
    time, so a stale event sends fresh dates; without ``waiting`` a line waits when it has an ETA)."""
    significant = []
    revoked = []
    for change in changes:
        line_no = int(change["line_no"])
        now_eta = current.get(line_no, _as_date(change.get("current")))
        last_told = told.get(line_no)
        if last_told is not None and last_told.reserved:
            waits = line_no in waiting if waiting is not None else now_eta is not None
            if waits:
                revoked.append(
                    {
                        **change,
                        "current": now_eta.isoformat() if now_eta else None,
                        "previous": None,
                        "was_reserved": True,
                    }
                )
            continue
        last = last_told.eta if last_told is not None else _as_date(change.get("previous"))
        if moved_enough(last, now_eta, min_days):
            significant.append(
                {
                    **change,
                    "current": now_eta.isoformat() if now_eta else None,
                    "previous": last.isoformat() if last else None,
                }
            )
    if revoked:  # a promise taken back is told at once, with whatever else moved
        return EtaDecision(True, tuple(revoked + significant))
    if not significant:
        return EtaDecision(False, reason=f"ETA moved by less than {min_days} day(s) since the customer was told")
    last_at = max((t.at for t in told.values()), default=None)
    if last_at is not None and now - last_at < interval:
        return EtaDecision(
            False, tuple(significant), last_at + interval, "the customer heard from us less than a day ago"
        )
    return EtaDecision(True, tuple(significant))
