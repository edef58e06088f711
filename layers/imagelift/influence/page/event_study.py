"""The event study around photo switches (a chart per photo type) and the threat checks' table."""

from __future__ import annotations

import math

from imagelift.influence.event_study import EARLY_WEEKS, LATE_WEEKS
from imagelift.influence.page.context import Page
from imagelift.influence.page.format import colour, escape, pct, table
from imagelift.influence.page.style import WIDE_FROM_PX, chart_gutter_px
from imagelift.influence.page.svg import NARROW_VIEWBOX, PHONE_PX, WIDE_VIEWBOX, nice_step
from imagelift.influence.report import EventBin, EventStudy, ThreatCheck
from imagelift.records.categories import BASE

LEAD_COLOUR = "#6b7280"
SHOWN_RANGE = (-60.0, 150.0)
"""Ranges beyond these percentages are cut at the chart's edge (a few listings in a week can be very noisy)."""


def _pct_of(log_points: float) -> float:
    return 100 * math.expm1(log_points)


def _bounds(bins: list[EventBin]) -> tuple[float, float]:
    values = [0.0]
    for b in bins:
        values += [_pct_of(b.ci_low), _pct_of(b.ci_high)]
    lo, hi = max(min(values), SHOWN_RANGE[0]), min(max(values), SHOWN_RANGE[1])
    pad = max((hi - lo) * 0.08, 2.0)
    return lo - pad, hi + pad


def _ticks(lo: float, hi: float, count: int) -> list[float]:
    step = nice_step((hi - lo) / count)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def event_chart(study: EventStudy, layout: str) -> str:
    """Effect per week from the switch: a dot and a range per week, leads grey, the switch marked."""
    bins = [b for b in study.bins if b.estimate is not None and b.std_err is not None]
    if layout == "wide":
        width, left, right, top, bottom, label_every = WIDE_VIEWBOX, 64, 16, 34, 52, 1
        min_width = WIDE_FROM_PX - 2 * chart_gutter_px("wide")
        height = 300
    else:
        width, left, right, top, bottom, label_every = NARROW_VIEWBOX, 52, 8, 34, 52, 4
        min_width = PHONE_PX - 2 * chart_gutter_px("narrow")
        height = 280
    lo, hi = _bounds(bins)
    weeks = [b.relative_week for b in study.bins]
    first, last = min(weeks), max(weeks)
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / (last - first + 1)

    def x(week: int) -> float:
        return left + (week - first + 0.5) * step

    def y(value: float) -> float:
        value = min(max(value, lo), hi)
        return top + (hi - value) / (hi - lo) * plot_h

    title = f"{study.category_name.capitalize()} photos: sales by week from the switch"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-{layout}" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" data-min-width="{min_width}" aria-label="{escape(title)}">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>'
    ]
    for t in _ticks(lo, hi, 4):
        parts.append(
            f'<line x1="{left}" y1="{y(t):.1f}" x2="{width - right}" y2="{y(t):.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y(t) + 5:.1f}" font-size="14" text-anchor="end" fill="#4b5563">{t:+g}%</text>'
        )
    switch_x = left + (0 - first) * step
    parts.append(
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="#111827" '
        'stroke-width="1.5" stroke-dasharray="4 3"/>'
        f'<line x1="{switch_x:.1f}" y1="{top - 6}" x2="{switch_x:.1f}" y2="{top + plot_h}" stroke="#111827" '
        'stroke-width="1"/>'
        f'<text x="{switch_x + 4:.1f}" y="{top - 12}" font-size="14" fill="#111827">photo switched</text>'
        f'<text x="{left}" y="{top - 12}" font-size="14" fill="{LEAD_COLOUR}">before</text>'
    )
    lag_colour = colour(study.category_name)
    for b in bins:
        tone = LEAD_COLOUR if b.lead else lag_colour
        low, high, mid = _pct_of(b.ci_low), _pct_of(b.ci_high), _pct_of(b.estimate)
        parts.append(
            f'<line x1="{x(b.relative_week):.1f}" y1="{y(low):.1f}" x2="{x(b.relative_week):.1f}" y2="{y(high):.1f}" '
            f'stroke="{tone}" stroke-width="4" opacity="0.45" stroke-linecap="round"/>'
            f'<circle cx="{x(b.relative_week):.1f}" cy="{y(mid):.1f}" r="4.5" fill="{tone}"/>'
        )
    for week in weeks:
        if week % label_every == 0 or week in (first, last):
            text = f"{week:+d}" if first < week < last else (f"≤{week}" if week == first else f"≥+{week}")
            parts.append(
                f'<text x="{x(week):.1f}" y="{top + plot_h + 20}" font-size="14" text-anchor="middle" '
                f'fill="#4b5563">{text}</text>'
            )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" font-size="14" text-anchor="middle" fill="#4b5563">'
        "weeks from the switch</text></svg>"
    )
    return "".join(parts)


