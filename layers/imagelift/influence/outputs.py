"""The report's files, all rendered from one :class:`~imagelift.influence.report.Report`: ``influence.json`` (the
contract), ``influence.csv`` (one row per number) and ``influence.html`` (self-contained: inline SVG, no scripts
or external assets, readable by a non-statistician). The HTML page is a sequence of section renderers.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable
from typing import Any

from imagelift.influence.records import EXCLUSION_REASONS, JOIN_REJECTION_REASONS
from imagelift.influence.report import (
    Concentration,
    Counts,
    Effect,
    FitSummary,
    Identification,
    PerProductEffect,
    Report,
    Shrinkage,
    Spec,
)
from imagelift.influence.sales import REJECTION_REASONS
from imagelift.records.categories import BASE, EFFECT_CATEGORIES, by_id

CSV_COLUMNS = (
    "section",
    "category",
    "category_name",
    "product_id",
    "estimate",
    "std_err",
    "ci_low",
    "ci_high",
    "p_value",
    "effect_pct",
    "effect_pct_ci_low",
    "effect_pct_ci_high",
    "n",
    "note",
    "shrunk_effect_pct",
    "shrunk_effect_pct_ci_low",
    "shrunk_effect_pct_ci_high",
    "q_value",
    "discovery",
)
ROW_REJECTION_REASONS = {**REJECTION_REASONS, **JOIN_REJECTION_REASONS}
# effect categories take the palette in order; the base is grey and price purple
_PALETTE = ("#1b6ca8", "#d9822b", "#059669", "#db2777", "#0891b2")
COLOURS = {
    **{c.name: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(EFFECT_CATEGORIES)},
    BASE.name: "#6b7280",
    "price": "#7c3aed",
}


def render_json(report: Report) -> bytes:
    return report.to_json()


def render_csv(report: Report) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()

    def row(section: str, entry: Effect | PerProductEffect, **extra: Any) -> None:
        values = entry.to_dict()
        ci = values.get("effect_pct_ci") or [None, None]
        writer.writerow(
            {
                **{k: values.get(k) for k in CSV_COLUMNS},
                "section": section,
                "effect_pct_ci_low": ci[0],
                "effect_pct_ci_high": ci[1],
                **extra,
            }
        )

    for effect in report.effects:
        row("sales_effect", effect)
    row("price_elasticity", report.price_elasticity, note=report.price_elasticity.effect_basis)
    for effect in report.price_effects:
        row("price_premium", effect, note=effect.note or effect.effect_basis)
    for effect in report.units_with_price:
        row("units_with_price", effect, note=effect.note or effect.effect_basis)
    for effect in report.revenue_effects:
        row("revenue", effect, note=effect.note or effect.effect_basis)
    for effect in report.log_units_check.effects:
        row("check_ols_log_units", effect)
    for effect in report.pooled.effects:
        row("pooled_ols", effect)
    if report.within_listing is not None:
        for effect in report.within_listing.effects:
            row("within_listing", effect)
        row("within_listing_elasticity", report.within_listing.price_elasticity)
    for ident in report.identification:
        share = ident.weight_within_listing
        writer.writerow(
            {
                "section": "identification",
                "category": ident.category,
                "category_name": ident.category_name,
                "estimate": ident.difference,
                "std_err": ident.difference_std_err,
                "n": ident.listings_switching,
                "note": (
                    f"estimate: headline minus within-listing (log points); listings {ident.listings}, switching "
                    f"{ident.listings_switching}, products varying {ident.products_varying}, share of the headline's "
                    f"Poisson weight from switches {'n/a' if share is None else f'{share:.3f}'}"
                    + ("; the two disagree" if ident.disagrees else "")
                ),
            }
        )
    for product in report.per_product:
        shrunk = product.shrunk_effect_pct_ci or (None, None)
        row(
            "per_product",
            product,
            shrunk_effect_pct_ci_low=shrunk[0],
            shrunk_effect_pct_ci_high=shrunk[1],
            discovery=int(product.discovery) if product.q_value is not None else None,
        )
    for summary in report.shrinkage:
        writer.writerow(
            {
                "section": "per_product_spread",
                "category": summary.category,
                "category_name": summary.category_name,
                "estimate": summary.mean,
                "std_err": summary.mean_std_err,
                "n": summary.products,
                "note": (
                    f"estimate: precision-weighted mean of the per-product effects (log points); tau (SD of the "
                    f"true per-product effects) {summary.tau:.4f}; {summary.discoveries} product(s) flagged at a "
                    f"false-discovery rate of {summary.fdr:.0%}, {summary.nominal_significant} nominally significant"
                ),
            }
        )
    return buffer.getvalue().encode("utf-8")


def render_all(report: Report, max_products: int = 60) -> dict[str, bytes]:
    return {
        "influence.json": render_json(report),
        "influence.csv": render_csv(report),
        "influence.html": render_html(report, max_products),
    }


# ---------------------------------------------------------------------------------------------------- HTML


def _span(period: Any) -> str:
    if not period.first_week:
        return "no usable weeks of sales"
    return f"Weeks {period.first_week} to {period.last_week}"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float | None, signed: bool = True, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}%" if signed else f"{value:.{digits}f}%"


def _verdict(effect: Effect) -> str:
    low, high = effect.effect_pct_ci
    if low > 0:
        return "more sales with these photos: the whole range is above zero"
    if high < 0:
        return "fewer sales with these photos: the whole range is below zero"
    return "the data cannot tell this apart from no effect: the range includes zero"


def _chance(effect: Effect) -> str:
    p = effect.probability_above_zero
    if p is None:
        return ""
    shown = ">99%" if p > 0.99 else "<1%" if p < 0.01 else f"{p:.0%}"
    return f"chance the effect is above zero: {shown}"


def _chart(rows: list[tuple[str, str, Effect]], level: float) -> str:
    """Horizontal interval chart: one line per (label, colour, entry), a dot at the estimate, a bar for the range."""
    shown = [(label, colour, e) for label, colour, e in rows if e.estimated]
    if not shown:
        return "<p>No effect could be estimated, so there is nothing to chart.</p>"
    values = [0.0]
    for _, _, e in shown:
        values += [e.effect_pct_ci[0], e.effect_pct_ci[1]]
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.12, 1.0)
    lo, hi = lo - pad, hi + pad
    width, left, right, row_h, top = 760, 230, 30, 46, 30
    height = top + row_h * len(shown) + 40
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    step = _nice_step((hi - lo) / 6)
    ticks = []
    t = step * int(lo / step)
    while t <= hi:
        if t >= lo:
            ticks.append(t)
        t += step
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="Effects with {level:.0%} intervals">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for t in ticks:
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{top - 10}" x2="{x(t):.1f}" y2="{height - 30}" stroke="#e5e7eb" />'
            f'<text x="{x(t):.1f}" y="{height - 12}" font-size="12" text-anchor="middle" fill="#4b5563">'
            f"{t:+g}%</text>"
        )
    parts.append(
        f'<line x1="{x(0):.1f}" y1="{top - 14}" x2="{x(0):.1f}" y2="{height - 30}" stroke="#111827" '
        f'stroke-width="1.5" stroke-dasharray="4 3"/>'
        f'<text x="{x(0):.1f}" y="{top - 18}" font-size="11" text-anchor="middle" fill="#111827">no effect</text>'
    )
    for i, (label, colour, e) in enumerate(shown):
        y = top + row_h * i + row_h / 2
        low, high = e.effect_pct_ci
        parts.append(
            f'<text x="{left - 12}" y="{y + 4:.1f}" font-size="14" text-anchor="end" fill="#111827">{_e(label)}</text>'
            f'<line x1="{x(low):.1f}" y1="{y:.1f}" x2="{x(high):.1f}" y2="{y:.1f}" stroke="{colour}" '
            f'stroke-width="6" stroke-linecap="round" opacity="0.45"/>'
            f'<circle cx="{x(e.effect_pct):.1f}" cy="{y:.1f}" r="7" fill="{colour}"/>'
            f'<text x="{x(e.effect_pct):.1f}" y="{y - 12:.1f}" font-size="12" text-anchor="middle" '
            f'fill="{colour}" font-weight="bold">{_pct(e.effect_pct)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(raw: float) -> float:
    for step in (0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 500):
        if step >= raw:
            return float(step)
    return 1000.0


def _interval_bar(low: float, high: float, estimate: float, lo: float, hi: float, colour: str) -> str:
    width, height = 180, 16

    def x(v: float) -> float:
        v = min(max(v, lo), hi)
        return 4 + (v - lo) / (hi - lo) * (width - 8)

    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{height}" stroke="#9ca3af" stroke-dasharray="2 2"/>'
        f'<line x1="{x(low):.1f}" y1="8" x2="{x(high):.1f}" y2="8" stroke="{colour}" stroke-width="4" '
        f'opacity="0.45" stroke-linecap="round"/>'
        f'<circle cx="{x(estimate):.1f}" cy="8" r="4" fill="{colour}"/></svg>'
    )


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#111827;max-width:1040px;margin:24px auto;
padding:0 20px;line-height:1.5;background:#f9fafb}
h1{font-size:26px;margin:0 0 4px} h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.sub{color:#4b5563;margin:0 0 18px} .card{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:16px 20px;
margin:12px 0} .headline{display:flex;gap:14px;flex-wrap:wrap} .big{flex:1 1 280px}
.big .num{font-size:34px;font-weight:700} .big .rng{color:#374151} .big .what{font-size:14px;color:#4b5563}
table{border-collapse:collapse;width:100%;font-size:14px;background:#fff} th,td{padding:6px 10px;
border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:middle} th{background:#f3f4f6;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums} .warn{background:#fffbeb;border:1px solid #f59e0b;
border-radius:10px;padding:10px 18px;margin:12px 0} .warn li{margin:4px 0} .ok{color:#065f46}
.muted{color:#6b7280;font-size:13px} details{margin:10px 0} summary{cursor:pointer;font-weight:600}
"""


