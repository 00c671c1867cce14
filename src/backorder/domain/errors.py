"""Domain errors: the business rule a command broke, said so a person can act on it.

DomainError
├── UnknownSku
├── UnknownOrder
├── UnknownSupplier
├── DuplicateOrder
├── InvalidQuantity
│   └── WouldTakeReserved
├── InvalidTransition
├── DuplicateShipment
└── NothingLeftToShip
"""

from __future__ import annotations


class DomainError(Exception):
    """A command that cannot be applied; nothing was changed."""


class UnknownSku(DomainError):
    def __init__(self, sku: str) -> None:
        super().__init__(f"unknown SKU {sku!r}: import it first (backorder import FILE --kind skus)")
        self.sku = sku


class UnknownOrder(DomainError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"unknown order {order_id!r}")
        self.order_id = order_id


class UnknownSupplier(DomainError):
    def __init__(self, supplier: str) -> None:
        super().__init__(f"unknown supplier {supplier!r}: import it first (backorder import FILE --kind suppliers)")
        self.supplier = supplier


class DuplicateOrder(DomainError):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id!r} already exists")
        self.order_id = order_id


class InvalidQuantity(DomainError):
    pass


class WouldTakeReserved(InvalidQuantity):
    """A shipment recorded by staff is larger than what the line holds plus what is free where it
    left from: the rest would be units promised to other orders."""

    def __init__(self, order_id: str, line_no: int, sku: str, location: str, quantity: int, shippable: int) -> None:
        super().__init__(
            f"order {order_id} line {line_no}: {quantity} × {sku} is more than the line holds plus what is free "
            f"at {location} ({shippable}); the other {quantity - shippable} unit(s) are reserved for other orders"
        )
        self.shippable = shippable


class InvalidTransition(DomainError):
    pass


# --- issue 3 (channels) ---------------------------------------------------------------------


class DuplicateShipment(DomainError):
    """A shipment the platform identifies by ``shipment_ref`` is already recorded on the order."""

    def __init__(self, order_id: str, shipment_ref: str) -> None:
        super().__init__(f"shipment {shipment_ref!r} of order {order_id!r} is already recorded")
        self.order_id = order_id
        self.shipment_ref = shipment_ref


class NothingLeftToShip(DomainError):
    """Every line of ``sku`` on the order is already shipped or closed (e.g. staff shipped it
    before the platform reported the same shipment): nothing was changed."""

    def __init__(self, order_id: str, sku: str) -> None:
        super().__init__(f"order {order_id!r} has nothing of {sku} left to ship (already shipped or closed)")
        self.order_id = order_id
        self.sku = sku
