"""Inline SVG charts that stay readable from a phone to a desktop.

An SVG with a viewBox scales its text with its width, so one drawing cannot be readable at both 390 and 1280 CSS
px. Each interval chart is drawn twice, a wide layout (labels left of the bars) and a narrow one (each label above
its bar), and the stylesheet shows the one that fits. Each drawing records the narrowest width it is shown at
(``data-min-width``, CSS px): its smallest font size times that width over the viewBox width is the smallest text
a reader sees, kept at 12 px or more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from imagelift.influence.page.format import escape, pct
from imagelift.influence.page.style import WIDE_FROM_PX, chart_gutter_px
from imagelift.influence.report import Effect

MIN_TEXT_PX = 12
"""The smallest text, in CSS px, any chart shows at any width it is drawn at."""
PHONE_PX = 390
"""The narrowest screen the narrow drawing is sized for."""
WIDE_VIEWBOX = 760
NARROW_VIEWBOX = 360


@dataclass(frozen=True)
class ChartRow:
    label: str
    colour: str
    effect: Effect
    hollow: bool = False
    """Drawn as an open circle: the second of two estimates of one effect."""


AXIS_LIMITS = (-100.0, 300.0)
"""The axis never runs past these (percent): a range reaching beyond is cut at the edge and marked with an arrow,
so one estimate with almost no data cannot squash every other bar to a dot."""


def nice_step(raw: float) -> float:
    """The round step (1, 2, 2.5 or 5 times a power of ten) at or above ``raw``."""
    if not (raw > 0 and math.isfinite(raw)):
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-12))


def _ticks(lo: float, hi: float, count: int) -> list[float]:
    step = nice_step((hi - lo) / count)
    first = math.ceil(lo / step - 1e-9)
    return [round(k * step, 10) for k in range(first, math.floor(hi / step + 1e-9) + 1)]


def _bounds(rows: Sequence[ChartRow]) -> tuple[float, float]:
    values = [0.0]
    for row in rows:
        values += [row.effect.effect_pct_ci[0], row.effect.effect_pct_ci[1], row.effect.effect_pct]
    lo, hi = max(min(values), AXIS_LIMITS[0]), min(max(values), AXIS_LIMITS[1])
    pad = max((hi - lo) * 0.12, 1.0)
    return lo - pad, hi + pad


def _clip(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def _marker(row: ChartRow, x: Callable[[float], float], lo: float, hi: float, y: float, radius: float) -> str:
    """The range bar and the estimate's dot; a range cut at the axis's edge ends in an arrow there."""
    low, high = row.effect.effect_pct_ci
    fill = "#ffffff" if row.hollow else row.colour
    # the second estimate's bar is dashed, so the two read apart without colour
    line = 'stroke-linecap="butt" stroke-dasharray="9 4"' if row.hollow else 'stroke-linecap="round"'
    parts = [
        f'<line x1="{x(_clip(low, lo, hi)):.1f}" y1="{y:.1f}" x2="{x(_clip(high, lo, hi)):.1f}" y2="{y:.1f}" '
        f'stroke="{row.colour}" stroke-width="6" {line} opacity="0.45"/>'
    ]
    for end, side in ((low, -1), (high, 1)):
        if (end < lo) if side < 0 else (end > hi):
            tip = x(lo if side < 0 else hi)
            parts.append(
                f'<path d="M{tip:.1f} {y:.1f} l{-9 * side} -7 v14 z" fill="{row.colour}"><title>range continues to '
                f"{pct(end)}</title></path>"
            )
    mid = x(_clip(row.effect.effect_pct, lo, hi))
    parts.append(
        f'<circle cx="{mid:.1f}" cy="{y:.1f}" r="{radius}" fill="{fill}" stroke="{row.colour}" stroke-width="3"/>'
    )
    return "".join(parts)


def _svg_open(width: int, height: int, level: float, layout: str, min_width: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-{layout}" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" data-min-width="{min_width}" aria-label="{escape(title)}, {level:.0%} ranges">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>'
    )


def _wide(rows: Sequence[ChartRow], level: float, title: str) -> str:
    lo, hi = _bounds(rows)
    width, left, right, row_h, top = WIDE_VIEWBOX, 270, 24, 50, 34
    height = top + row_h * len(rows) + 40
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    parts = [_svg_open(width, height, level, "wide", WIDE_FROM_PX - 2 * chart_gutter_px("wide"), title)]
    for t in _ticks(lo, hi, 6):
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{top - 10}" x2="{x(t):.1f}" y2="{height - 32}" stroke="#e5e7eb"/>'
            f'<text x="{x(t):.1f}" y="{height - 10}" font-size="14" text-anchor="middle" fill="#4b5563">'
            f"{t:+g}%</text>"
        )
    parts.append(
        f'<line x1="{x(0):.1f}" y1="{top - 12}" x2="{x(0):.1f}" y2="{height - 32}" stroke="#111827" '
        f'stroke-width="1.5" stroke-dasharray="4 3"/>'
        f'<text x="{x(0):.1f}" y="{top - 16}" font-size="14" text-anchor="middle" fill="#111827">no effect</text>'
    )
    for i, row in enumerate(rows):
        y = top + row_h * i + row_h / 2 + 6
        parts.append(
            f'<text x="{left - 14}" y="{y + 5:.1f}" font-size="15" text-anchor="end" fill="#111827">'
            f"{escape(row.label)}</text>"
            + _marker(row, x, lo, hi, y, 7)
            + f'<text x="{x(_clip(row.effect.effect_pct, lo, hi)):.1f}" y="{y - 13:.1f}" font-size="14" '
            'text-anchor="middle" '
            f'fill="{row.colour}" font-weight="bold">{pct(row.effect.effect_pct)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _narrow(rows: Sequence[ChartRow], level: float, title: str) -> str:
    lo, hi = _bounds(rows)
    width, side, row_h, top = NARROW_VIEWBOX, 14, 54, 30
    height = top + row_h * len(rows) + 34
    plot_w = width - 2 * side

    def x(v: float) -> float:
        return side + (v - lo) / (hi - lo) * plot_w

    parts = [_svg_open(width, height, level, "narrow", PHONE_PX - 2 * chart_gutter_px("narrow"), title)]
    for t in _ticks(lo, hi, 4):
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{top - 6}" x2="{x(t):.1f}" y2="{height - 30}" stroke="#e5e7eb"/>'
            f'<text x="{x(t):.1f}" y="{height - 10}" font-size="14" text-anchor="middle" fill="#4b5563">'
            f"{t:+g}%</text>"
        )
    parts.append(
        f'<line x1="{x(0):.1f}" y1="{top - 8}" x2="{x(0):.1f}" y2="{height - 30}" stroke="#111827" '
        f'stroke-width="1.5" stroke-dasharray="4 3"/>'
        f'<text x="{x(0):.1f}" y="{top - 12}" font-size="14" text-anchor="middle" fill="#111827">no effect</text>'
    )
    for i, row in enumerate(rows):
        y_text = top + row_h * i + 18
        y = y_text + 18
        parts.append(
            f'<text x="{side}" y="{y_text:.1f}" font-size="15" fill="#111827">{escape(row.label)}</text>'
            f'<text x="{width - side}" y="{y_text:.1f}" font-size="15" text-anchor="end" fill="{row.colour}" '
            f'font-weight="bold">{pct(row.effect.effect_pct)}</text>' + _marker(row, x, lo, hi, y, 6)
        )
    parts.append("</svg>")
    return "".join(parts)


def interval_chart(rows: Sequence[ChartRow], level: float, title: str) -> str:
    """Horizontal interval chart: one line per row, a dot at the estimate, a bar for the range, against zero."""
    shown = [row for row in rows if row.effect.estimated]
    if not shown:
        return "<p>No effect could be estimated, so there is nothing to chart.</p>"
    return f"<div class='chart'>{_wide(shown, level, title)}{_narrow(shown, level, title)}</div>"


def interval_bar(low: float, high: float, estimate: float, lo: float, hi: float, colour: str) -> str:
    """A small range bar for a table cell (no text, so it may be any size)."""
    width, height = 160, 16

    def x(v: float) -> float:
        v = min(max(v, lo), hi)
        return 4 + (v - lo) / (hi - lo) * (width - 8)

    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'aria-hidden="true">'
        f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{height}" stroke="#9ca3af" stroke-dasharray="2 2"/>'
        f'<line x1="{x(low):.1f}" y1="8" x2="{x(high):.1f}" y2="8" stroke="{colour}" stroke-width="4" '
        f'opacity="0.45" stroke-linecap="round"/>'
        f'<circle cx="{x(estimate):.1f}" cy="8" r="4" fill="{colour}"/></svg>'
    )