def _colour(category_name: str | None) -> str:
    return COLOURS.get(category_name or "", "#111827")


def _label(effect: Effect) -> str:
    """How a seller reads the category: its label, capitalised."""
    label = by_id(effect.category).label
    return label[:1].upper() + label[1:]


def _range(effect: Effect | PerProductEffect) -> str:
    low, high = effect.effect_pct_ci
    return f"{_pct(low)} to {_pct(high)}"


def section_header(report: Report) -> str:
    period, counts = report.period, report.counts
    return (
        "<h1>How the kind of product photo moves sales</h1>"
        f"<p class='sub'>{_e(_span(period))} &middot; {counts.products:,} products, "
        f"{counts.listings:,} listings, {counts.listing_weeks or counts.rows_used:,} listing-weeks analysed &middot; generated "
        f"{_e(report.generated_at.replace('T', ' ').replace('+00:00', ' UTC'))}</p>"
    )


def section_headline(effects: tuple[Effect, ...], level: float) -> str:
    """One card per category effect: the lift, its range and what it means."""
    lvl = f"{level:.0%}"
    out = []
    for effect in effects:
        if not effect.estimated:
            out.append(
                f"<div class='card big'><div class='what'>{_e(_label(effect))} vs {_e(BASE.label)}</div>"
                f"<div class='num' style='color:#9ca3af'>no number</div><div class='rng'>{_e(effect.note or '')}"
                "</div></div>"
            )
            continue
        out.append(
            f"<div class='card big'><div class='what'>{_e(_label(effect))} vs {_e(BASE.label)}, units sold</div>"
            f"<div class='num' style='color:{_colour(effect.category_name)}'>{_pct(effect.effect_pct)}</div>"
            f"<div class='rng'>{lvl} range: {_range(effect)}</div>"
            f"<div class='what'>{_e(_verdict(effect))}; {_e(_chance(effect))}</div></div>"
        )
    return "".join(out)


