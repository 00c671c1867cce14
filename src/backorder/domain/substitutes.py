"""Substitute suggestions for a backordered SKU (issue 5: customer self-service).

A substitute is an in-stock SKU with the same Colour Index pigment code(s) (an art-materials
customer cares that ``PB29`` ultramarine is the same pigment whatever the brand), the same size
class (a 5 ml tube is not a 37 ml tube) and the same medium (a watercolour is never offered for an
oil). Candidates are ranked by brand/line closeness, then price closeness, then code.

Pure functions: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

_MEDIA: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gouache", ("gouache",)),
    ("watercolour", ("watercolour", "watercolor", "aquarell", "aquarelle")),
    ("oil", ("oil",)),
    ("acrylic", ("acrylic",)),
    ("pastel", ("pastel",)),
    ("pencil", ("pencil",)),
    ("ink", ("ink",)),
)
"""Checked in order: ``Designers Gouache`` is gouache even though gouache is water-based."""

_VOLUME = re.compile(r"(\d+(?:\.\d+)?)\s*ml\b", re.IGNORECASE)


@dataclass(frozen=True)
class CatalogItem:
    code: str
    brand: str
    product_line: str
    pigments: tuple[str, ...]
    size: str
    unit_price: Decimal | None
    available: int
    name: str = ""


@dataclass(frozen=True)
class Suggestion:
    code: str
    name: str
    brand: str
    product_line: str
    unit_price: Decimal | None
    available: int
    reason: str


def medium(product_line: str) -> str | None:
    """The medium a product line names (``Horadam Aquarell`` → ``watercolour``), else None."""
    text = product_line.lower()
    for name, words in _MEDIA:
        if any(word in text for word in words):
            return name
    return None


def size_class(size: str) -> str | None:
    """A coarse size class: tube volumes fall into bands; pans, sticks and pencils are their own
    class; anything else (paper, brushes) has none and gets no substitutes."""
    text = size.strip().lower()
    if not text:
        return None
    found = _VOLUME.search(text)
    if found:
        ml = float(found.group(1))
        if ml <= 10:
            return "tube-xs"  # 5, 7.5, 10 ml
        if ml <= 24:
            return "tube-s"  # 14, 15, 21 ml
        if ml <= 60:
            return "tube-m"  # 37, 40, 59 ml
        if ml <= 150:
            return "tube-l"  # 75, 120, 150 ml
        return "tube-xl"
    for word in ("half pan", "whole pan", "full pan", "stick", "pencil"):
        if word in text:
            return word.replace("full", "whole")
    return None


def pigment_set(pigments: Iterable[str]) -> frozenset[str]:
    return frozenset(p.strip().upper() for p in pigments if p.strip())


def _price_distance(a: Decimal | None, b: Decimal | None) -> Decimal:
    if a is None or b is None or a <= 0:
        return Decimal("1000000")
    return abs(b - a) / a


def suggest(wanted: CatalogItem, candidates: Sequence[CatalogItem], quantity: int, limit: int = 3) -> list[Suggestion]:
    """In-stock substitutes for ``quantity`` units of ``wanted``, best first."""
    pigments = pigment_set(wanted.pigments)
    klass = size_class(wanted.size)
    kind = medium(wanted.product_line)
    if not pigments or klass is None or kind is None or quantity <= 0:
        return []
    ranked: list[tuple[tuple[int, Decimal, str], Suggestion]] = []
    for c in candidates:
        if c.code == wanted.code or c.available < quantity:
            continue
        if pigment_set(c.pigments) != pigments or size_class(c.size) != klass or medium(c.product_line) != kind:
            continue
        same_brand = c.brand.strip().lower() == wanted.brand.strip().lower()
        same_line = same_brand and c.product_line.strip().lower() == wanted.product_line.strip().lower()
        closeness = 0 if same_line else 1 if same_brand else 2
        reason = (
            "same brand and line"
            if same_line
            else "same brand"
            if same_brand
            else f"same pigment{'s' if len(pigments) > 1 else ''} ({' '.join(sorted(pigments))})"
        )
        ranked.append(
            (
                (closeness, _price_distance(wanted.unit_price, c.unit_price), c.code),
                Suggestion(c.code, c.name, c.brand, c.product_line, c.unit_price, c.available, reason),
            )
        )
    ranked.sort(key=lambda pair: pair[0])
    return [s for _, s in ranked[:limit]]
