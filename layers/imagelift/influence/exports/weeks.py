"""Dates to weeks: one date format per file, inferred from the whole column, and the week convention.

A file's format is the candidate that reads the most of its distinct dates. Day-first and month-first formats
that read the same values to different dates (every day in the file is 12 or less) are never guessed between:
that is a :class:`DateFormatError` saying to set ``--dayfirst`` or ``--monthfirst``. Words such as ``today`` or
``now`` are not dates. Weeks run Monday to Sunday; a weekly file whose dates all fall on a Sunday labels each week
by the Sunday it starts on (Shopify, US retail calendars), and is moved to the Monday after.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

ISO = "ISO8601"
# (format, day_first): None means the format does not depend on the day/month order
FORMATS: tuple[tuple[str, bool | None], ...] = (
    (ISO, None),
    ("%Y/%m/%d", None),
    ("%m/%d/%Y", False),
    ("%d/%m/%Y", True),
    ("%m/%d/%y", False),
    ("%d/%m/%y", True),
    ("%m-%d-%Y", False),
    ("%d-%m-%Y", True),
    ("%d.%m.%Y", True),
    ("%d.%m.%y", True),
    ("%b %d, %Y", None),
    ("%d %b %Y", None),
    ("%B %d, %Y", None),
    ("%d %B %Y", None),
    ("%a, %b %d, %Y", None),
)


class DateFormatError(ValueError):
    """A file's dates cannot be read one way; the message says how to choose."""


def _parse(values: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, format=fmt, errors="coerce", utc=True)
    return parsed.dt.tz_localize(None).dt.normalize()


def parse_dates(values: pd.Series, dayfirst: bool | None = None) -> tuple[pd.Series, str]:
    """Each value's date (NaT where it does not read in the file's one format) and that format."""
    codes, uniques = pd.factorize(values)
    text = pd.Series(pd.Index(uniques, dtype=object).astype(str))
    looks_like_date = text.str.contains(r"\d", regex=True)  # "today", "now", "week 12" are never dates
    candidates = [(f, d) for f, d in FORMATS if dayfirst is None or d is None or d == dayfirst]
    results = []
    for fmt, order in candidates:
        parsed = _parse(text.where(looks_like_date, ""), fmt)
        results.append((int(parsed.notna().sum()), fmt, order, parsed))
    best = max(r[0] for r in results) if results else 0
    if best == 0:
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]"), "none"
    winners = [r for r in results if r[0] == best]
    orders = {r[2] for r in winners if r[2] is not None}
    if len(orders) > 1:
        by_order = {r[2]: r[3] for r in winners if r[2] is not None}
        if not by_order[True].equals(by_order[False]):
            example = next(t for t, a, b in zip(text, by_order[True], by_order[False], strict=True) if a != b)
            raise DateFormatError(
                f"dates such as {example!r} read as day/month and as month/day alike; rerun with --dayfirst "
                "or --monthfirst (REPORT_DAYFIRST=true or false)"
            )
    _, fmt, _, parsed = winners[0]
    dates = parsed.to_numpy(dtype="datetime64[ns]")
    out = dates[codes] if len(dates) else np.array([], dtype="datetime64[ns]")
    out = np.where(codes < 0, np.datetime64("NaT"), out)
    return pd.Series(out, index=values.index, dtype="datetime64[ns]"), fmt


def file_period(dates: pd.Series, listing: pd.Series, hint: str = "auto") -> str:
    """``day`` when the dates fall on more than one weekday, else ``week`` (unless the layout says which)."""
    if hint in {"day", "week"}:
        return hint
    valid = dates.dropna()
    if valid.empty:
        return "week"
    if valid.dt.day_of_week.nunique() > 1:
        return "day"
    return "week"


def week_start(dates: pd.Series, period: str, convention: str = "auto") -> tuple[pd.Series, str]:
    """The Monday of each row's week, and the convention used (``monday`` or ``sunday``)."""
    valid = dates.dropna()
    if convention == "auto":
        # one date says nothing about a convention; several weeks all labelled by a Sunday do
        sundays = period == "week" and valid.nunique() > 1 and bool((valid.dt.day_of_week == 6).all())
        convention = "sunday" if sundays else "monday"
    shifted = dates + pd.Timedelta(days=1) if convention == "sunday" else dates
    return shifted - pd.to_timedelta(shifted.dt.day_of_week, unit="D"), convention
