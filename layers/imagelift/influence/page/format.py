"""How numbers, labels and colours read on the page; every section formats through these."""

from __future__ import annotations

import html
import math
from typing import Any

from imagelift.influence.report import Effect, PerProductEffect
from imagelift.records.categories import BASE, EFFECT_CATEGORIES, by_id

# effect categories take the palette in order; the base is grey and price purple
_PALETTE = ("#1b6ca8", "#d9822b", "#059669", "#db2777", "#0891b2")
COLOURS = {
    **{c.name: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(EFFECT_CATEGORIES)},
    BASE.name: "#6b7280",
    "price": "#7c3aed",
}


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


HUGE_PCT = 10_000.0
"""Beyond this a percentage is shown only as beyond it: the digits of a fit with almost no data say nothing."""


def pct(value: float | None, signed: bool = True, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= HUGE_PCT:
        return f"{'>' if value > 0 else '<'}{math.copysign(HUGE_PCT, value):+,.0f}%"
    return f"{value:+.{digits}f}%" if signed else f"{value:.{digits}f}%"


def span(period: Any) -> str:
    if not period.first_week:
        return "no usable weeks of sales"
    return f"Weeks {period.first_week} to {period.last_week}"


def colour(category_name: str | None) -> str:
    return COLOURS.get(category_name or "", "#111827")


def label(effect: Effect) -> str:
    """How a seller reads the category: its label, capitalised."""
    text = by_id(effect.category).label
    return text[:1].upper() + text[1:]


def interval(effect: Effect | PerProductEffect) -> str:
    low, high = effect.effect_pct_ci
    return f"{pct(low)} to {pct(high)}"


def verdict(effect: Effect) -> str:
    low, high = effect.effect_pct_ci
    if low > 0:
        return "more sales with these photos: the whole range is above zero"
    if high < 0:
        return "fewer sales with these photos: the whole range is below zero"
    return "the data cannot tell this apart from no effect: the range includes zero"


def chance(effect: Effect) -> str:
    p = effect.probability_above_zero
    if p is None:
        return ""
    shown = ">99%" if p > 0.99 else "<1%" if p < 0.01 else f"{p:.0%}"
    return f"chance the effect is above zero: {shown}"


def effect_cell(effect: Effect | None) -> str:
    """A table cell with an effect and its range, or n/a with the reason."""
    if effect is None or not effect.estimated:
        return f"<td>n/a <span class='muted'>{escape((effect.note if effect else '') or '')}</span></td>"
    return f"<td>{pct(effect.effect_pct)} <span class='muted'>({interval(effect)})</span></td>"


def table(head: str, body: str, css_class: str = "") -> str:
    """A table inside a box that scrolls sideways when it is wider than the screen."""
    attrs = f" class='{css_class}'" if css_class else ""
    return f"<div class='scroll'><table{attrs}>{head}{body}</table></div>"
