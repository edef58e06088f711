"""Product names from an export's title column, for people to read beside the ids the report keys on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from imagelift.influence.report import PerProductEffect

MAX_TITLE_CHARS = 200
"""Longer names are cut (with an ellipsis): a title is a label on the page, not data."""


def product_titles(product_ids: np.ndarray, titles: pd.Series) -> dict[str, str]:
    """Each product's first non-blank title in the file's row order (blanks stripped, long ones cut)."""
    codes, uniques = pd.factorize(titles, use_na_sentinel=True)
    texts = pd.Index(uniques, dtype=object).astype(str).str.strip().str.replace(r"\s+", " ", regex=True)
    texts = np.asarray(
        [t if len(t) <= MAX_TITLE_CHARS else t[: MAX_TITLE_CHARS - 1].rstrip() + "\u2026" for t in texts], dtype=object
    )
    known = codes >= 0
    known[known] = texts[codes[known]] != ""
    if not known.any():
        return {}
    found = pd.Series(texts[codes[known]], index=pd.Index(np.asarray(product_ids, dtype=object)[known]))
    found = found[~found.index.duplicated(keep="first")]
    return {str(k): str(v) for k, v in found.items()}


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
