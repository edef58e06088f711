"""The per-product table: sortable by any marked column and filterable in the browser, readable without scripts.

Rows are printed largest product first, which is how the table reads with scripts off. Each sortable cell carries
its raw value in ``data-value`` so the script sorts numbers as numbers, not as the text shown.
"""

from __future__ import annotations

from imagelift.influence.page.context import Page
from imagelift.influence.page.format import colour, escape, interval, pct
from imagelift.influence.page.svg import interval_bar
from imagelift.influence.report import PerProductEffect, Shrinkage
from imagelift.records.categories import BASE

TABLE_ID = "per-product"


def _value(number: float | None) -> str:
    return "" if number is None else f"{number:.6g}"


def _spread_notes(shrinkage: tuple[Shrinkage, ...], level: float) -> str:
    out = []
    alpha = 1 - level
    for summary in shrinkage:
        out.append(
            f"<p class='muted'>{escape(summary.category_name.capitalize())} photos, {summary.products:,} products: "
            f"the true effects differ between products by about {100 * summary.tau:.1f} log points (SD, net of "
            f"noise). With this many products, about {alpha * summary.products:.0f} would look "
            f"&ldquo;significant&rdquo; at {alpha:.0%} by chance alone even with no effect anywhere "
            f"({summary.nominal_significant} do); after correcting for the number of comparisons "
            f"(Benjamini-Hochberg, false-discovery rate {summary.fdr:.0%}) {summary.discoveries} product(s) "
            "remain flagged.</p>"
        )
    return "".join(out)


def _product_cell(r: PerProductEffect) -> str:
    if r.title:
        return (
            f"<td data-value='{escape(r.title)}'>{escape(r.title)}<span class='pid'>{escape(r.product_id)}</span></td>"
        )
    return f"<td data-value='{escape(r.product_id)}'>{escape(r.product_id)}</td>"


def _row(r: PerProductEffect, lo: float, hi: float) -> str:
    low, high = r.effect_pct_ci
    if r.shrunk_effect_pct is not None and r.shrunk_effect_pct_ci is not None:
        adjusted = (
            f"<td class='n' data-value='{_value(r.shrunk_effect_pct)}'>{pct(r.shrunk_effect_pct)} "
            f"<span class='muted'>({pct(r.shrunk_effect_pct_ci[0])} to {pct(r.shrunk_effect_pct_ci[1])})</span></td>"
        )
    else:
        adjusted = "<td class='n' data-value=''>n/a</td>"
    flagged = " data-flagged" if r.discovery else ""
    return (
        f"<tr{flagged}>{_product_cell(r)}<td>{escape(r.category_name)}</td>"
        f"<td class='n' data-value='{_value(r.effect_pct)}'>{pct(r.effect_pct)}</td>"
        f"<td class='n' data-value='{_value(low)}'>{interval(r)}</td>"
        f"<td>{interval_bar(low, high, r.effect_pct, lo, hi, colour(r.category_name))}</td>"
        f"{adjusted}<td data-value='{_value(r.q_value)}'>{'yes' if r.discovery else ''}</td>"
        f"<td class='n' data-value='{r.n}'>{r.n:,}</td></tr>"
    )


def section_per_product(page: Page) -> str:
    report = page.report
    per_product, level, limit = report.per_product, page.level, page.max_products
    out = ["<h2>Product by product</h2>"]
    if not per_product:
        out.append(f"<p>No product had enough listing-weeks of both a photo type and {escape(BASE.label)} photos.</p>")
        return "".join(out)
    shown = sorted(per_product, key=lambda r: -r.n)[:limit]
    csv_name = page.data_files.get("csv")
    everything = (
        f"<a href='{escape(csv_name)}' download>{escape(csv_name)}</a> has all {len(per_product):,}"
        if csv_name
        else "the CSV has all"
    )
    out.append(
        f"<p>Products that showed both a photo type and {escape(BASE.label)} photos, largest first "
        f"({len(shown):,} of {len(per_product):,} shown here; {everything}). A product has only a "
        "few listings, so its own estimate is noisy; the <strong>adjusted</strong> figure pulls it towards the "
        "average over all products, the more so the noisier it is (empirical Bayes), and is the better guess for "
        "a single product. Read the headline as the answer and these as hints.</p>"
    )
    out.append(_spread_notes(report.shrinkage, level))
    lo = min(min(r.effect_pct_ci[0] for r in shown), -10.0)
    hi = max(max(r.effect_pct_ci[1] for r in shown), 10.0)
    lo, hi = max(lo, -100.0), min(hi, 300.0)
    out.append(
        f"<div class='filter' data-filter-for='{TABLE_ID}' hidden><label>Find a product or photo type "
        f"<input type='search' placeholder='title, id or photo type' aria-controls='{TABLE_ID}'></label>"
        "<label><input type='checkbox'> flagged only</label><output aria-live='polite'></output>"
        "<span class='muted'>Tap a column's name to sort by it, again to reverse.</span></div>"
    )
    head = (
        "<thead><tr><th data-sort='text'>Product</th><th data-sort='text'>Photo type</th>"
        f"<th data-sort='num'>Own estimate</th><th data-sort='num'>{level:.0%} range</th>"
        "<th>Range (dashed line: no effect)</th><th data-sort='num'>Adjusted estimate</th>"
        "<th data-sort='num'>Flagged</th><th data-sort='num' aria-sort='descending'>Listing-weeks</th></tr></thead>"
    )
    body = "<tbody>" + "".join(_row(r, lo, hi) for r in shown) + "</tbody>"
    out.append(
        "<p class='muted narrow-only'>The table is wider than the screen: swipe it sideways for the other columns."
        "</p>"
        f"<div class='scroll'><table id='{TABLE_ID}' class='products' data-sortable>{head}{body}</table></div>"
        "<p class='muted'>Flagged: the effect differs from zero after allowing for the number of products "
        "compared.</p>"
    )
    return "".join(out)
