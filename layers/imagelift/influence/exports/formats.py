"""Export layouts: which header of a shop's export holds each field the report needs.

The report needs, per row: a date (``week``), ``product_id``, ``listing_id``, ``units`` and either ``price`` (per
unit) or ``sales`` (the row's revenue, from which price = sales / units). A preset names the headers exactly as
the shop writes them; ``--columns field=Header,...`` (``REPORT_COLUMNS``) overrides or completes any of them.

How ids meet the photo keys (``images/<product_id>/<listing_id>/<file>``):

- ``shopify``: ``Variant SKU`` is the listing folder; the product folder is the product handle (``Product handle``
  when the export has it, else the handle Shopify derives from ``Product title``: lower case, every run of other
  characters a ``-``, so "Classic Leather Boot" is ``classic-leather-boot``).
- ``amazon-business-report``: ``(Child) ASIN`` is the listing folder and ``(Parent) ASIN`` the product folder.
- ``imagelift``: the columns ``week, product_id, listing_id, units, price`` as they are.

A product's name (``title``), when the export has one, is carried beside its id for people to read: Shopify's
``Product title`` (``Title`` in its products export), Amazon's ``Title`` (``item-name`` in its listings reports),
the generic layout's ``title``. It is never part of an id's match; ``--columns title=Header`` names another header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas only where a frame is handled: the command line imports this module for its choices
    import pandas as pd

FIELDS = ("week", "product_id", "listing_id", "units", "price", "sales")
"""Fields a column can be mapped to; ``price`` or ``sales`` is needed, the others always."""
REQUIRED = ("week", "product_id", "listing_id", "units")
TITLE = "title"
"""The optional field holding the product's name for people; read beside the fields, never renamed into them
(Shopify's ``Product title`` may be the product id's source and the title at once)."""


class ColumnError(ValueError):
    """A file lacks a needed column, or a mapping names a field that does not exist."""


@dataclass(frozen=True)
class Preset:
    name: str
    columns: Mapping[str, Sequence[str]]
    """Field -> the headers that may hold it, first found wins (compared case- and blank-insensitively)."""
    period: str = "auto"
    """``day``: one row per listing and day; ``week``: one per listing and week (any date inside the week names
    it); ``auto``: daily when the dates fall on more than one weekday."""
    derived_ids: Mapping[str, str] = field(default_factory=dict)
    """Field -> how a mapped header's text becomes an id (``handle``) when the id column is a title."""
    titles: Sequence[str] = ()
    """Headers that may hold the product's name, first found wins."""


def shopify_handle(title: str) -> str:
    """The handle Shopify gives a product of this title (lower case, other characters runs of ``-``)."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


PRESETS: dict[str, Preset] = {
    "imagelift": Preset(
        "imagelift",
        {
            "week": ("week",),
            "product_id": ("product_id",),
            "listing_id": ("listing_id",),
            "units": ("units",),
            "price": ("price",),
            "sales": ("sales",),
        },
        period="week",
        titles=("title", "product_title"),
    ),
    # Analytics > Reports > "Sales by product variant SKU" over days, exported as CSV.
    "shopify": Preset(
        "shopify",
        {
            # the report's column names, then the same columns as ShopifyQL exports name them
            "week": ("Day", "Week", "Date", "day", "week"),
            "product_id": ("Product handle", "Product title", "product_handle", "product_title"),
            "listing_id": ("Variant SKU", "Product variant SKU", "product_variant_sku", "variant_sku"),
            "units": ("Net quantity", "Net items sold", "Quantity ordered", "net_items_sold", "net_quantity"),
            "sales": ("Net sales", "net_sales"),
        },
        period="auto",
        derived_ids={"product_id": "handle"},
        titles=("Product title", "Title", "product_title"),
    ),
    # Seller Central > Reports > Business Reports > "Detail Page Sales and Traffic By Child Item", one row per day.
    "amazon-business-report": Preset(
        "amazon-business-report",
        {
            "week": ("Date", "Day"),
            "product_id": ("(Parent) ASIN",),
            "listing_id": ("(Child) ASIN",),
            "units": ("Units Ordered", "Units ordered"),
            "sales": ("Ordered Product Sales", "Ordered product sales"),
        },
        period="auto",
        titles=("Title", "Item Name", "item-name", "item_name"),
    ),
}
FORMAT_NAMES = ("auto", *PRESETS)
DECIMALS = ("auto", ".", ",")
"""Decimal marks: per file from the values, or a point or a comma for every file."""
WEEK_STARTS = ("auto", "monday", "sunday")
"""What date labels a weekly row: any day of a Monday week, its Sunday start, or Sunday when every date is one."""


def _norm(header: str) -> str:
    return re.sub(r"\s+", " ", str(header).replace("\ufeff", "")).strip().lower()


def parse_column_mapping(text: str) -> dict[str, str]:
    """``week=Day,listing_id="Variant SKU"`` -> {field: header}; quotes allow commas and blanks in a header."""
    mapping: dict[str, str] = {}
    if not text or not text.strip():
        return mapping
    for part in re.findall(r'(?:[^,"]|"[^"]*")+', text):
        if not part.strip():
            continue
        name, sep, header = part.partition("=")
        name = name.strip().lower()
        header = header.strip().strip('"').strip()
        if not sep or not header:
            raise ColumnError(f"column mapping {part.strip()!r} is not field=Header")
        if name not in FIELDS and name != TITLE:
            raise ColumnError(f"column mapping names unknown field {name!r} (fields: {', '.join((*FIELDS, TITLE))})")
        mapping[name] = header
    return mapping


@dataclass(frozen=True)
class Layout:
    """How one file's headers map onto the fields: the preset it follows and the header of each field."""

    preset: Preset
    headers: dict[str, str]
    """Field -> the file's own header."""
    controls: dict[str, str]
    """Control name -> the file's own header."""
    title: str | None = None
    """The file's header holding the product's name, if it has one."""


