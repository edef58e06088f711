"""Zero-sale weeks that an export left out.

Shopify (and many shops' own exports) write no row for a listing in a week it sold nothing. PPML needs those
weeks: without them the lifts are measured on selling weeks only and come out biased. A listing-week is missing
when the listing appears in the exports, the week lies inside the exports' period, a photo of the listing was
live at mid-week, and no row covers it. When the exports hold no zero-unit row at all and such weeks exist, the
exports are taken to leave out zero-sale weeks: with ``fill_zeros`` they are added as zero units at the listing's
median price, and otherwise the report warns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imagelift.influence.records import CategoryRecords, join_categories
from imagelift.influence.sales import Rejections, SalesTable

FILLED_SOURCE = "(zero-sale week added)"


def missing_weeks(sales: SalesTable, records: CategoryRecords) -> pd.DataFrame:
    """The missing listing-weeks with a live photo, joined to their category, as zero-unit rows (``_rows`` 0)."""
    frame = sales.frame
    if frame.empty:
        return frame.iloc[0:0]
    weeks = pd.date_range(frame["week"].min(), frame["week"].max(), freq="7D")
    listings = frame[["product_id", "listing_id"]].drop_duplicates()
    grid = listings.merge(pd.DataFrame({"week": weeks}), how="cross")
    present = pd.MultiIndex.from_frame(frame[["product_id", "listing_id", "week"]])
    gaps = grid[~pd.MultiIndex.from_frame(grid).isin(present)]
    if gaps.empty:
        return frame.iloc[0:0]
    price = frame.groupby(["product_id", "listing_id"])["price"].median().rename("price")
    gaps = gaps.join(price, on=["product_id", "listing_id"]).assign(
        units=0.0,
        **{c: 0.0 for c in sales.controls},
        _source=FILLED_SOURCE,
        _line=0,
        _rows=0,
    )
    gaps = gaps[frame.columns].reset_index(drop=True)
    # only weeks a photo was live: the join's own rules, its rejections of these made-up rows thrown away
    return join_categories(gaps, records, Rejections())


def handle_missing_zero_weeks(
    joined: pd.DataFrame, sales: SalesTable, records: CategoryRecords, fill: bool
) -> tuple[pd.DataFrame, int, int]:
    """``joined`` with the missing zero-sale weeks added when ``fill`` (and the exports omit them), the number of
    missing weeks found when the exports look like they omit zero-sale weeks (else 0), and the number added."""
    if (sales.frame["units"] == 0).any():
        return joined, 0, 0  # the exports write zero-sale weeks: a missing week is a week not on sale
    gaps = missing_weeks(sales, records)
    if gaps.empty:
        return joined, 0, 0
    if not fill:
        return joined, len(gaps), 0
    added = pd.concat([joined, gaps[joined.columns]], ignore_index=True)
    added["category"] = added["category"].astype(np.int64)
    return added, len(gaps), len(gaps)
