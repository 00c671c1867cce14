"""Honest ETAs: hand each SKU's expected supply to its waiting lines in allocation order."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Supply:
    """Units not yet received on an open PO line, expected on a date."""

    expected_on: date
    quantity: int


def assign_etas(waiting: Sequence[tuple[K, int]], supply: Sequence[Supply], fallback: date) -> dict[K, date]:
    """``waiting`` is (line key, units still backordered) in allocation order. A line's ETA is
    the expected date of the supply that covers its last unit; a line the open POs do not
    cover gets ``fallback`` (today plus the supplier's lead time)."""
    lots = sorted((s for s in supply if s.quantity > 0), key=lambda s: s.expected_on)
    left = [s.quantity for s in lots]
    etas: dict[K, date] = {}
    lot = 0
    for key, need in waiting:
        last: date | None = None
        while need > 0 and lot < len(lots):
            take = min(need, left[lot])
            need -= take
            left[lot] -= take
            last = lots[lot].expected_on
            if left[lot] == 0:
                lot += 1
        etas[key] = fallback if need > 0 or last is None else last
    return etas


def fallback_eta(today: date, lead_time_days: int) -> date:
    return today + timedelta(days=lead_time_days)