def _study_summary(study: EventStudy, level: float, checks: tuple[ThreatCheck, ...]) -> str:
    after, growth = study.after, study.growth
    placebo = next(
        (c for c in checks if c.check == "placebo_leads" and c.quantity == f"{study.category_name} switches"), None
    )
    lines = []
    if after is not None and after.estimated:
        lo, hi = after.effect_pct_ci
        lines.append(
            f"All weeks from the switch on: {pct(after.effect_pct)} ({level:.0%} range {pct(lo)} to {pct(hi)}), "
            f"from {study.switches:,} listings in {study.products:,} products."
        )
    if study.pretrend_p_value is not None:
        moved = placebo.moved if placebo is not None else study.pretrend_p_value < 1 - level
        lines.append(
            f"Before the switch: joint test that sales did not move, p = {study.pretrend_p_value:.3f}"
            + (" &mdash; <strong>they did move</strong>." if moved else " (no sign that they did).")
        )
    if growth is not None and growth.estimated and study.early is not None and study.late is not None:
        lines.append(
            f"Weeks {EARLY_WEEKS[0]}-{EARLY_WEEKS[-1]} after the switch: {pct(study.early.effect_pct)}; weeks "
            f"{LATE_WEEKS[0]} and later: {pct(study.late.effect_pct)}."
        )
    return "<p class='muted'>" + " ".join(lines) + "</p>"


def section_event_study(page: Page) -> str:
    """Sales of switching listings week by week around the switch, against what they would have sold without it."""
    studies = page.report.event_study
    if not studies:
        return ""
    out = [
        f"<h2>Around each photo switch</h2><p>Listings that switched from {escape(BASE.label)} photos, week by "
        "week: how much more (or less) they sold than they would have without the switch, judged from listings that "
        "had not switched yet. Grey dots before the switch should sit near zero; if they climb, sales were already "
        "moving and the photo may not be the cause.</p>"
    ]
    for study in studies:
        name = study.category_name.capitalize()
        if study.note or not study.bins:
            out.append(
                f"<div class='card'><strong>{escape(name)} photos</strong><p>{escape(study.note or '')}</p></div>"
            )
            continue
        out.append(
            f"<div class='card'><strong>{escape(name)} photos</strong><div class='chart'>"
            f"{event_chart(study, 'wide')}{event_chart(study, 'narrow')}</div>"
            f"{_study_summary(study, page.level, page.report.checks)}</div>"
        )
    out.append(
        f"<p class='muted'>Dots are estimates, bars {page.level:.0%} ranges; the first and last weeks hold every week "
        "beyond them. Method: " + escape(studies[0].estimator) + ".</p>"
    )
    return "".join(out)


def _check_row(check: ThreatCheck) -> str:
    if check.note:
        result = f"not made: {escape(check.note)}"
    elif check.reference is not None and check.value is not None and check.difference is not None:
        if check.quantity == "price elasticity":
            result = f"{check.reference:+.2f} &rarr; {check.value:+.2f}"
        else:
            result = f"{pct(_pct_of(check.reference))} &rarr; {pct(_pct_of(check.value))}"
    else:
        result = f"F = {check.value:.2f}" if check.value is not None else ""
    p_value = "" if check.p_value is None else f"{check.p_value:.3f}"
    verdict = "<strong>moves the answer</strong>" if check.moved else "no"
    return f"<tr><td>{escape(check.quantity)}</td><td>{result}</td><td class='n'>{p_value}</td><td>{verdict}</td></tr>"


def section_checks(page: Page) -> str:
    """Each threat check, one line per number; those that move the answer are also among the warnings."""
    checks = page.report.checks
    if not checks:
        return ""
    head = "<tr><th>Number</th><th>Headline &rarr; under the check</th><th>p</th><th>Moves it?</th></tr>"
    body = []
    for name in dict.fromkeys(c.check for c in checks):
        group = [c for c in checks if c.check == name]
        body.append(f"<tr><th colspan='4' class='group'>{escape(group[0].question)}</th></tr>")
        body.extend(_check_row(c) for c in group)
    return (
        "<h2>Checks</h2>"
        + table(head, "".join(body))
        + "<p class='muted'>A check moves the answer when the difference is beyond its uncertainty (p below "
        f"{1 - page.level:.2f}, shared among the numbers a check looks at); it is then also in the warnings at the "
        "top. For the weeks before a switch the figure is the joint test's F statistic; for the effect's profile, "
        "the first weeks after the switch against the later ones.</p>"
    )