def section_summary(report: Report) -> str:
    """The answer in plain words, one sentence per photo type, before any number is shown on its own."""
    level = f"{report.confidence:.0%}"
    sentences = []
    for effect in report.effects:
        if not effect.estimated:
            continue
        label = _label(effect)
        more = "more" if effect.effect_pct >= 0 else "fewer"
        chance = effect.probability_above_zero
        chance_text = (
            ""
            if chance is None
            else f" Treating the estimate as normally distributed, the chance that the effect is above zero is "
            f"{'more than 99%' if chance > 0.99 else 'less than 1%' if chance < 0.01 else f'{chance:.0%}'}."
        )
        sentences.append(
            f"<p><strong>{_e(label)}:</strong> listings with these photos sold {abs(effect.effect_pct):.1f}% {more} "
            f"units than the same product's listings with {_e(BASE.label)} photos in the same week at the same "
            f"price ({level} range {_range(effect)}).{chance_text}</p>"
        )
    if not sentences:
        return ""
    return (
        "<div class='card'>"
        + "".join(sentences)
        + "<p class='muted'>These hold if the assumptions in the box below hold; the warnings say where the data "
        "suggest they may not.</p></div>"
    )


def section_assumptions(report: Report) -> str:
    """What the headline takes for granted, in plain words: the reader can judge each against the shop."""
    items = [
        "<strong>Photos were not chosen by how a listing was going to sell.</strong> The headline compares "
        "listings of one product in the same week; if sellers gave the better-selling listings a kind of photo, "
        "the headline credits the photo with the listing's own pull. The within-listing comparison (each listing "
        "before and after a switch) does not assume this, only that switches were not timed with other changes.",
        "<strong>Nothing else changed with the photo.</strong> A promotion, a new title or a price change made at "
        "the same time as a photo switch is counted as the photo's effect, unless it is one of the controls.",
        "<strong>One number per photo type.</strong> The headline is an average over products; the per-product "
        "table shows how much products seem to differ.",
        "<strong>The photo types are right.</strong> Photos the classifier put in the wrong type pull the "
        "effects towards zero.",
        "<strong>Prices did not follow demand.</strong> The elasticity, and the price channel built on it, come "
        "from price differences within a product and week; prices raised in busy weeks bias it towards zero.",
        "<strong>Many independent products.</strong> Ranges allow weeks of one product to move together, and "
        "need many products; a few products carrying most of the sales make them too narrow.",
    ]
    return (
        "<div class='card'><strong>Assumptions</strong><ul>"
        + "".join(f"<li>{item}</li>" for item in items)
        + "</ul></div>"
    )


