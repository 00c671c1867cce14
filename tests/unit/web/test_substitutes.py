"""Substitute suggestions: same pigments, size class and medium; ranked by brand/line, then price."""

from __future__ import annotations

from decimal import Decimal

from backorder.domain.substitutes import CatalogItem, medium, size_class, suggest


def item(
    code: str,
    brand: str = "Winsor & Newton",
    line: str = "Professional Watercolour",
    pigments: str = "PB29",
    size: str = "5 ml",
    price: str = "9.49",
    available: int = 10,
) -> CatalogItem:
    return CatalogItem(code, brand, line, tuple(pigments.split()), size, Decimal(price), available, name=code)


WANTED = item("WN-PB29-5", available=0)


def test_suggests_only_skus_with_the_same_pigments_size_class_and_medium() -> None:
    candidates = [
        item("SCH-PB29-5", brand="Schmincke", line="Horadam Aquarell", size="5 ml"),
        item("WN-PB29-14", size="14 ml"),  # other size class
        item("WN-PB29-OIL", line="Artists' Oil Colour"),  # other medium
        item("WN-PB29-PV19", pigments="PB29 PV19"),  # other pigment set
        item("SEN-PB29-10", brand="Sennelier", line="l'Aquarelle", size="10 ml"),
    ]
    codes = [s.code for s in suggest(WANTED, candidates, 1)]
    assert sorted(codes) == ["SCH-PB29-5", "SEN-PB29-10"]


def test_never_suggests_what_is_not_in_stock_for_the_whole_quantity() -> None:
    candidates = [
        item("SCH-PB29-5", brand="Schmincke", available=2),
        item("DS-PB29-5", brand="Daniel Smith", available=5),
    ]
    assert [s.code for s in suggest(WANTED, candidates, 3)] == ["DS-PB29-5"]


def test_ranks_same_brand_and_line_first_then_same_brand_then_closest_price() -> None:
    candidates = [
        item("OTHER-CHEAP", brand="Daniel Smith", line="Extra Fine Watercolor", price="9.00"),
        item("OTHER-DEAR", brand="Daniel Smith", line="Extra Fine Watercolor", price="19.00"),
        item("WN-COTMAN", line="Cotman Watercolour", price="4.00"),
        item("WN-SAME-LINE", price="12.00"),
    ]
    ranked = suggest(WANTED, candidates, 1, limit=4)
    assert [s.code for s in ranked] == ["WN-SAME-LINE", "WN-COTMAN", "OTHER-CHEAP", "OTHER-DEAR"]
    assert ranked[0].reason == "same brand and line"
    assert ranked[2].reason == "same pigment (PB29)"


def test_gives_nothing_for_items_without_pigments_or_size_class() -> None:
    paper = item("PAPER", pigments="", size="300 gsm 31x41 cm 20 sheets")
    assert suggest(paper, [item("OTHER")], 1) == []
    assert suggest(WANTED, [item("X")], 0) == []


def test_reads_the_medium_from_the_product_line_in_several_languages() -> None:
    assert medium("Horadam Aquarell") == "watercolour"
    assert medium("l'Aquarelle") == "watercolour"
    assert medium("Extra Fine Watercolor") == "watercolour"
    assert medium("Designers Gouache") == "gouache"
    assert medium("Heavy Body Acrylics") == "acrylic"
    assert medium("Series 7 Kolinsky Sable Brush") is None


def test_groups_tube_volumes_into_size_classes_and_keeps_pans_apart() -> None:
    assert size_class("14 ml") == size_class("15 ml") == size_class("21 ml")
    assert size_class("37 ml") == size_class("40 ml") == size_class("59 ml")
    assert size_class("5 ml") != size_class("15 ml")
    assert size_class("half pan") == "half pan"
    assert size_class("#2 round") is None