def _find(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    by_norm = {_norm(c): c for c in columns}
    for candidate in candidates:
        if _norm(candidate) in by_norm:
            return by_norm[_norm(candidate)]
    return None


def _try(preset: Preset, columns: Sequence[str], mapping: Mapping[str, str], controls: Sequence[str]):
    headers: dict[str, str] = {}
    missing: list[str] = []
    for name in FIELDS:
        wanted = (mapping[name],) if name in mapping else preset.columns.get(name, ())
        found = _find(columns, wanted)
        if found is not None:
            headers[name] = found
        elif name in REQUIRED or name in mapping:
            missing.append(f"{name} ({' or '.join(repr(w) for w in wanted)})" if wanted else name)
    if "price" not in headers and "sales" not in headers:
        price = preset.columns.get("price", ()) or preset.columns.get("sales", ())
        missing.append(f"price or sales ({' or '.join(repr(w) for w in price)})" if price else "price or sales")
    title = _find(columns, (mapping[TITLE],) if TITLE in mapping else preset.titles)
    if title is None and TITLE in mapping:
        missing.append(f"{TITLE} ({mapping[TITLE]!r})")
    control_headers = {}
    for control in controls:
        found = _find(columns, (control,))
        if found is None:
            missing.append(repr(control))
        else:
            control_headers[control] = found
    return headers, control_headers, title, missing


def resolve_layout(
    columns: Sequence[str], sales_format: str, mapping: Mapping[str, str], controls: Sequence[str] = ()
) -> Layout:
    """The layout of a file with these headers; ``auto`` picks the first preset the headers satisfy."""
    if sales_format not in FORMAT_NAMES:
        raise ColumnError(f"unknown sales format {sales_format!r} (one of {', '.join(FORMAT_NAMES)})")
    candidates = list(PRESETS.values()) if sales_format == "auto" else [PRESETS[sales_format]]
    first_missing: list[str] = []
    for preset in candidates:
        headers, control_headers, title, missing = _try(preset, columns, mapping, controls)
        if not missing:
            return Layout(preset, headers, control_headers, title)
        # the error names what the closest layout lacks
        if not first_missing or len(missing) < len(first_missing):
            first_missing = missing
    shown = ", ".join(str(c) for c in columns)
    hint = "" if sales_format != "auto" else "; name the layout with --format or map headers with --columns"
    raise ColumnError(f"lacks column(s) {', '.join(first_missing)} (it has {shown}){hint}")


def apply_layout(raw: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """The file's frame with its mapped columns renamed to the fields (and controls), ids derived where set."""
    import pandas as pd

    columns = {header: name for name, header in layout.headers.items()}
    columns |= {header: name for name, header in layout.controls.items()}
    frame = raw[list(columns)].rename(columns=columns)
    for name, rule in layout.preset.derived_ids.items():
        # a handle column (when the export has one) is already an id; only a title needs deriving
        if (
            rule == "handle"
            and name in frame
            and _norm(layout.headers[name]) not in {"product handle", "product_handle"}
        ):
            codes, uniques = pd.factorize(frame[name])
            frame[name] = pd.Index([shopify_handle(u) for u in uniques], dtype=object).to_numpy()[codes]
    return frame