def section_price(elasticity: Effect, level: float) -> str:
    """The price elasticity card, beside the headline cards."""
    if not elasticity.estimated:
        return ""
    return (
        f"<div class='card big'><div class='what'>Price: {_e(elasticity.effect_basis or '')}</div>"
        f"<div class='num' style='color:{COLOURS['price']}'>{_pct(elasticity.effect_pct)}</div>"
        f"<div class='rng'>{level:.0%} range: {_range(elasticity)} &middot; elasticity "
        f"{elasticity.estimate:.2f}</div></div>"
    )


def section_warnings(warnings: tuple[str, ...]) -> str:
    if not warnings:
        return "<p class='ok'>No warnings: every effect had enough data to be estimated.</p>"
    items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    return f"<div class='warn'><strong>Read this first</strong><ul>{items}</ul></div>"


def section_chart(effects: tuple[Effect, ...], price_effects: tuple[Effect, ...], level: float) -> str:
    """Every category effect on sales and on price, as intervals against zero."""
    lvl = f"{level:.0%}"
    rows = [(f"{e.category_name.capitalize()} photo: sales", _colour(e.category_name), e) for e in effects]
    rows += [(f"{e.category_name.capitalize()} photo: price premium", COLOURS["price"], e) for e in price_effects]
    return (
        f"<h2>Effects against {_e(BASE.label)} photos, with {lvl} ranges</h2><div class='card'>"
        + _chart(rows, level)
        + "<p class='muted'>The dot is the best estimate; the bar is the "
        f"{lvl} range, the effects the data are consistent with (ranges built this way cover the effect in about "
        f"{lvl} of data sets when the assumptions below hold, and they can fail when those assumptions do not). A bar "
        "that crosses the dashed line means the data cannot rule out no effect. "
        "&ldquo;Sales&rdquo; compares units sold by the same product in the same week at the same price; "
        "&ldquo;price&rdquo; is how much higher listings with that kind of photo are priced.</p></div>"
    )


