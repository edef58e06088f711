"""The report's files, all rendered from one :class:`~imagelift.influence.report.Report`: ``influence.json`` (the
contract), ``influence.csv`` (one row per number) and ``influence.html`` (the page a person reads, rendered by
:mod:`imagelift.influence.page`: one self-contained file that links the other two by relative name, so the three
are always written side by side, in a local folder or under one S3 prefix).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from imagelift.influence.page import render_page
from imagelift.influence.report import Effect, PerProductEffect, Report
from imagelift.influence.uncertainty_rows import uncertainty_rows

JSON_FILE = "influence.json"
CSV_FILE = "influence.csv"
HTML_FILE = "influence.html"

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
    "title",
)


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
    for extra in uncertainty_rows(report):
        writer.writerow(extra)
    return buffer.getvalue().encode("utf-8")


def render_html(report: Report, max_products: int = 60) -> bytes:
    """The page, linking the CSV and JSON by the names :func:`render_all` gives them."""
    return render_page(report, max_products, data_files={"csv": CSV_FILE, "json": JSON_FILE})


def render_all(report: Report, max_products: int = 60) -> dict[str, bytes]:
    return {
        JSON_FILE: render_json(report),
        CSV_FILE: render_csv(report),
        HTML_FILE: render_html(report, max_products),
    }
