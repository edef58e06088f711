"""The page's sections, each ``section_<what>(page) -> str``; the order is :data:`imagelift.influence.page.SECTIONS`.

A section that has nothing to show returns "" and leaves no trace on the page.
"""

from __future__ import annotations

from imagelift.influence.page.context import Page
from imagelift.influence.page.format import (
    COLOURS,
    chance,
    colour,
    effect_cell,
    escape,
    interval,
    label,
    pct,
    span,
    table,
    verdict,
)
from imagelift.influence.page.svg import ChartRow, interval_chart
from imagelift.influence.records import EXCLUSION_REASONS, JOIN_REJECTION_REASONS
from imagelift.influence.report import Effect, FitSummary
from imagelift.influence.sales import REJECTION_REASONS
from imagelift.records.categories import BASE

ROW_REJECTION_REASONS = {**REJECTION_REASONS, **JOIN_REJECTION_REASONS}


def section_header(page: Page) -> str:
    report = page.report
    period, counts = report.period, report.counts
    return (
        "<h1>How the kind of product photo moves sales</h1>"
        f"<p class='sub'>{escape(span(period))} &middot; {counts.products:,} products, "
        f"{counts.listings:,} listings, {counts.listing_weeks or counts.rows_used:,} listing-weeks analysed &middot; "
        f"generated {escape(report.generated_at.replace('T', ' ').replace('+00:00', ' UTC'))}</p>"
    )


def section_data_files(page: Page) -> str:
    """Links to the files written beside the page, which hold every number it shows and more."""
    files = page.data_files
    if not files:
        return ""
    links = []
    if "csv" in files:
        links.append(
            f"<a href='{escape(files['csv'])}' download>{escape(files['csv'])}</a>"
            f"<span class='muted'>every number, one row each, with all {len(page.report.per_product):,} "
            "per-product effects (opens in a spreadsheet)</span>"
        )
    if "json" in files:
        links.append(
            f"<a href='{escape(files['json'])}' download>{escape(files['json'])}</a>"
            "<span class='muted'>the whole report, for programs</span>"
        )
    items = "".join(f"<li>{link}</li>" for link in links)
    return f"<div class='card files'><strong>Data files</strong><ul>{items}</ul></div>"


def _headline_card(effect: Effect, level: float) -> str:
    if not effect.estimated:
        return (
            f"<div class='card big'><div class='what'>{escape(label(effect))} vs {escape(BASE.label)}</div>"
            f"<div class='num' style='color:#9ca3af'>no number</div><div class='rng'>{escape(effect.note or '')}"
            "</div></div>"
        )
    return (
        f"<div class='card big'><div class='what'>{escape(label(effect))} vs {escape(BASE.label)}, units sold</div>"
        f"<div class='num' style='color:{colour(effect.category_name)}'>{pct(effect.effect_pct)}</div>"
        f"<div class='rng'>{level:.0%} range: {interval(effect)}</div>"
        f"<div class='what'>{escape(verdict(effect))}; {escape(chance(effect))}</div></div>"
    )


def _price_card(elasticity: Effect, level: float) -> str:
    if not elasticity.estimated:
        return ""
    return (
        f"<div class='card big'><div class='what'>Price: {escape(elasticity.effect_basis or '')}</div>"
        f"<div class='num' style='color:{COLOURS['price']}'>{pct(elasticity.effect_pct)}</div>"
        f"<div class='rng'>{level:.0%} range: {interval(elasticity)} &middot; elasticity "
        f"{elasticity.estimate:.2f}</div></div>"
    )


def section_headline(page: Page) -> str:
    """One card per category effect (the lift, its range, what it means), and the price elasticity's."""
    report = page.report
    cards = "".join(_headline_card(effect, page.level) for effect in report.effects)
    return f"<div class='headline'>{cards}{_price_card(report.price_elasticity, page.level)}</div>"