def section_concentration(concentration: tuple[Concentration, ...]) -> str:
    """How evenly the products carry the evidence, and which kind of range that led to."""
    if not concentration:
        return ""
    out = [
        "<h2>How many products carry the answer</h2><table><tr><th>Estimate</th><th>Effective number of products"
        "</th><th>Largest products</th><th>Their share of the weight</th><th>Ranges from</th></tr>"
    ]
    for c in concentration:
        method = "leaving out one product at a time (CR3)" if c.interval == "CR3" else "clustered by product (CRV1)"
        out.append(
            f"<tr><td>{_e(c.name)}</td><td class='n'>{c.effective_products:,.1f}</td>"
            f"<td>{_e(', '.join(c.top_products))}</td><td class='n'>{c.top_share:.0%}</td><td>{method}</td></tr>"
        )
    out.append(
        "</table><p class='muted'>The effective number is 1 / (sum of squared shares) of each product's Poisson "
        f"weight on the estimate. Rule: {_e(concentration[0].rule)}.</p>"
    )
    return "".join(out)


def section_price_channels(report: Report, level: float) -> str:
    """The headline (price held fixed) beside the price premium, units with the price channel and revenue."""
    if not report.units_with_price or not any(e.estimated for e in report.units_with_price):
        return ""
    lvl = f"{level:.0%}"
    out = [
        "<h2>Price: what the photo type brings with it</h2>",
        "<p>The headline compares listings at the same price. Listings with some kinds of photo are also priced "
        "differently; that premium is <strong>descriptive</strong> (sellers set prices, nobody randomised them), "
        "but if it comes with the photo type, it changes units through the price elasticity and it changes "
        "revenue directly.</p>",
        "<table><tr><th>Photo type</th><th>Units, price held fixed (headline)</th><th>Price premium "
        "(descriptive)</th><th>Units, including the price premium</th><th>Revenue</th></tr>",
    ]
    rows = zip(report.effects, report.price_effects, report.units_with_price, report.revenue_effects, strict=False)
    for headline, premium, units, revenue in rows:
        cells = "".join(
            f"<td>{_pct(e.effect_pct)} <span class='muted'>({_range(e)})</span></td>" if e.estimated else "<td>n/a</td>"
            for e in (headline, premium, units, revenue)
        )
        out.append(f"<tr><td>{_e(headline.category_name.capitalize())}</td>{cells}</tr>")
    el = report.price_elasticity
    elasticity = "n/a" if el.estimate is None else f"{el.estimate:.2f}"
    out.append(
        f"</table><p class='muted'>{lvl} ranges; units including the premium = headline + elasticity "
        f"({elasticity}) &times; premium, revenue = that + the premium, in log points, with delta-method "
        "ranges that allow for the three estimates moving together.</p>"
    )
    return "".join(out)


