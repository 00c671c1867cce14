"""The SKU page's week-by-week projection."""

from __future__ import annotations

from datetime import date

from backorder.store.staff import project_stock

TODAY = date(2026, 11, 27)


def test_waiting_demand_counts_once_now_and_incoming_pos_cover_it_over_the_weeks() -> None:
    rows = project_stock(
        TODAY,
        on_hand=2,
        allocated=1,
        backordered=5,
        incoming=[(date(2026, 12, 5), 3), (date(2026, 12, 20), 4)],
        weeks=4,
    )
    assert [r["backorder_demand"] for r in rows] == [5, 0, 0, 0, 0]  # not a new 5 every week
    assert [r["incoming"] for r in rows] == [0, 0, 3, 0, 4]
    assert [r["projected"] for r in rows] == [-4, -4, -1, -1, 3]  # 1 free + arrivals so far - 5 waiting