def section_summary(page: Page) -> str:
    """The answer in plain words, one sentence per photo type, before any number is shown on its own."""
    report = page.report
    level = f"{report.confidence:.0%}"
    sentences = []
    for effect in report.effects:
        if not effect.estimated:
            continue
        more = "more" if effect.effect_pct >= 0 else "fewer"
        p = effect.probability_above_zero
        basis = (
            "By the bootstrap that gives the range"
            if any(c.category == effect.category and c.interval == "wild bootstrap" for c in report.concentration)
            else "Treating the estimate as normally distributed"
        )
        chance_text = (
            ""
            if p is None
            else f" {basis}, the chance that the effect is above zero is "
            f"{'more than 99%' if p > 0.99 else 'less than 1%' if p < 0.01 else f'{p:.0%}'}."
        )
        sentences.append(
            f"<p><strong>{escape(label(effect))}:</strong> listings with these photos sold {abs(effect.effect_pct):.1f}% "
            f"{more} units than the same product's listings with {escape(BASE.label)} photos in the same week at the "
            f"same price ({level} range {interval(effect)}).{chance_text}</p>"
        )
    if not sentences:
        return ""
    return (
        "<div class='card'>"
        + "".join(sentences)
        + "<p class='muted'>These hold if the assumptions in the box below hold; the warnings say where the data "
        "suggest they may not.</p></div>"
    )


def section_warnings(page: Page) -> str:
    warnings = page.report.warnings
    if not warnings:
        return "<p class='ok'>No warnings: every effect had enough data to be estimated.</p>"
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return f"<div class='warn'><strong>Read this first</strong><ul>{items}</ul></div>"


def section_chart(page: Page) -> str:
    """Every category effect on sales and on price, as intervals against zero."""
    report = page.report
    lvl = f"{page.level:.0%}"
    rows = [
        ChartRow(f"{e.category_name.capitalize()} photo: sales", colour(e.category_name), e) for e in report.effects
    ]
    rows += [
        ChartRow(f"{e.category_name.capitalize()} photo: price premium", COLOURS["price"], e)
        for e in report.price_effects
    ]
    return (
        f"<h2>Effects against {escape(BASE.label)} photos, with {lvl} ranges</h2><div class='card'>"
        + interval_chart(rows, page.level, f"Effects against {BASE.label} photos")
        + "<p class='muted'>The dot is the best estimate; the bar is the "
        f"{lvl} range, the effects the data are consistent with (ranges built this way cover the effect in about "
        f"{lvl} of data sets when the assumptions below hold, and they can fail when those assumptions do not). A bar "
        "that crosses the dashed line means the data cannot rule out no effect. "
        "&ldquo;Sales&rdquo; compares units sold by the same product in the same week at the same price; "
        "&ldquo;price&rdquo; is how much higher listings with that kind of photo are priced.</p></div>"
    )


def section_identification(page: Page) -> str:
    """Where the headline's comparisons come from, and the within-listing estimate beside it."""
    report = page.report
    if not report.identification:
        return ""
    within = report.within_listing
    within_effects = {e.category: e for e in within.effects} if within is not None else {}
    by_category = {e.category: e for e in report.effects}
    out = [
        "<h2>Where the answer comes from</h2>",
        "<p>Two comparisons can measure a photo's effect. <strong>Between listings</strong>: listings of the same "
        "product in the same week, some with the photo and some without (the headline). <strong>Within a "
        "listing</strong>: the same listing before and after its photo was switched. The second cannot mistake a "
        "listing that simply sells better for the photo's effect, but it only has the listings that switched.</p>",
    ]
    rows = []
    for row in report.identification:
        name = row.category_name.capitalize()
        for effect, how, hollow in (
            (by_category.get(row.category), "between listings", False),
            (within_effects.get(row.category), "within a listing", True),
        ):
            if effect is not None:
                rows.append(ChartRow(f"{name}: {how}", colour(row.category_name), effect, hollow))
    if any(r.effect.estimated for r in rows):
        out.append(
            "<div class='card'>"
            + interval_chart(rows, page.level, "The photo effects from the two comparisons")
            + "<p class='legend'><span>&#9679; between listings (product + week, the headline)</span>"
            "<span>&#9675; within a listing (listing + week, photo switches only)</span></p></div>"
        )
    head = (
        "<tr><th>Photo type</th><th>Listings with it</th><th>Listings that switched</th>"
        "<th>Products with varying photos</th><th>Share of the headline's weight from switches</th>"
        "<th>Headline (between listings)</th><th>Within a listing</th></tr>"
    )
    body = []
    for row in report.identification:
        share = "n/a" if row.weight_within_listing is None else f"{row.weight_within_listing:.0%}"
        flag = " <strong>(they disagree)</strong>" if row.disagrees else ""
        body.append(
            f"<tr><td>{escape(row.category_name.capitalize())}{flag}</td><td class='n'>{row.listings:,}</td>"
            f"<td class='n'>{row.listings_switching:,}</td><td class='n'>{row.products_varying:,}</td>"
            f"<td class='n'>{share}</td>{effect_cell(by_category.get(row.category))}"
            f"{effect_cell(within_effects.get(row.category))}</tr>"
        )
    out.append(table(head, "".join(body), "wide"))
    out.append(
        f"<p class='muted'>Ranges are {page.level:.0%} intervals. The share is the part of the photo's variation "
        "within products (weighted as the Poisson model weighs each listing-week) that comes from listings switching "
        "photos; the rest compares different listings of one product, which assumes listings were not given the photo "
        "because they already sold better. When the two estimates differ by more than their joint uncertainty, the "
        "warnings say so.</p>"
    )
    return "".join(out)