def section_robustness(headline: FitSummary, check: FitSummary, pooled: FitSummary) -> str:
    """The headline beside the log(units) check and the first version's pooled OLS."""
    out = ["<h2>The same question, three ways</h2><table><tr><th>Method</th>"]
    out.extend(f"<th>{_e(e.category_name.capitalize())} photo</th>" for e in headline.effects)
    out.append("<th>Price elasticity</th><th>Rows</th></tr>")
    methods = [
        ("Headline: Poisson model, same product, same week (use this)", headline),
        ("Check: log(units) regression, weeks with sales only", check),
        ("First version's method: pooled regression, no product or week controls (biased)", pooled),
    ]
    for label, fit in methods:
        out.append(f"<tr><td>{_e(label)}</td>")
        for e in fit.effects:
            out.append(
                f"<td>{_pct(e.effect_pct)} <span class='muted'>({_range(e)})</span></td>"
                if e.estimated
                else "<td>n/a</td>"
            )
        est = fit.price_elasticity.estimate
        out.append(f"<td>{'n/a' if est is None else f'{est:.2f}'}</td><td class='n'>{fit.nobs:,}</td></tr>")
    out.append(
        "</table><p class='muted'>The check leaves out weeks without sales and is known to be biased when sales are "
        "small, noisy counts; the first version's method compares different products and seasons with each other. "
        "Where they disagree with the headline, trust the headline, which uses every week and compares like with "
        "like.</p>"
    )
    return "".join(out)


def section_identification(
    identification: tuple[Identification, ...], headline: tuple[Effect, ...], within: FitSummary | None, level: float
) -> str:
    """Where the headline's comparisons come from, and the within-listing estimate beside it."""
    if not identification:
        return ""
    within_effects = {e.category: e for e in within.effects} if within is not None else {}
    out = [
        "<h2>Where the answer comes from</h2>",
        "<p>Two comparisons can measure a photo's effect. <strong>Between listings</strong>: listings of the same "
        "product in the same week, some with the photo and some without (the headline). <strong>Within a "
        "listing</strong>: the same listing before and after its photo was switched. The second cannot mistake a "
        "listing that simply sells better for the photo's effect, but it only has the listings that switched.</p>",
        "<table><tr><th>Photo type</th><th>Listings with it</th><th>Listings that switched</th>"
        "<th>Products with varying photos</th><th>Share of the headline's weight from switches</th>"
        "<th>Headline (between listings)</th><th>Within a listing</th></tr>",
    ]
    by_category = {e.category: e for e in headline}
    for row in identification:
        effect = by_category.get(row.category)
        other = within_effects.get(row.category)
        share = "n/a" if row.weight_within_listing is None else f"{row.weight_within_listing:.0%}"

        def cell(e: Effect | None) -> str:
            if e is None or not e.estimated:
                return f"<td>n/a <span class='muted'>{_e((e.note if e else '') or '')}</span></td>"
            return f"<td>{_pct(e.effect_pct)} <span class='muted'>({_range(e)})</span></td>"

        flag = " <strong>(they disagree)</strong>" if row.disagrees else ""
        out.append(
            f"<tr><td>{_e(row.category_name.capitalize())}{flag}</td><td class='n'>{row.listings:,}</td>"
            f"<td class='n'>{row.listings_switching:,}</td><td class='n'>{row.products_varying:,}</td>"
            f"<td class='n'>{share}</td>{cell(effect)}{cell(other)}</tr>"
        )
    out.append(
        f"</table><p class='muted'>Ranges are {level:.0%} intervals. The share is the part of the photo's variation within products "
        "(weighted as the Poisson model weighs each listing-week) that comes from listings switching photos; the "
        "rest compares different listings of one product, which assumes listings were not given the photo because they already "
        "sold better. When the two estimates differ by more than their joint uncertainty, the warnings say so.</p>"
    )
    return "".join(out)


