"""Generate the bundled art-materials demo catalog used by ``backorder demo``.

Writes ``suppliers.csv``, ``skus.csv`` and ``stock.csv`` into ``src/backorder/demo_data/``.
The output is deterministic (``random.Random(2026)``) and needs no network, so running the script
twice produces byte-identical files.

Brand and product-line names are used descriptively to make the demo read like a real shop;
colour numbers, vendor article codes, prices and stock levels are illustrative, not real data.

Usage::

    python scripts/make_demo_catalog.py            # writes into src/backorder/demo_data/
    python scripts/make_demo_catalog.py --out DIR  # writes somewhere else
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

SEED = 2026
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "backorder" / "demo_data"

SUPPLIER_HEADER = ["supplier", "name", "email", "lead_time_days"]
SKU_HEADER = [
    "sku", "name", "brand", "colour", "pigments", "size", "hazmat", "supplier", "supplier_sku",
    "unit_cost", "lead_time_days", "moq", "case_pack", "safety_stock", "reorder_point", "order_up_to",
    "product_line", "unit_price",
]  # fmt: skip
STOCK_HEADER = ["sku", "location", "on_hand"]
LOCATIONS = ("shop-floor", "warehouse")

MADE_TO_ORDER_SHARE = 0.15
ZERO_STOCK_SHARE = 0.12
NEGATIVE_SKUS = 4

# --------------------------------------------------------------------------------------------------
# Suppliers: the brands' distribution arms. The shop is assumed to be in the US, so European and
# Japanese imports take 21-45 days and domestic distributors 5-14.
# --------------------------------------------------------------------------------------------------

SUPPLIERS: list[tuple[str, str, str, int]] = [
    ("WN-UK", "Winsor & Newton Trade Distribution (UK)", "orders.wn-uk@example.com", 28),
    ("DS-US", "Daniel Smith Artists' Materials Wholesale", "wholesale.ds-us@example.com", 7),
    ("SCH-DE", "Schmincke Export Sales (DE)", "export.sch-de@example.net", 35),
    ("GOL-US", "Golden Artist Colors Distribution", "trade.gol-us@example.com", 6),
    ("SEN-FR", "Sennelier Export Office (FR)", "export.sen-fr@example.net", 42),
    ("HOL-JP", "Holbein Works Export Desk (JP)", "export.hol-jp@example.net", 45),
    ("FAB-IT", "Fabriano Fine Art Papers Export (IT)", "orders.fab-it@example.net", 30),
    ("GAM-US", "Gamblin Artists Colors Wholesale", "orders.gam-us@example.com", 8),
    ("CA-US", "ColArt Americas Trade Desk (Liquitex)", "trade.ca-us@example.com", 10),
    ("RT-NL", "Royal Talens Export (NL)", "export.rt-nl@example.net", 30),
    ("FC-DE", "Faber-Castell Art & Graphic Export (DE)", "export.fc-de@example.net", 28),
    ("CDA-CH", "Caran d'Ache Export (CH)", "export.cda-ch@example.net", 35),
    ("RSM-UK", "Rosemary & Co Brushes Trade (UK)", "trade.rsm-uk@example.com", 21),
    ("PRI-US", "Princeton Artist Brush Co. Wholesale", "orders.pri-us@example.com", 5),
]
SUPPLIER_LEAD = {code: lead for code, _, _, lead in SUPPLIERS}
DOMESTIC = {code for code, _, _, lead in SUPPLIERS if lead <= 14}

# Price tiers (series) by pigment cost: 1 earths/ultramarine/phthalos, 2 modern organics,
# 3 viridian and similar, 4 cadmiums and cobalts.
TIER_FACTOR = {1: Decimal("1.00"), 2: Decimal("1.30"), 3: Decimal("1.70"), 4: Decimal("2.20")}


@dataclass(frozen=True)
class Colour:
    code: str
    name: str
    pigments: str
    tier: int
    popularity: int  # 1 (slow) .. 5 (best seller)
    sizes: str  # space-separated size tokens of the line


@dataclass(frozen=True)
class Size:
    label: str  # the catalog's size text
    suffix: str  # last segment of the SKU code
    base_price: Decimal  # retail price of a tier-1 colour in this size
    vendor_code: Callable[[str], str]  # colour code -> supplier_sku
    case_packs: tuple[int, ...] = (3, 6)
    popularity_delta: int = 0


@dataclass(frozen=True)
class ColourLine:
    brand: str
    product_line: str
    prefix: str
    supplier: str
    sizes: dict[str, Size]
    colours: list[Colour]


@dataclass
class Item:
    sku: str
    name: str
    brand: str
    product_line: str
    supplier: str
    supplier_sku: str
    size: str
    retail: Decimal
    popularity: int
    case_packs: tuple[int, ...]
    colour: str = ""
    pigments: str = ""
    hazmat: bool = False
    slow_freight: bool = False  # bulky or dangerous goods: longer lead time than the supplier's
    fields: dict[str, str] = field(default_factory=dict)


def C(code: str, name: str, pigments: str, tier: int, pop: int, sizes: str) -> Colour:
    return Colour(code, name, pigments, tier, pop, sizes)


def D(text: str) -> Decimal:
    return Decimal(text)


# --------------------------------------------------------------------------------------------------
# Colour lines
# --------------------------------------------------------------------------------------------------

WN_WATERCOLOUR = ColourLine(
    "Winsor & Newton", "Professional Watercolour", "WN-PWC", "WN-UK",
    {
        "5": Size("5 ml", "5", D("9.49"), lambda c: f"0101{c}", (3, 6), -1),
        "14": Size("14 ml", "14", D("16.99"), lambda c: f"0102{c}", (3, 6)),
        "HP": Size("half pan", "HP", D("11.49"), lambda c: f"0100{c}", (6, 12)),
    },
    [
        C("263", "French Ultramarine", "PB29", 1, 5, "5 14 HP"),
        C("707", "Winsor Blue (Green Shade)", "PB15:3", 1, 4, "5 14 HP"),
        C("709", "Winsor Blue (Red Shade)", "PB15", 1, 3, "14 HP"),
        C("178", "Cobalt Blue", "PB28", 4, 3, "5 14 HP"),
        C("137", "Cerulean Blue", "PB35", 4, 2, "14 HP"),
        C("321", "Indanthrene Blue", "PB60", 2, 2, "14"),
        C("502", "Permanent Rose", "PV19", 2, 4, "5 14 HP"),
        C("545", "Quinacridone Magenta", "PR122", 2, 3, "14 HP"),
        C("004", "Alizarin Crimson", "PR83", 1, 3, "14 HP"),
        C("726", "Winsor Red", "PR254", 1, 3, "14 HP"),
        C("603", "Scarlet Lake", "PR188", 2, 2, "14"),
        C("094", "Cadmium Red", "PR108", 4, 3, "5 14 HP"),
        C("507", "Perylene Maroon", "PR179", 2, 2, "14"),
        C("108", "Cadmium Yellow", "PY35", 4, 4, "5 14 HP"),
        C("086", "Cadmium Lemon", "PY35", 4, 2, "14"),
        C("730", "Winsor Yellow", "PY154", 1, 3, "14 HP"),
        C("653", "Transparent Yellow", "PY150", 1, 2, "14"),
        C("744", "Yellow Ochre", "PY43", 1, 4, "5 14 HP"),
        C("552", "Raw Sienna", "PBr7", 1, 3, "14 HP"),
        C("074", "Burnt Sienna", "PR101", 1, 5, "5 14 HP"),
        C("076", "Burnt Umber", "PBr7", 1, 4, "14 HP"),
        C("554", "Raw Umber", "PBr7", 1, 2, "14"),
        C("599", "Sap Green", "PO48 PY110 PG36", 1, 4, "5 14 HP"),
        C("692", "Viridian", "PG18", 3, 3, "14 HP"),
        C("719", "Winsor Green (Blue Shade)", "PG7", 1, 3, "14 HP"),
        C("733", "Winsor Violet (Dioxazine)", "PV23", 2, 2, "14"),
        C("460", "Perylene Green", "PBk31", 2, 2, "14"),
        C("465", "Payne's Gray", "PB15 PBk6 PV19", 1, 4, "5 14 HP"),
        C("331", "Ivory Black", "PBk9", 1, 3, "14 HP"),
        C("150", "Chinese White", "PW4", 1, 3, "14"),
        C("644", "Titanium White", "PW6", 1, 3, "14"),
    ],
)  # fmt: skip

DS_WATERCOLOUR = ColourLine(
    "Daniel Smith", "Extra Fine Watercolor", "DS-EFW", "DS-US",
    {
        "15": Size("15 ml", "15", D("12.99"), lambda c: f"284600{c}", (3, 6)),
        "HP": Size("half pan", "HP", D("9.99"), lambda c: f"284610{c}", (6, 12)),
    },
    [
        C("038", "French Ultramarine", "PB29", 1, 5, "15 HP"),
        C("106", "Ultramarine Blue", "PB29", 1, 3, "15"),
        C("075", "Phthalo Blue (Green Shade)", "PB15:3", 1, 4, "15 HP"),
        C("076", "Phthalo Blue (Red Shade)", "PB15", 1, 3, "15"),
        C("013", "Cobalt Blue", "PB28", 4, 3, "15 HP"),
        C("015", "Cerulean Blue Chromium", "PB36", 4, 3, "15"),
        C("017", "Cobalt Teal Blue", "PG50", 4, 2, "15"),
        C("049", "Indanthrone Blue", "PB60", 2, 2, "15"),
        C("094", "Quinacridone Rose", "PV19", 2, 4, "15 HP"),
        C("188", "Quinacridone Magenta", "PR122", 2, 3, "15"),
        C("074", "Pyrrol Scarlet", "PR255", 2, 3, "15 HP"),
        C("072", "Pyrrol Crimson", "PR264", 2, 3, "15"),
        C("083", "Perylene Maroon", "PR179", 2, 2, "15"),
        C("044", "Hansa Yellow Light", "PY3", 1, 3, "15 HP"),
        C("045", "Hansa Yellow Medium", "PY97", 1, 4, "15 HP"),
        C("153", "Nickel Azo Yellow", "PY150", 2, 2, "15"),
        C("024", "Cadmium Yellow Medium", "PY35", 4, 3, "15"),
        C("018", "Cadmium Red Scarlet", "PR108", 4, 2, "15"),
        C("092", "Quinacridone Burnt Orange", "PO48", 2, 3, "15"),
        C("118", "Yellow Ochre", "PY43", 1, 3, "15"),
        C("087", "Raw Sienna", "PBr7", 1, 3, "15 HP"),
        C("003", "Burnt Sienna", "PBr7", 1, 5, "15 HP"),
        C("004", "Burnt Umber", "PBr7", 1, 3, "15"),
        C("098", "Sap Green", "PBk31 PY150 PO48", 1, 4, "15 HP"),
        C("112", "Undersea Green", "PB29 PO48", 1, 2, "15"),
        C("109", "Viridian", "PG18", 3, 3, "15"),
        C("077", "Phthalo Green (Blue Shade)", "PG7", 1, 3, "15"),
        C("084", "Perylene Green", "PBk31", 2, 2, "15"),
        C("010", "Carbazole Violet", "PV23", 2, 2, "15"),
        C("082", "Payne's Gray", "PB29 PBk9", 1, 4, "15 HP"),
        C("047", "Indigo", "PB60 PBk6", 1, 3, "15"),
        C("046", "Lunar Black", "PBk11", 1, 3, "15"),
        C("048", "Ivory Black", "PBk9", 1, 2, "15"),
        C("100", "Titanium White", "PW6", 1, 2, "15"),
        C("183", "Buff Titanium", "PW6:1", 1, 2, "15"),
        C("163", "Moonglow", "PG18 PB29 PR177", 2, 3, "15"),
    ],
)  # fmt: skip

SCH_WATERCOLOUR = ColourLine(
    "Schmincke", "Horadam Aquarell", "SCH-HWC", "SCH-DE",
    {
        "5": Size("5 ml", "5", D("11.49"), lambda c: f"14 {c} 005", (3, 6), -1),
        "15": Size("15 ml", "15", D("21.99"), lambda c: f"14 {c} 044", (3, 6)),
        "HP": Size("half pan", "HP", D("12.49"), lambda c: f"14 {c} 006", (6, 12)),
    },
    [
        C("494", "French Ultramarine", "PB29", 1, 5, "5 15 HP"),
        C("492", "Prussian Blue", "PB27", 1, 2, "15"),
        C("484", "Phthalo Blue", "PB15:3", 1, 4, "5 15 HP"),
        C("486", "Cobalt Blue Light", "PB28", 4, 3, "15 HP"),
        C("488", "Cerulean Blue", "PB35", 4, 2, "15 HP"),
        C("475", "Helio Turquoise", "PB16", 2, 2, "15"),
        C("215", "Lemon Yellow", "PY175", 1, 3, "5 15 HP"),
        C("224", "Cadmium Yellow Light", "PY35", 4, 3, "15 HP"),
        C("225", "Cadmium Yellow Middle", "PY35", 4, 3, "5 15"),
        C("218", "Pyrrole Orange", "PO73", 2, 2, "15"),
        C("349", "Cadmium Red Light", "PR108", 4, 2, "15"),
        C("342", "Pyrrole Red", "PR254", 2, 3, "15 HP"),
        C("352", "Magenta", "PR122", 2, 3, "15 HP"),
        C("351", "Ruby Red", "PV19", 2, 3, "5 15"),
        C("344", "Perylene Maroon", "PR179", 2, 2, "15"),
        C("655", "Yellow Ochre", "PY43", 1, 4, "5 15 HP"),
        C("660", "Raw Sienna", "PBr7", 1, 2, "15"),
        C("661", "Burnt Sienna", "PBr7", 1, 5, "5 15 HP"),
        C("669", "Burnt Umber", "PBr7", 1, 3, "15 HP"),
        C("663", "Sepia Brown", "PBr7 PBk9", 1, 2, "15"),
        C("513", "Viridian", "PG18", 3, 3, "15 HP"),
        C("519", "Phthalo Green", "PG7", 1, 3, "15"),
        C("512", "Chromium Oxide Green", "PG17", 1, 2, "15"),
        C("530", "Sap Green", "PY150 PG36", 1, 3, "15 HP"),
        C("787", "Payne's Grey Bluish", "PB60 PBk6", 1, 4, "5 15 HP"),
        C("780", "Ivory Black", "PBk9", 1, 3, "15"),
        C("101", "Titanium Opaque White", "PW6", 1, 2, "15"),
    ],
)  # fmt: skip

SEN_WATERCOLOUR = ColourLine(
    "Sennelier", "l'Aquarelle", "SEN-AQ", "SEN-FR",
    {
        "10": Size("10 ml", "10", D("10.49"), lambda c: f"N131501.{c}", (3, 6)),
        "21": Size("21 ml", "21", D("18.99"), lambda c: f"N131601.{c}", (3,), -1),
        "HP": Size("half pan", "HP", D("9.49"), lambda c: f"N131701.{c}", (6, 12)),
    },
    [
        C("315", "French Ultramarine", "PB29", 1, 5, "10 21 HP"),
        C("307", "Cobalt Blue", "PB28", 4, 2, "10 HP"),
        C("305", "Cerulean Blue", "PB35", 4, 2, "10"),
        C("385", "Phthalocyanine Blue", "PB15:3", 1, 3, "10 HP"),
        C("386", "Prussian Blue", "PB27", 1, 2, "10"),
        C("678", "Quinacridone Red", "PV19", 2, 3, "10 HP"),
        C("613", "Cadmium Red Light", "PR108", 4, 2, "10"),
        C("535", "Cadmium Yellow Light", "PY35", 4, 3, "10 HP"),
        C("501", "Lemon Yellow", "PY3", 1, 3, "10 HP"),
        C("252", "Yellow Ochre", "PY43", 1, 4, "10 21 HP"),
        C("208", "Raw Sienna", "PBr7", 1, 3, "10 HP"),
        C("211", "Burnt Sienna", "PBr7", 1, 5, "10 21 HP"),
        C("202", "Burnt Umber", "PBr7", 1, 3, "10 HP"),
        C("837", "Viridian", "PG18", 3, 2, "10 HP"),
        C("807", "Phthalocyanine Green", "PG7", 1, 2, "10"),
        C("815", "Sap Green", "PY150 PG7", 1, 3, "10 21 HP"),
        C("705", "Payne's Grey", "PB29 PBk9", 1, 4, "10 21 HP"),
        C("755", "Ivory Black", "PBk9", 1, 2, "10 HP"),
        C("116", "Chinese White", "PW4", 1, 2, "10"),
    ],
)  # fmt: skip

HOL_WATERCOLOUR = ColourLine(
    "Holbein", "Artists' Watercolor", "HOL-AWC", "HOL-JP",
    {
        "5": Size("5 ml", "5", D("8.99"), lambda c: f"W{c}/5", (3, 6), -1),
        "15": Size("15 ml", "15", D("14.99"), lambda c: f"W{c}/15", (3, 6)),
    },
    [
        C("294", "Ultramarine Deep", "PB29", 1, 5, "5 15"),
        C("292", "Cobalt Blue", "PB28", 4, 2, "15"),
        C("290", "Cerulean Blue", "PB35", 4, 2, "15"),
        C("299", "Cyanine Blue", "PB15:3", 1, 3, "5 15"),
        C("316", "Quinacridone Magenta", "PR122", 2, 3, "15"),
        C("319", "Permanent Rose", "PV19", 2, 3, "15"),
        C("212", "Pyrrole Red", "PR254", 2, 2, "15"),
        C("244", "Cadmium Yellow Light", "PY35", 4, 2, "15"),
        C("249", "Permanent Yellow Lemon", "PY3", 1, 3, "5 15"),
        C("331", "Yellow Ochre", "PY42", 1, 3, "15"),
        C("333", "Raw Sienna", "PBr7", 1, 2, "15"),
        C("334", "Burnt Sienna", "PR101", 1, 4, "5 15"),
        C("336", "Burnt Umber", "PBr7", 1, 3, "15"),
        C("261", "Viridian", "PG18", 3, 2, "15"),
        C("268", "Sap Green", "PG36 PY150", 1, 3, "15"),
        C("341", "Payne's Grey", "PB29 PBk7", 1, 3, "5 15"),
        C("346", "Ivory Black", "PBk9", 1, 2, "15"),
        C("350", "Chinese White", "PW4", 1, 2, "15"),
    ],
)  # fmt: skip

HOL_GOUACHE = ColourLine(
    "Holbein", "Artists' Gouache", "HOL-AG", "HOL-JP",
    {"15": Size("15 ml", "15", D("9.99"), lambda c: f"G{c}", (3, 6))},
    [
        C("546", "Ultramarine Deep", "PB29", 1, 3, "15"),
        C("548", "Primary Cyan", "PB15:3", 1, 3, "15"),
        C("512", "Primary Magenta", "PR122", 2, 3, "15"),
        C("532", "Primary Yellow", "PY74", 1, 3, "15"),
        C("501", "Permanent White", "PW6", 1, 5, "15"),
        C("603", "Jet Black", "PBk7", 1, 4, "15"),
        C("506", "Flame Red", "PR254", 2, 2, "15"),
        C("513", "Rose Violet", "PV19", 2, 2, "15"),
        C("572", "Permanent Green Deep", "PG7", 1, 2, "15"),
        C("590", "Yellow Ochre", "PY42", 1, 2, "15"),
        C("592", "Burnt Sienna", "PR101", 1, 2, "15"),
    ],
)  # fmt: skip

WN_GOUACHE = ColourLine(
    "Winsor & Newton", "Designers Gouache", "WN-DG", "WN-UK",
    {"14": Size("14 ml", "14", D("9.49"), lambda c: f"0605{c}", (3, 6))},
    [
        C("660", "Ultramarine", "PB29", 1, 3, "14"),
        C("526", "Primary Blue", "PB15:3", 1, 3, "14"),
        C("512", "Permanent White", "PW6", 1, 5, "14"),
        C("748", "Zinc White", "PW4", 1, 2, "14"),
        C("337", "Jet Black", "PBk7", 1, 3, "14"),
        C("527", "Primary Red", "PR254", 2, 2, "14"),
        C("529", "Primary Yellow", "PY74", 1, 3, "14"),
        C("380", "Magenta", "PR122", 2, 2, "14"),
        C("074", "Burnt Sienna", "PR101", 1, 2, "14"),
        C("744", "Yellow Ochre", "PY42", 1, 2, "14"),
        C("483", "Permanent Green Middle", "PG7 PY3", 1, 2, "14"),
    ],
)  # fmt: skip

SCH_GOUACHE = ColourLine(
    "Schmincke", "Horadam Gouache", "SCH-HG", "SCH-DE",
    {"15": Size("15 ml", "15", D("11.99"), lambda c: f"13 {c} 044", (3, 6))},
    [
        C("494", "Ultramarine", "PB29", 1, 2, "15"),
        C("484", "Phthalo Blue", "PB15:3", 1, 2, "15"),
        C("102", "Titanium White", "PW6", 1, 3, "15"),
        C("786", "Black", "PBk7", 1, 2, "15"),
        C("352", "Magenta", "PR122", 2, 2, "15"),
        C("215", "Lemon Yellow", "PY3", 1, 2, "15"),
        C("661", "Burnt Sienna", "PR101", 1, 2, "15"),
        C("342", "Pyrrole Red", "PR254", 2, 2, "15"),
    ],
)  # fmt: skip

WN_OIL = ColourLine(
    "Winsor & Newton", "Artists' Oil Colour", "WN-AO", "WN-UK",
    {
        "37": Size("37 ml", "37", D("14.99"), lambda c: f"1214{c}", (3, 6)),
        "200": Size("200 ml", "200", D("49.99"), lambda c: f"1237{c}", (1, 3), -1),
    },
    [
        C("263", "French Ultramarine", "PB29", 1, 5, "37 200"),
        C("707", "Winsor Blue (Green Shade)", "PB15:3", 1, 3, "37"),
        C("178", "Cobalt Blue", "PB28", 4, 2, "37"),
        C("137", "Cerulean Blue", "PB35", 4, 2, "37"),
        C("502", "Permanent Rose", "PV19", 2, 3, "37"),
        C("726", "Winsor Red", "PR254", 1, 3, "37"),
        C("094", "Cadmium Red", "PR108", 4, 3, "37"),
        C("108", "Cadmium Yellow", "PY35", 4, 3, "37"),
        C("722", "Winsor Lemon", "PY175", 1, 2, "37"),
        C("744", "Yellow Ochre", "PY42", 1, 4, "37 200"),
        C("552", "Raw Sienna", "PBr7", 1, 2, "37"),
        C("074", "Burnt Sienna", "PR101", 1, 4, "37"),
        C("076", "Burnt Umber", "PBr7", 1, 4, "37 200"),
        C("554", "Raw Umber", "PBr7", 1, 2, "37"),
        C("692", "Viridian", "PG18", 3, 2, "37"),
        C("465", "Payne's Gray", "PB29 PBk9", 1, 3, "37"),
        C("331", "Ivory Black", "PBk9", 1, 3, "37"),
        C("644", "Titanium White", "PW6", 1, 5, "37 200"),
    ],
)  # fmt: skip

GAM_OIL = ColourLine(
    "Gamblin", "Artist's Oil Colors", "GAM-AO", "GAM-US",
    {
        "37": Size("37 ml", "37", D("13.99"), lambda c: f"G{c}37", (3, 6)),
        "150": Size("150 ml", "150", D("39.99"), lambda c: f"G{c}150", (1, 3), -1),
    },
    [
        C("1540", "Ultramarine Blue", "PB29", 1, 4, "37 150"),
        C("1420", "Phthalo Blue", "PB15:3", 1, 3, "37"),
        C("1120", "Cobalt Blue", "PB28", 4, 2, "37"),
        C("1140", "Cerulean Blue", "PB35", 4, 2, "37"),
        C("1480", "Quinacridone Red", "PV19", 2, 3, "37"),
        C("1360", "Napthol Scarlet", "PR188", 2, 2, "37"),
        C("1070", "Cadmium Red Medium", "PR108", 4, 3, "37"),
        C("1090", "Cadmium Yellow Medium", "PY35", 4, 3, "37"),
        C("1260", "Hansa Yellow Light", "PY3", 1, 2, "37"),
        C("1580", "Yellow Ochre", "PY43", 1, 3, "37"),
        C("1020", "Burnt Sienna", "PR101", 1, 4, "37"),
        C("1030", "Burnt Umber", "PBr7", 1, 4, "37"),
        C("1560", "Viridian", "PG18", 3, 2, "37"),
        C("1100", "Chromium Oxide Green", "PG17", 1, 2, "37"),
        C("1180", "Dioxazine Purple", "PV23", 2, 2, "37"),
        C("1270", "Ivory Black", "PBk9", 1, 3, "37"),
        C("1510", "Titanium White", "PW6", 1, 5, "37 150"),
    ],
)  # fmt: skip

RT_OIL = ColourLine(
    "Royal Talens", "Rembrandt Oil Colour", "RT-RO", "RT-NL",
    {"40": Size("40 ml", "40", D("14.49"), lambda c: f"0105{c}", (3, 6))},
    [
        C("506", "Ultramarine Deep", "PB29", 1, 4, "40"),
        C("570", "Phthalo Blue", "PB15", 1, 3, "40"),
        C("508", "Prussian Blue", "PB27", 1, 2, "40"),
        C("366", "Quinacridone Rose", "PV19", 2, 3, "40"),
        C("271", "Cadmium Yellow Medium", "PY35", 4, 3, "40"),
        C("314", "Cadmium Red Medium", "PR108", 4, 3, "40"),
        C("227", "Yellow Ochre", "PY42", 1, 3, "40"),
        C("411", "Burnt Sienna", "PR101", 1, 4, "40"),
        C("409", "Burnt Umber", "PBr7", 1, 3, "40"),
        C("616", "Viridian", "PG18", 3, 2, "40"),
        C("701", "Ivory Black", "PBk9", 1, 3, "40"),
        C("105", "Titanium White", "PW6", 1, 4, "40"),
    ],
)  # fmt: skip

HOL_OIL = ColourLine(
    "Holbein", "Artists' Oil Colour", "HOL-AO", "HOL-JP",
    {"40": Size("40 ml", "40", D("13.99"), lambda c: f"H{c}", (3, 6))},
    [
        C("080", "Ultramarine Deep", "PB29", 1, 3, "40"),
        C("090", "Cobalt Blue", "PB28", 4, 2, "40"),
        C("093", "Cerulean Blue", "PB35", 4, 2, "40"),
        C("031", "Cadmium Yellow Light", "PY35", 4, 2, "40"),
        C("021", "Cadmium Red Light", "PR108", 4, 2, "40"),
        C("117", "Yellow Ochre", "PY42", 1, 3, "40"),
        C("125", "Burnt Sienna", "PR101", 1, 3, "40"),
        C("065", "Viridian", "PG18", 3, 2, "40"),
        C("154", "Ivory Black", "PBk9", 1, 2, "40"),
        C("202", "Titanium White", "PW6", 1, 3, "40"),
    ],
)  # fmt: skip

SEN_OIL = ColourLine(
    "Sennelier", "Extra-Fine Oil", "SEN-EFO", "SEN-FR",
    {"40": Size("40 ml", "40", D("15.49"), lambda c: f"N811211.{c}", (3, 6))},
    [
        C("315", "French Ultramarine", "PB29", 1, 3, "40"),
        C("307", "Cobalt Blue", "PB28", 4, 2, "40"),
        C("535", "Cadmium Yellow Light", "PY35", 4, 2, "40"),
        C("613", "Cadmium Red Light", "PR108", 4, 2, "40"),
        C("678", "Quinacridone Red", "PV19", 2, 2, "40"),
        C("252", "Yellow Ochre", "PY43", 1, 3, "40"),
        C("211", "Burnt Sienna", "PBr7", 1, 3, "40"),
        C("204", "Raw Umber", "PBr7", 1, 2, "40"),
        C("837", "Viridian", "PG18", 3, 2, "40"),
        C("755", "Ivory Black", "PBk9", 1, 2, "40"),
        C("117", "Titanium White", "PW6", 1, 3, "40"),
    ],
)  # fmt: skip

GOL_ACRYLIC = ColourLine(
    "Golden", "Heavy Body Acrylics", "GOL-HB", "GOL-US",
    {
        "59": Size("59 ml", "59", D("11.99"), lambda c: f"{c}-2", (3, 6)),
        "237": Size("237 ml", "237", D("36.99"), lambda c: f"{c}-5", (1, 3), -1),
    },
    [
        C("1400", "Ultramarine Blue", "PB29", 1, 4, "59 237"),
        C("1255", "Phthalo Blue (Green Shade)", "PB15:3", 1, 4, "59 237"),
        C("1260", "Phthalo Blue (Red Shade)", "PB15:1", 1, 3, "59"),
        C("1140", "Cobalt Blue", "PB28", 4, 2, "59"),
        C("1050", "Cerulean Blue, Chromium", "PB36", 4, 2, "59"),
        C("1305", "Quinacridone Magenta", "PR122", 2, 3, "59"),
        C("1330", "Quinacridone Violet", "PV19", 2, 3, "59"),
        C("1277", "Pyrrole Red", "PR254", 2, 3, "59"),
        C("1276", "Pyrrole Orange", "PO73", 2, 2, "59"),
        C("1120", "Cadmium Red Medium", "PR108", 4, 3, "59"),
        C("1135", "Cadmium Yellow Medium", "PY35", 4, 3, "59"),
        C("1191", "Hansa Yellow Light", "PY3", 1, 3, "59"),
        C("1147", "Hansa Yellow Medium", "PY73", 1, 3, "59"),
        C("1407", "Yellow Oxide", "PY42", 1, 3, "59"),
        C("1340", "Raw Sienna", "PBr7", 1, 2, "59"),
        C("1020", "Burnt Sienna", "PR101", 1, 4, "59 237"),
        C("1030", "Burnt Umber", "PBr7", 1, 4, "59 237"),
        C("1270", "Phthalo Green (Blue Shade)", "PG7", 1, 3, "59"),
        C("1060", "Chromium Oxide Green", "PG17", 1, 2, "59"),
        C("1150", "Dioxazine Purple", "PV23", 2, 2, "59"),
        C("1040", "Carbon Black", "PBk7", 1, 4, "59 237"),
        C("1380", "Titanium White", "PW6", 1, 5, "59 237"),
    ],
)  # fmt: skip

LQ_ACRYLIC = ColourLine(
    "Liquitex", "Heavy Body Acrylic", "LQ-HB", "CA-US",
    {"59": Size("59 ml", "59", D("9.99"), lambda c: f"1045{c}", (3, 6))},
    [
        C("380", "Ultramarine Blue (Green Shade)", "PB29", 1, 4, "59"),
        C("316", "Phthalocyanine Blue (Green Shade)", "PB15:3", 1, 3, "59"),
        C("170", "Cobalt Blue", "PB28", 4, 2, "59"),
        C("110", "Quinacridone Magenta", "PR122", 2, 3, "59"),
        C("321", "Pyrrole Red", "PR254", 2, 3, "59"),
        C("151", "Cadmium Red Medium", "PR108", 4, 2, "59"),
        C("160", "Cadmium Yellow Medium", "PY35", 4, 3, "59"),
        C("416", "Yellow Oxide", "PY42", 1, 3, "59"),
        C("127", "Burnt Sienna", "PR101", 1, 3, "59"),
        C("128", "Burnt Umber", "PBr7", 1, 3, "59"),
        C("317", "Phthalocyanine Green (Blue Shade)", "PG7", 1, 3, "59"),
        C("186", "Dioxazine Purple", "PV23", 2, 2, "59"),
        C("244", "Ivory Black", "PBk9", 1, 3, "59"),
        C("432", "Titanium White", "PW6", 1, 5, "59"),
    ],
)  # fmt: skip

RT_ACRYLIC = ColourLine(
    "Royal Talens", "Amsterdam Expert Acrylic", "RT-AXA", "RT-NL",
    {"75": Size("75 ml", "75", D("10.49"), lambda c: f"1201{c}", (3, 6))},
    [
        C("504", "Ultramarine", "PB29", 1, 3, "75"),
        C("570", "Phthalo Blue", "PB15:3", 1, 3, "75"),
        C("366", "Quinacridone Rose", "PV19", 2, 2, "75"),
        C("315", "Pyrrole Red", "PR254", 2, 2, "75"),
        C("271", "Cadmium Yellow Medium", "PY35", 4, 2, "75"),
        C("227", "Yellow Ochre", "PY42", 1, 3, "75"),
        C("411", "Burnt Sienna", "PR101", 1, 3, "75"),
        C("409", "Burnt Umber", "PBr7", 1, 3, "75"),
        C("675", "Phthalo Green", "PG7", 1, 2, "75"),
        C("735", "Oxide Black", "PBk11", 1, 2, "75"),
        C("105", "Titanium White", "PW6", 1, 4, "75"),
    ],
)  # fmt: skip

SEN_PASTEL = ColourLine(
    "Sennelier", "Extra-Soft Pastel", "SEN-PAS", "SEN-FR",
    {"ST": Size("stick", "ST", D("4.79"), lambda c: f"N132240.{c}", (6, 10), -1)},
    [
        C("390", "French Ultramarine", "PB29", 1, 4, "ST"),
        C("293", "Phthalocyanine Blue", "PB15:3", 1, 3, "ST"),
        C("681", "Cobalt Blue", "PB28", 4, 2, "ST"),
        C("201", "Burnt Sienna", "PBr7", 1, 3, "ST"),
        C("151", "Yellow Ochre", "PY43", 1, 3, "ST"),
        C("218", "Viridian", "PG18", 3, 2, "ST"),
        C("083", "Quinacridone Rose", "PV19", 2, 3, "ST"),
        C("059", "Cadmium Yellow Light", "PY35", 4, 2, "ST"),
        C("066", "Cadmium Red Light", "PR108", 4, 2, "ST"),
        C("525", "White", "PW6", 1, 4, "ST"),
        C("353", "Ivory Black", "PBk9", 1, 3, "ST"),
    ],
)  # fmt: skip

SCH_PASTEL = ColourLine(
    "Schmincke", "Finest Soft Pastel", "SCH-PAS", "SCH-DE",
    {"ST": Size("stick", "ST", D("5.49"), lambda c: f"77 {c[:3]} {c[3:]}", (6, 10), -1)},
    [
        C("044D", "Ultramarine Deep", "PB29", 1, 4, "ST"),
        C("049D", "Phthalo Blue", "PB15:3", 1, 3, "ST"),
        C("028D", "Burnt Sienna", "PBr7", 1, 3, "ST"),
        C("030D", "Yellow Ochre", "PY43", 1, 3, "ST"),
        C("100O", "Titanium White", "PW6", 1, 4, "ST"),
        C("098D", "Black", "PBk7", 1, 3, "ST"),
        C("068D", "Viridian", "PG18", 3, 2, "ST"),
        C("052D", "Magenta", "PR122", 2, 2, "ST"),
    ],
)  # fmt: skip

RT_PASTEL = ColourLine(
    "Royal Talens", "Rembrandt Soft Pastel", "RT-PAS", "RT-NL",
    {"ST": Size("stick", "ST", D("3.29"), lambda c: f"3100{c}5", (10,), -1)},
    [
        C("506", "Ultramarine Deep", "PB29", 1, 4, "ST"),
        C("570", "Phthalo Blue", "PB15:3", 1, 3, "ST"),
        C("411", "Burnt Sienna", "PR101", 1, 3, "ST"),
        C("227", "Yellow Ochre", "PY42", 1, 3, "ST"),
        C("616", "Viridian", "PG18", 3, 2, "ST"),
        C("100", "White", "PW6", 1, 4, "ST"),
        C("700", "Black", "PBk7", 1, 3, "ST"),
        C("366", "Quinacridone Rose", "PV19", 2, 2, "ST"),
    ],
)  # fmt: skip

FC_PENCIL = ColourLine(
    "Faber-Castell", "Polychromos Colour Pencil", "FC-POL", "FC-DE",
    {"PN": Size("pencil", "PN", D("2.79"), lambda c: f"110{c}", (12,))},
    [
        C("120", "Ultramarine", "PB29", 1, 4, "PN"),
        C("110", "Phthalo Blue", "PB15:3", 1, 3, "PN"),
        C("161", "Phthalo Green", "PG7", 1, 3, "PN"),
        C("283", "Burnt Siena", "PR101", 1, 3, "PN"),
        C("280", "Burnt Umber", "PBr7", 1, 3, "PN"),
        C("183", "Light Yellow Ochre", "PY42", 1, 3, "PN"),
        C("125", "Middle Purple Pink", "PV19", 2, 2, "PN"),
        C("181", "Payne's Grey", "PB15 PBk7", 1, 3, "PN"),
        C("101", "White", "PW6", 1, 5, "PN"),
        C("199", "Black", "PBk7", 1, 5, "PN"),
    ],
)  # fmt: skip

CDA_PENCIL = ColourLine(
    "Caran d'Ache", "Luminance 6901 Colour Pencil", "CDA-LUM", "CDA-CH",
    {"PN": Size("pencil", "PN", D("4.99"), lambda c: f"6901.{c}", (3, 6))},
    [
        C("140", "Ultramarine", "PB29", 1, 4, "PN"),
        C("162", "Phthalocyanine Blue", "PB15:3", 1, 3, "PN"),
        C("065", "Burnt Sienna", "PR101", 1, 3, "PN"),
        C("063", "Burnt Umber", "PBr7", 1, 3, "PN"),
        C("033", "Yellow Ochre", "PY42", 1, 3, "PN"),
        C("350", "Purplish Red", "PV19", 2, 2, "PN"),
        C("212", "Viridian", "PG18", 3, 2, "PN"),
        C("001", "White", "PW6", 1, 4, "PN"),
        C("009", "Black", "PBk7", 1, 4, "PN"),
    ],
)  # fmt: skip

COLOUR_LINES = [
    WN_WATERCOLOUR, DS_WATERCOLOUR, SCH_WATERCOLOUR, SEN_WATERCOLOUR, HOL_WATERCOLOUR,
    HOL_GOUACHE, WN_GOUACHE, SCH_GOUACHE,
    WN_OIL, GAM_OIL, RT_OIL, HOL_OIL, SEN_OIL,
    GOL_ACRYLIC, LQ_ACRYLIC, RT_ACRYLIC,
    SEN_PASTEL, SCH_PASTEL, RT_PASTEL,
    FC_PENCIL, CDA_PENCIL,
]  # fmt: skip


def colour_items() -> list[Item]:
    items: list[Item] = []
    for line in COLOUR_LINES:
        for colour in line.colours:
            for token in colour.sizes.split():
                size = line.sizes[token]
                items.append(
                    Item(
                        sku=f"{line.prefix}-{colour.code}-{size.suffix}",
                        name=f"{line.brand} {line.product_line} {colour.name} {size.label}",
                        brand=line.brand,
                        product_line=line.product_line,
                        supplier=line.supplier,
                        supplier_sku=size.vendor_code(colour.code),
                        size=size.label,
                        retail=size.base_price * TIER_FACTOR[colour.tier],
                        popularity=colour.popularity + size.popularity_delta,
                        case_packs=size.case_packs,
                        colour=colour.name,
                        pigments=colour.pigments,
                        slow_freight=size.popularity_delta < 0 and size.base_price > D("30"),
                    )
                )
    return items


# --------------------------------------------------------------------------------------------------
# Brushes, papers, mediums and solvents (no pigments)
# --------------------------------------------------------------------------------------------------

BRUSHES = [
    # brand, line, prefix, supplier, vendor code format, shape, [(size, retail, popularity)], packs
    ("Winsor & Newton", "Series 7 Kolinsky Sable Brush", "WN-S7", "WN-UK", "5007{n:03d}", "round",
     [(0, "19.99", 2), (1, "24.99", 3), (2, "30.99", 4), (3, "39.99", 3), (4, "54.99", 4),
      (5, "74.99", 3), (6, "98.99", 4), (7, "149.99", 2), (8, "198.99", 3), (10, "334.99", 1)], (1,)),
    ("Rosemary & Co", "Series 99 Pure Kolinsky Sable Brush", "RSM-S99", "RSM-UK", "S99-{n}", "round",
     [(2, "16.99", 3), (4, "26.99", 3), (6, "39.99", 4), (8, "66.99", 3), (10, "98.99", 2)], (1,)),
    ("Princeton", "Neptune Synthetic Squirrel Brush", "PRI-NEPR", "PRI-US", "4750R-{n}", "round",
     [(2, "9.99", 3), (4, "12.99", 4), (6, "15.99", 4), (8, "18.99", 4), (10, "23.99", 3),
      (12, "30.99", 2)], (1, 3)),
    ("Princeton", "Neptune Synthetic Squirrel Brush", "PRI-NEPQ", "PRI-US", "4750Q-{n}", "quill",
     [(2, "13.99", 2), (4, "17.99", 3), (6, "24.99", 2)], (1, 3)),
    ("Princeton", "Heritage Synthetic Sable Brush", "PRI-HER", "PRI-US", "4050R-{n}", "round",
     [(2, "5.99", 3), (4, "7.99", 4), (6, "9.49", 4), (8, "11.99", 3), (10, "14.99", 3)], (3, 6)),
]  # fmt: skip

PAPER_SURFACES = [("CP", "Cold Press"), ("HP", "Hot Press"), ("RG", "Rough")]
PAPER_BLOCKS = [
    ("1826", "18x26 cm", "28.99", 0),
    ("2330", "23x30.5 cm", "41.99", 1),
    ("3141", "31x41 cm", "68.99", 0),
]
PAPER_WHITES = [("EW", "Extra White", 1), ("TW", "Traditional White", 0)]

# sku, name, brand, product line, supplier, supplier_sku, size, retail, popularity, hazmat, packs
SUNDRIES = [
    ("GAM-SOL-GAMSOL-125", "Gamblin Gamsol Odourless Mineral Spirits 125 ml", "Gamblin",
     "Solvents", "GAM-US", "G8103", "125 ml", "9.99", 4, True, (6, 12)),
    ("GAM-SOL-GAMSOL-1000", "Gamblin Gamsol Odourless Mineral Spirits 1 l", "Gamblin",
     "Solvents", "GAM-US", "G8133", "1 l", "31.99", 3, True, (3, 6)),
    ("GAM-SOL-TURPS-125", "Gamblin Gum Spirits of Turpentine 125 ml", "Gamblin",
     "Solvents", "GAM-US", "G8203", "125 ml", "11.49", 1, True, (6,)),
    ("GAM-MED-GALKYD-125", "Gamblin Galkyd Painting Medium 125 ml", "Gamblin",
     "Mediums", "GAM-US", "G8313", "125 ml", "14.99", 3, True, (6,)),
    ("GAM-MED-LINSEED-125", "Gamblin Refined Linseed Oil 125 ml", "Gamblin",
     "Mediums", "GAM-US", "G8413", "125 ml", "10.99", 3, False, (6,)),
    ("GAM-MED-SFGEL-37", "Gamblin Solvent-Free Gel 37 ml", "Gamblin",
     "Mediums", "GAM-US", "G8521", "37 ml", "12.99", 2, False, (3, 6)),
    ("WN-SOL-SANSODOR-250", "Winsor & Newton Sansodor Low Odour Solvent 250 ml", "Winsor & Newton",
     "Solvents", "WN-UK", "3039761", "250 ml", "16.99", 3, True, (6,)),
    ("WN-MED-LIQUIN-75", "Winsor & Newton Liquin Original 75 ml", "Winsor & Newton",
     "Mediums", "WN-UK", "3039729", "75 ml", "12.49", 4, True, (6,)),
    ("WN-MED-LIQUIN-250", "Winsor & Newton Liquin Original 250 ml", "Winsor & Newton",
     "Mediums", "WN-UK", "3039731", "250 ml", "27.99", 2, True, (3,)),
    ("WN-MED-GUMARABIC-75", "Winsor & Newton Gum Arabic 75 ml", "Winsor & Newton",
     "Watercolour Mediums", "WN-UK", "3021748", "75 ml", "11.99", 2, False, (6,)),
    ("WN-MED-MASKING-75", "Winsor & Newton Art Masking Fluid 75 ml", "Winsor & Newton",
     "Watercolour Mediums", "WN-UK", "3021759", "75 ml", "13.99", 4, False, (6,)),
    ("WN-FIX-ARTISTS-400", "Winsor & Newton Artists' Fixative Spray 400 ml", "Winsor & Newton",
     "Fixatives & Varnishes", "WN-UK", "3034924", "400 ml aerosol", "15.99", 3, True, (6,)),
    ("SEN-FIX-LATOUR-400", "Sennelier Latour Pastel Fixative Spray 400 ml", "Sennelier",
     "Fixatives & Varnishes", "SEN-FR", "N135405", "400 ml aerosol", "19.99", 3, True, (6,)),
    ("SCH-FIX-AEROSPRAY-400", "Schmincke Aerospray Fixative 400 ml", "Schmincke",
     "Fixatives & Varnishes", "SCH-DE", "50 501 027", "400 ml aerosol", "21.49", 2, True, (6,)),
    ("SCH-MED-OXGALL-60", "Schmincke Ox-gall Liquid 60 ml", "Schmincke",
     "Watercolour Mediums", "SCH-DE", "50 051 018", "60 ml", "10.99", 2, False, (6,)),
    ("GOL-MED-GAC100-237", "Golden GAC 100 Multi-Purpose Acrylic Polymer 237 ml", "Golden",
     "Acrylic Mediums", "GOL-US", "3900-5", "237 ml", "19.99", 2, False, (3, 6)),
    ("GOL-MED-SOFTGEL-237", "Golden Soft Gel (Gloss) 237 ml", "Golden",
     "Acrylic Mediums", "GOL-US", "3010-5", "237 ml", "21.99", 3, False, (3, 6)),
    ("GOL-MED-FLUIDMATTE-237", "Golden Fluid Matte Medium 237 ml", "Golden",
     "Acrylic Mediums", "GOL-US", "3530-5", "237 ml", "18.99", 3, False, (3, 6)),
    ("GOL-VAR-ARCHIVAL-340", "Golden Archival Varnish Spray (Gloss) 340 g", "Golden",
     "Fixatives & Varnishes", "GOL-US", "7730-12", "340 g aerosol", "22.99", 2, True, (6,)),
    ("DS-MED-GROUND-118", "Daniel Smith Watercolor Ground (Titanium White) 118 ml", "Daniel Smith",
     "Watercolour Mediums", "DS-US", "284050001", "118 ml", "17.99", 2, False, (3, 6)),
]  # fmt: skip


def other_items() -> list[Item]:
    items: list[Item] = []
    for brand, line, prefix, supplier, code_fmt, shape, sizes, packs in BRUSHES:
        for n, retail, pop in sizes:
            items.append(
                Item(
                    sku=f"{prefix}-{n:02d}",
                    name=f"{brand} {line} #{n} {shape}",
                    brand=brand,
                    product_line=line,
                    supplier=supplier,
                    supplier_sku=code_fmt.format(n=n),
                    size=f"#{n} {shape}",
                    retail=Decimal(retail),
                    popularity=pop,
                    case_packs=packs,
                )
            )
    for white_code, white, white_pop in PAPER_WHITES:
        for surface_code, surface in PAPER_SURFACES:
            surface_pop = 1 if surface_code == "CP" else 0
            for block_code, dims, retail, block_pop in PAPER_BLOCKS:
                items.append(
                    Item(
                        sku=f"FAB-ART-{white_code}{surface_code}-{block_code}",
                        name=f"Fabriano Artistico {white} {surface} Block 300 gsm {dims}",
                        brand="Fabriano",
                        product_line="Artistico Watercolour Paper",
                        supplier="FAB-IT",
                        supplier_sku=f"1910{block_code}{white_code}{surface_code}",
                        size=f"300 gsm {dims} 20 sheets",
                        retail=Decimal(retail),
                        popularity=2 + white_pop + surface_pop + block_pop,
                        case_packs=(1, 3),
                    )
                )
        if white_code == "EW":
            for surface_code, surface in PAPER_SURFACES:
                items.append(
                    Item(
                        sku=f"FAB-ART-{white_code}{surface_code}-5676",
                        name=f"Fabriano Artistico {white} {surface} Sheet 640 gsm 56x76 cm",
                        brand="Fabriano",
                        product_line="Artistico Watercolour Paper",
                        supplier="FAB-IT",
                        supplier_sku=f"1964{white_code}{surface_code}5676",
                        size="640 gsm 56x76 cm sheet",
                        retail=Decimal("21.99"),
                        popularity=1,
                        case_packs=(10,),
                        slow_freight=True,
                    )
                )
    for sku, name, brand, line, supplier, vendor, size, retail, pop, hazmat, packs in SUNDRIES:
        items.append(
            Item(
                sku=sku,
                name=name,
                brand=brand,
                product_line=line,
                supplier=supplier,
                supplier_sku=vendor,
                size=size,
                retail=Decimal(retail),
                popularity=pop,
                case_packs=packs,
                hazmat=hazmat,
                slow_freight=hazmat and supplier not in DOMESTIC,
            )
        )
    return items


# --------------------------------------------------------------------------------------------------
# Money, replenishment parameters and stock
# --------------------------------------------------------------------------------------------------

CENT = Decimal("0.01")


def shelf_price(value: Decimal) -> Decimal:
    """Round a computed price to a shelf price ending in 9 cents (22.087 -> 22.09)."""
    tenths = (value * 10).quantize(Decimal("1"), rounding=ROUND_HALF_UP) / 10
    return max(tenths - CENT, Decimal("0.99")).quantize(CENT)


def assign_commercials(rng: random.Random, item: Item) -> None:
    retail = shelf_price(item.retail)
    markup = Decimal(str(round(rng.uniform(1.85, 2.15), 3)))
    cost = (retail / markup).quantize(CENT, rounding=ROUND_HALF_UP)
    item.popularity = min(max(item.popularity, 1), 5)
    case_pack = rng.choice(item.case_packs)
    moq = min(case_pack * rng.choice([1, 1, 2]), 24)

    lead_override = ""
    supplier_lead = SUPPLIER_LEAD[item.supplier]
    if item.slow_freight:
        lead_override = str(supplier_lead + rng.choice([7, 10, 14]))
    elif rng.random() < 0.04:
        lead_override = str(max(5, supplier_lead + rng.choice([-2, 3, 5, 7])))
    lead = int(lead_override) if lead_override else supplier_lead

    # Safety stock covers demand variability; the reorder point adds expected demand over the
    # lead time; the order-up-to level adds a cycle of stock (at least one case).
    weekly = item.popularity**1.6 * rng.uniform(0.35, 0.6)
    safety = max(1, round(weekly * rng.uniform(0.8, 1.3)))
    reorder_point = safety + max(1, math.ceil(weekly * lead / 7))
    cycle = max(case_pack, round(weekly * rng.uniform(2.0, 4.0)))
    order_up_to = reorder_point + cycle

    item.fields = {
        "unit_cost": f"{cost}",
        "unit_price": f"{retail}",
        "lead_time_days": lead_override,
        "moq": str(moq),
        "case_pack": str(case_pack),
        "safety_stock": str(safety),
        "reorder_point": str(reorder_point),
        "order_up_to": str(order_up_to),
    }


def make_to_order(item: Item) -> None:
    item.fields.update(safety_stock="0", reorder_point="0", order_up_to="0")


def build(rng: random.Random) -> tuple[list[Item], list[tuple[str, str, int]]]:
    items = colour_items() + other_items()
    for item in items:
        assign_commercials(rng, item)

    # About 15% are made to order: the slowest sellers, ties broken at random.
    n = len(items)
    ranked = sorted(range(n), key=lambda i: (items[i].popularity, rng.random()))
    made_to_order = set(ranked[: round(n * MADE_TO_ORDER_SHARE)])
    for i in made_to_order:
        make_to_order(items[i])

    # A few best sellers were oversold by a channel: negative on hand, nothing elsewhere.
    popular = [i for i in range(n) if items[i].popularity >= 4 and i not in made_to_order]
    negative = set(rng.sample(popular, NEGATIVE_SKUS))

    # About 12% are out of stock everywhere: most of those are made-to-order items with nothing
    # on the shelf, the rest are stock-outs of stocked items waiting for replenishment.
    zero_target = round(n * ZERO_STOCK_SHARE)
    mto_zero = rng.sample(sorted(made_to_order), min(len(made_to_order), zero_target * 2 // 3))
    stocked = [i for i in range(n) if i not in made_to_order and i not in negative]
    stocked_zero = rng.sample(stocked, zero_target - len(mto_zero))
    zero = set(mto_zero) | set(stocked_zero)

    stock: list[tuple[str, str, int]] = []
    for i, item in enumerate(items):
        on_shop_floor = item.popularity >= 4
        if i in negative:
            stock.append((item.sku, "shop-floor", -rng.randint(1, 3)))
            stock.append((item.sku, "warehouse", 0))
            continue
        if i in zero:
            if on_shop_floor:
                stock.append((item.sku, "shop-floor", 0))
            stock.append((item.sku, "warehouse", 0))
            continue
        if i in made_to_order:
            stock.append((item.sku, "warehouse", rng.randint(1, 3)))
            continue
        safety = int(item.fields["safety_stock"])
        order_up_to = int(item.fields["order_up_to"])
        warehouse = rng.randint(1, order_up_to)
        if on_shop_floor:
            stock.append((item.sku, "shop-floor", rng.randint(1, max(2, safety))))
        stock.append((item.sku, "warehouse", warehouse))
    return items, stock


def write(out: Path, items: list[Item], stock: list[tuple[str, str, int]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "suppliers.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(SUPPLIER_HEADER)
        writer.writerows(SUPPLIERS)
    with (out / "skus.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(SKU_HEADER)
        for item in items:
            row = {
                "sku": item.sku,
                "name": item.name,
                "brand": item.brand,
                "colour": item.colour,
                "pigments": item.pigments,
                "size": item.size,
                "hazmat": "true" if item.hazmat else "false",
                "supplier": item.supplier,
                "supplier_sku": item.supplier_sku,
                "product_line": item.product_line,
                **item.fields,
            }
            writer.writerow([row[column] for column in SKU_HEADER])
    with (out / "stock.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(STOCK_HEADER)
        writer.writerows(stock)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    items, stock = build(random.Random(SEED))
    codes = [item.sku for item in items]
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    if duplicates:
        raise SystemExit(f"duplicate SKU codes: {duplicates}")
    write(args.out, items, stock)
    negative = sum(1 for _, _, qty in stock if qty < 0)
    print(
        f"wrote {len(SUPPLIERS)} suppliers, {len(items)} SKUs, {len(stock)} stock rows "
        f"({negative} negative) to {args.out}"
    )


if __name__ == "__main__":
    main()