def section_price_channels(page: Page) -> str:
    """The headline (price held fixed) beside the price premium, units with the price channel and revenue."""
    report = page.report
    if not report.units_with_price or not any(e.estimated for e in report.units_with_price):
        return ""
    out = [
        "<h2>Price: what the photo type brings with it</h2>",
        "<p>The headline compares listings at the same price. Listings with some kinds of photo are also priced "
        "differently; that premium is <strong>descriptive</strong> (sellers set prices, nobody randomised them), "
        "but if it comes with the photo type, it changes units through the price elasticity and it changes "
        "revenue directly.</p>",
    ]
    head = (
        "<tr><th>Photo type</th><th>Units, price held fixed (headline)</th><th>Price premium "
        "(descriptive)</th><th>Units, including the price premium</th><th>Revenue</th></tr>"
    )
    body = []
    rows = zip(report.effects, report.price_effects, report.units_with_price, report.revenue_effects, strict=False)
    for headline, premium, units, revenue in rows:
        cells = "".join(effect_cell(e) if e.estimated else "<td>n/a</td>" for e in (headline, premium, units, revenue))
        body.append(f"<tr><td>{escape(headline.category_name.capitalize())}</td>{cells}</tr>")
    out.append(table(head, "".join(body), "wide"))
    el = report.price_elasticity
    elasticity = "n/a" if el.estimate is None else f"{el.estimate:.2f}"
    out.append(
        f"<p class='muted'>{page.level:.0%} ranges; units including the premium = headline + elasticity "
        f"({elasticity}) &times; premium, revenue = that + the premium, in log points, with delta-method "
        "ranges that allow for the three estimates moving together.</p>"
    )
    return "".join(out)


def section_concentration(page: Page) -> str:
    """How evenly the products carry the evidence, and which kind of range that led to."""
    concentration = page.report.concentration
    if not concentration:
        return ""
    head = (
        "<tr><th>Estimate</th><th>Effective number of products</th><th>Largest products</th>"
        "<th>Their share of the weight</th><th>Ranges from</th></tr>"
    )
    body = []
    for c in concentration:
        method = {
            "CR3": "leaving out one product at a time (CR3)",
            "wild bootstrap": "a wild bootstrap re-weighting whole products (standard error: CR3)",
        }.get(c.interval, "clustered by product (CRV1)")
        body.append(
            f"<tr><td>{escape(c.name)}</td><td class='n'>{c.effective_products:,.1f}</td>"
            f"<td>{escape(', '.join(c.top_products))}</td><td class='n'>{c.top_share:.0%}</td><td>{method}</td></tr>"
        )
    return (
        "<h2>How many products carry the answer</h2>"
        + table(head, "".join(body), "wide")
        + "<p class='muted'>The effective number is 1 / (sum of squared shares) of each product's Poisson weight on "
        f"the estimate. Rule: {escape(concentration[0].rule)}.</p>"
    )


def section_robustness(page: Page) -> str:
    """The headline beside the log(units) check and the first version's pooled OLS."""
    report = page.report
    headline = page.headline
    head = (
        "<tr><th>Method</th>"
        + "".join(f"<th>{escape(e.category_name.capitalize())} photo</th>" for e in headline.effects)
        + "<th>Price elasticity</th><th>Rows</th></tr>"
    )
    methods: list[tuple[str, FitSummary]] = [
        ("Headline: Poisson model, same product, same week (use this)", headline),
        ("Check: log(units) regression, weeks with sales only", report.log_units_check),
        ("First version's method: pooled regression, no product or week controls (biased)", report.pooled),
    ]
    body = []
    for name, fit in methods:
        cells = "".join(effect_cell(e) if e.estimated else "<td>n/a</td>" for e in fit.effects)
        est = fit.price_elasticity.estimate
        body.append(
            f"<tr><td>{escape(name)}</td>{cells}<td>{'n/a' if est is None else f'{est:.2f}'}</td>"
            f"<td class='n'>{fit.nobs:,}</td></tr>"
        )
    return (
        "<h2>The same question, three ways</h2>"
        + table(head, "".join(body), "wide")
        + "<p class='muted'>The check leaves out weeks without sales and is known to be biased when sales are "
        "small, noisy counts; the first version's method compares different products and seasons with each other. "
        "Where they disagree with the headline, trust the headline, which uses every week and compares like with "
        "like.</p>"
    )