def section_per_product(
    per_product: tuple[PerProductEffect, ...], level: float, limit: int, shrinkage: tuple[Shrinkage, ...] = ()
) -> str:
    out = ["<h2>Product by product</h2>"]
    if not per_product:
        out.append(f"<p>No product had enough listing-weeks of both a photo type and {_e(BASE.label)} photos.</p>")
        return "".join(out)
    out.append(
        f"<p>Products that showed both a photo type and {_e(BASE.label)} photos, largest first "
        f"({min(limit, len(per_product))} of {len(per_product)} shown here; the CSV has all). A product has only a "
        "few listings, so its own estimate is noisy; the <strong>adjusted</strong> figure pulls it towards the "
        "average over all products, the more so the noisier it is (empirical Bayes), and is the better guess for "
        "a single product. Read the headline as the answer and these as hints.</p>"
    )
    for summary in shrinkage:
        alpha = 1 - level
        out.append(
            f"<p class='muted'>{_e(summary.category_name.capitalize())} photos, {summary.products:,} products: "
            f"the true effects differ between products by about {100 * summary.tau:.1f} log points (SD, net of "
            f"noise). With this many products, about {alpha * summary.products:.0f} would look "
            f"&ldquo;significant&rdquo; at {alpha:.0%} by chance alone even with no effect anywhere "
            f"({summary.nominal_significant} do); after correcting for the number of comparisons "
            f"(Benjamini-Hochberg, false-discovery rate {summary.fdr:.0%}) {summary.discoveries} product(s) "
            "remain flagged.</p>"
        )
    shown = sorted(per_product, key=lambda r: -r.n)[:limit]
    lo = min(min(r.effect_pct_ci[0] for r in shown), -10.0)
    hi = max(max(r.effect_pct_ci[1] for r in shown), 10.0)
    lo, hi = max(lo, -100.0), min(hi, 300.0)
    out.append(
        "<table><tr><th>Product</th><th>Photo type</th><th>Own estimate</th>"
        f"<th>{level:.0%} range</th><th>Range (dashed line: no effect)</th><th>Adjusted estimate</th>"
        "<th>Flagged</th><th>Listing-weeks</th></tr>"
    )
    for r in shown:
        low, high = r.effect_pct_ci
        adjusted = (
            f"{_pct(r.shrunk_effect_pct)} <span class='muted'>({_pct(r.shrunk_effect_pct_ci[0])} to "
            f"{_pct(r.shrunk_effect_pct_ci[1])})</span>"
            if r.shrunk_effect_pct is not None and r.shrunk_effect_pct_ci is not None
            else "n/a"
        )
        flagged = "yes" if r.discovery else ""
        out.append(
            f"<tr><td>{_e(r.product_id)}</td><td>{_e(r.category_name)}</td>"
            f"<td class='n'>{_pct(r.effect_pct)}</td><td class='n'>{_range(r)}</td>"
            f"<td>{_interval_bar(low, high, r.effect_pct, lo, hi, _colour(r.category_name))}</td>"
            f"<td class='n'>{adjusted}</td><td>{flagged}</td><td class='n'>{r.n:,}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def section_counts(counts: Counts) -> str:
    """What was read, used and rejected (by reason, with examples), sales rows and photo records alike."""
    out = ["<h2>The data</h2><table><tr><th>What</th><th>Count</th></tr>"]
    out.append(f"<tr><td>Sales rows read ({len(counts.files)} file(s))</td><td class='n'>{counts.rows:,}</td></tr>")
    out.append(f"<tr><td>Used</td><td class='n'>{counts.rows_used:,}</td></tr>")
    if counts.rows_superseded:
        examples = ", ".join(counts.superseded_examples[:3])
        out.append(
            "<tr><td>Superseded: a newer export covers the same listing and day or week "
            f"<span class='muted'>(e.g. {_e(examples)})</span></td><td class='n'>{counts.rows_superseded:,}</td></tr>"
        )
    if counts.rows_filled:
        out.append(
            f"<tr><td>Zero-sale listing-weeks added (left out by the export)</td><td class='n'>{counts.rows_filled:,}</td></tr>"
        )
    for name, problem in counts.files_failed.items():
        out.append(
            f"<tr><td>File not read: {_e(name)} <span class='muted'>({_e(problem)})</span></td><td class='n'>-</td></tr>"
        )
    for reason, n in counts.rows_rejected.items():
        examples = ", ".join(counts.rejected_examples.get(reason, [])[:3])
        out.append(
            f"<tr><td>Rejected: {_e(ROW_REJECTION_REASONS.get(reason, reason.replace('_', ' ')))} "
            f"<span class='muted'>({_e(reason)}; e.g. {_e(examples)})</span></td>"
            f"<td class='n'>{n:,}</td></tr>"
        )
    records = counts.records
    out.append(f"<tr><td>Photo records read</td><td class='n'>{records.read:,}</td></tr>")
    out.append(f"<tr><td>Photo records used</td><td class='n'>{records.used:,}</td></tr>")
    if records.corrected:
        out.append(
            f"<tr><td>of them with a category a person corrected</td><td class='n'>{records.corrected:,}</td></tr>"
        )
    for reason, n in records.excluded.items():
        out.append(
            f"<tr><td>Photo records left out: {_e(EXCLUSION_REASONS.get(reason, reason))}</td>"
            f"<td class='n'>{n:,}</td></tr>"
        )
    for name, n in counts.listing_weeks_by_category.items():
        out.append(f"<tr><td>Listing-weeks with {_e(name)} photos</td><td class='n'>{n:,}</td></tr>")
    out.append("</table>")
    if counts.aggregation or counts.reading:
        notes = "".join(f"<li>{_e(note)}</li>" for note in counts.reading)
        out.append(
            f"<p class='muted'>How the exports were read: {_e(counts.aggregation)}.</p><ul class='muted'>{notes}</ul>"
        )
    return "".join(out)


def section_method(spec: Spec) -> str:
    return (
        "<details><summary>How this was worked out</summary><div class='card'>"
        "<p>Each listing's weekly units are compared with the same product's other listings in the same week, "
        "at their own prices, so that differences between products, seasons and prices are not mistaken for the "
        "effect of the photo. Weeks with no sales count too. Ranges allow for the fact that weeks of the same "
        "product move together.</p>"
        f"<p class='muted'>Estimator: {_e(spec.estimator)}. Model: {_e(spec.formula)}. Standard errors: "
        f"{_e(spec.std_err)}. {_e(spec.week_assignment)}. Effects in percent: {_e(spec.effect_pct)}. "
        f"{spec.nobs:,} observations, {spec.clusters:,} products, {spec.iterations} iterations.</p>"
        "</div></details>"
    )


def _sections(report: Report, max_products: int) -> list[Callable[[], str]]:
    """The page, top to bottom; a new section is one renderer and one line here."""
    level = report.confidence
    headline = FitSummary(
        spec=report.spec.estimator,
        nobs=report.spec.nobs,
        effects=report.effects,
        price_elasticity=report.price_elasticity,
    )
    return [
        lambda: section_header(report),
        lambda: (
            "<div class='headline'>"
            + section_headline(report.effects, level)
            + section_price(report.price_elasticity, level)
            + "</div>"
        ),
        lambda: section_summary(report),
        lambda: section_warnings(report.warnings),
        lambda: section_chart(report.effects, report.price_effects, level),
        lambda: section_identification(report.identification, report.effects, report.within_listing, level),
        lambda: section_price_channels(report, level),
        lambda: section_concentration(report.concentration),
        lambda: section_robustness(headline, report.log_units_check, report.pooled),
        lambda: section_assumptions(report),
        lambda: section_per_product(report.per_product, level, max_products, report.shrinkage),
        lambda: section_counts(report.counts),
        lambda: section_method(report.spec),
    ]


def render_html(report: Report, max_products: int = 60) -> bytes:
    period = report.period
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Photo influence report, {_e(_span(period))}</title>",
        f"<style>{CSS}</style></head><body>",
        *(render() for render in _sections(report, max_products)),
        "</body></html>",
    ]
    return "".join(out).encode("utf-8")
