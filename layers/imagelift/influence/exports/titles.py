"""Product names from an export's title column, for people to read beside the ids the report keys on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from imagelift.influence.report import PerProductEffect

MAX_TITLE_CHARS = 200
"""Longer names are cut (with an ellipsis): a title is a label on the page, not data."""


def product_titles(product_codes: np.ndarray, product_ids: Sequence[str], titles: pd.Series) -> dict[str, str]:
    """Each product's first non-blank title in the file's row order (blanks squeezed, long ones cut).

    ``product_codes`` index ``product_ids`` row by row (as :func:`pandas.factorize` gives them): the work is on
    integer codes, so a million-row export costs a few tens of milliseconds.
    """
    codes, uniques = pd.factorize(titles, use_na_sentinel=True)
    texts = pd.Index(uniques, dtype=object).astype(str).str.strip().str.replace(r"\s+", " ", regex=True)
    texts = np.asarray(
        [t if len(t) <= MAX_TITLE_CHARS else t[: MAX_TITLE_CHARS - 1].rstrip() + "\u2026" for t in texts], dtype=object
    )
    blank = np.asarray(texts == "", dtype=bool)
    rows = np.flatnonzero(codes >= 0)
    rows = rows[~blank[codes[rows]]]
    if not len(rows):
        return {}
    first = np.full(len(product_ids), len(codes), dtype=np.int64)
    np.minimum.at(first, product_codes[rows], rows)  # each product's first titled row
    named = np.flatnonzero(first < len(codes))
    ids = np.asarray(product_ids, dtype=object)
    return {str(ids[p]): str(texts[codes[first[p]]]) for p in named}


def merge_titles(per_file: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """Titles over several files, given oldest first: a newer export's name for a product wins."""
    merged: dict[str, str] = {}
    for titles in per_file:
        merged.update(titles)
    return merged


def with_titles(effects: Iterable[PerProductEffect], titles: Mapping[str, str]) -> tuple[PerProductEffect, ...]:
    """The per-product effects, each named by its product's title when an export gave one."""
    if not titles:
        return tuple(effects)
    return tuple(replace(e, title=titles[e.product_id]) if e.product_id in titles else e for e in effects)
