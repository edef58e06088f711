"""Numbers as shops write them: currency symbols and codes, thousands separators, a decimal comma.

``decimal`` is ``.`` (``7,120.00`` is 7120), ``,`` (``7.120,00`` and ``71,20``) or ``auto``: one convention per
file, taken from the values themselves. A value that reads only one way (``71,20``, ``1.234,56``, ``7,120.50``)
decides; a file whose values disagree is an error asking for ``--decimal``; a file where every value reads either
way (``7,120``) keeps the point. A value that is not a number under the file's convention is NaN (the row is
rejected as ``non_numeric``, the file is kept).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# currency signs and ISO codes before or after the number, and the blanks shops put inside numbers
_CURRENCY = re.compile(r"^\s*(?:[A-Z]{3}\s*)?[$€£¥₹]?\s*|\s*[$€£¥₹]?\s*(?:[A-Z]{3})?\s*$")
_BLANKS = re.compile(r"[\s\u00a0\u202f']")
_POINT = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_COMMA = re.compile(r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)?(?:,\d+)?$")
_PLAIN = re.compile(r"^[+-]?\d+$")


class DecimalError(ValueError):
    """The values of one file read differently under the two decimal conventions; the message says how to choose."""


def _clean(value: str) -> str:
    text = _CURRENCY.sub("", value)
    negative = text.startswith("(") and text.endswith(")")  # accounting style
    text = _BLANKS.sub("", text.strip("()"))
    if text.startswith("-$") or text.startswith("$-"):
        text = "-" + text[2:]
    text = text.lstrip("$€£¥₹")
    return "-" + text if negative else text


def _reads(text: str) -> tuple[bool, bool]:
    """Whether the text is a number with a decimal point, and with a decimal comma."""
    if not text or _PLAIN.match(text):
        return True, True
    return bool(_POINT.match(text)) and text not in {"+", "-", "."}, bool(_COMMA.match(text))


def decimal_convention(uniques: list[str], explicit: str = "auto") -> str:
    """``.`` or ``,`` for values like these (cleaned), or :class:`DecimalError` when they disagree."""
    if explicit in {".", ","}:
        return explicit
    point_only = comma_only = None
    for text in uniques:
        point, comma = _reads(text)
        if point and not comma and point_only is None and ("." in text or "," in text):
            point_only = text
        if comma and not point and comma_only is None:
            comma_only = text
        if point_only and comma_only:
            raise DecimalError(
                f"numbers are written both with a decimal point ({point_only!r}) and a decimal comma "
                f"({comma_only!r}); set --decimal . or --decimal , (REPORT_DECIMAL)"
            )
    return "," if comma_only else "."


def _to_float(text: str, decimal: str) -> float:
    if not text:
        return np.nan
    if decimal == ",":
        if not _COMMA.match(text):
            return np.nan
        text = text.replace(".", "").replace(",", ".")
    else:
        if not _POINT.match(text):
            return np.nan
        text = text.replace(",", "")
    try:
        return float(text)
    except ValueError:
        return np.nan


def parse_numbers(columns: dict[str, pd.Series], decimal: str = "auto") -> tuple[dict[str, np.ndarray], str]:
    """Each column's values as floats (NaN where not a number) under one convention for all of them."""
    cleaned: dict[str, tuple[np.ndarray, list[str]]] = {}
    pool: list[str] = []
    for name, values in columns.items():
        codes, uniques = pd.factorize(values)
        texts = [_clean(str(u)) for u in uniques]
        cleaned[name] = (codes, texts)
        pool.extend(texts)
    convention = decimal_convention(pool, decimal)
    out = {}
    for name, (codes, texts) in cleaned.items():
        parsed = np.array([_to_float(t, convention) for t in texts], dtype=np.float64)
        out[name] = parsed[codes] if len(parsed) else np.full(len(codes), np.nan)
    return out, convention
