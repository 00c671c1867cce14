"""Replenishment policy: when projected stock falls below the reorder point, order up to the
order-up-to level, respecting the supplier's minimum order quantity and case pack."""

from __future__ import annotations

from backorder.domain.model import Sku, StockPosition, SupplierItem

MAX_LINE_UNITS = 2**31 - 1
"""The most units one purchase order line holds (a 32-bit quantity). A proposal beyond it comes
from absurd demand or stock (an order line of two billion units, a count of minus two billion):
replenishment is blocked and staff are told, instead of a PO no supplier could fill."""


def is_breach(position: StockPosition, sku: Sku) -> bool:
    """Projected stock below the reorder point. With no reorder point set, any uncovered
    backorder (projected below zero) is a breach: waiting customers always need supply."""
    return position.projected < max(sku.reorder_point, 0) or position.projected < 0


def proposal_quantity(position: StockPosition, sku: Sku, item: SupplierItem) -> int:
    """Units to add to the supplier's draft PO; 0 when there is no breach."""
    if not is_breach(position, sku):
        return 0
    target = max(sku.order_up_to, sku.reorder_point, 0)
    need = target - position.projected
    if need <= 0:
        need = -position.projected if position.projected < 0 else 1
    quantity = max(need, item.moq, 1)
    pack = max(item.case_pack, 1)
    return -(-quantity // pack) * pack
