"""Overlapping exports: the same listing-day or listing-week in several files, the newest file wins.

Re-exporting the last weeks is the normal case, so rows a newer file also covers are ``superseded`` (counted,
not rejected). "Newest" is the file's S3 LastModified (or mtime locally); files without one rank by the order
they were given, later ones newer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def newest_wins(frame: pd.DataFrame, keys: list[str], rank: str = "_rank") -> np.ndarray:
    """Mask of the rows to keep: for each key, only the rows of its highest-ranked file."""
    if frame.empty:
        return np.ones(0, dtype=bool)
    best = frame.groupby(keys, sort=False, dropna=False)[rank].transform("max")
    return (frame[rank] == best).to_numpy()


def resolve_overlaps(frame: pd.DataFrame) -> np.ndarray:
    """Keep-mask over rows with ``_period`` (``day``/``week``), ``date``, ``week``, ids and ``_rank``.

    Daily rows compete per listing-day, weekly rows per listing-week; where daily and weekly rows cover the same
    listing-week, the side with the newer file keeps it.
    """
    keep = np.ones(len(frame), dtype=bool)
    ids = ["product_id", "listing_id"]
    daily = (frame["_period"] == "day").to_numpy()
    if daily.any():
        keep[daily] = newest_wins(frame[daily], [*ids, "date"])
    weekly = ~daily
    if weekly.any():
        keep[weekly] = newest_wins(frame[weekly], [*ids, "week"])
    if daily.any() and weekly.any():
        kept = frame[keep]
        side_best = kept.groupby([*ids, "week", "_period"], sort=False)["_rank"].max().unstack("_period")
        both = side_best.dropna()
        if not both.empty:
            winner = pd.Series(np.where(both["day"] > both["week"], "day", "week"), index=both.index, name="_winner")
            joined = frame[[*ids, "week", "_period"]].join(winner, on=[*ids, "week"])
            loses = joined["_winner"].notna() & (joined["_winner"] != joined["_period"])
            keep &= ~loses.to_numpy()
    return keep