ASSUMPTIONS = (
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
)


def section_assumptions(page: Page) -> str:
    """What the headline takes for granted, in plain words: the reader can judge each against the shop."""
    return (
        "<div class='card'><strong>Assumptions</strong><ul>"
        + "".join(f"<li>{item}</li>" for item in ASSUMPTIONS)
        + "</ul></div>"
    )


def section_counts(page: Page) -> str:
    """What was read, used and rejected (by reason, with examples), sales rows and photo records alike."""
    counts = page.report.counts
    rows = [f"<tr><td>Sales rows read ({len(counts.files)} file(s))</td><td class='n'>{counts.rows:,}</td></tr>"]
    rows.append(f"<tr><td>Used</td><td class='n'>{counts.rows_used:,}</td></tr>")
    if counts.rows_superseded:
        examples = ", ".join(counts.superseded_examples[:3])
        rows.append(
            "<tr><td>Superseded: a newer export covers the same listing and day or week "
            f"<span class='muted'>(e.g. {escape(examples)})</span></td><td class='n'>{counts.rows_superseded:,}</td></tr>"
        )
    if counts.rows_filled:
        rows.append(
            "<tr><td>Zero-sale listing-weeks added (left out by the export)</td>"
            f"<td class='n'>{counts.rows_filled:,}</td></tr>"
        )
    for name, problem in counts.files_failed.items():
        rows.append(
            f"<tr><td>File not read: {escape(name)} <span class='muted'>({escape(problem)})</span></td>"
            "<td class='n'>-</td></tr>"
        )
    for reason, n in counts.rows_rejected.items():
        examples = ", ".join(counts.rejected_examples.get(reason, [])[:3])
        rows.append(
            f"<tr><td>Rejected: {escape(ROW_REJECTION_REASONS.get(reason, reason.replace('_', ' ')))} "
            f"<span class='muted'>({escape(reason)}; e.g. {escape(examples)})</span></td>"
            f"<td class='n'>{n:,}</td></tr>"
        )
    records = counts.records
    rows.append(f"<tr><td>Photo records read</td><td class='n'>{records.read:,}</td></tr>")
    rows.append(f"<tr><td>Photo records used</td><td class='n'>{records.used:,}</td></tr>")
    if records.corrected:
        rows.append(
            f"<tr><td>of them with a category a person corrected</td><td class='n'>{records.corrected:,}</td></tr>"
        )
    for reason, n in records.excluded.items():
        rows.append(
            f"<tr><td>Photo records left out: {escape(EXCLUSION_REASONS.get(reason, reason))}</td>"
            f"<td class='n'>{n:,}</td></tr>"
        )
    for name, n in counts.listing_weeks_by_category.items():
        rows.append(f"<tr><td>Listing-weeks with {escape(name)} photos</td><td class='n'>{n:,}</td></tr>")
    out = ["<h2>The data</h2>", table("<tr><th>What</th><th>Count</th></tr>", "".join(rows))]
    if counts.aggregation or counts.reading:
        notes = "".join(f"<li>{escape(note)}</li>" for note in counts.reading)
        out.append(
            f"<p class='muted'>How the exports were read: {escape(counts.aggregation)}.</p>"
            f"<ul class='muted'>{notes}</ul>"
        )
    return "".join(out)


def section_method(page: Page) -> str:
    spec = page.report.spec
    return (
        "<details><summary>How this was worked out</summary><div class='card'>"
        "<p>Each listing's weekly units are compared with the same product's other listings in the same week, "
        "at their own prices, so that differences between products, seasons and prices are not mistaken for the "
        "effect of the photo. Weeks with no sales count too. Ranges allow for the fact that weeks of the same "
        "product move together.</p>"
        f"<p class='muted'>Estimator: {escape(spec.estimator)}. Model: {escape(spec.formula)}. Standard errors: "
        f"{escape(spec.std_err)}. {escape(spec.week_assignment)}. Effects in percent: {escape(spec.effect_pct)}. "
        f"{spec.nobs:,} observations, {spec.clusters:,} products, {spec.iterations} iterations.</p>"
        "</div></details>"
    )
