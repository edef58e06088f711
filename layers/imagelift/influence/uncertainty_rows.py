"""The CSV rows of the leave-one-product-out ranges, the power figures and the misclassification-corrected effects."""

from __future__ import annotations

from typing import Any

from imagelift.influence.report import Report


def uncertainty_rows(report: Report) -> list[dict[str, Any]]:
    """Rows in the CSV's columns (``section`` says which kind), in the report's order."""
    rows: list[dict[str, Any]] = []
    for r in report.leave_one_out:
        rows.append(
            {
                "section": "leave_one_product_out",
                "category": r.category,
                "category_name": r.name,
                "estimate": r.estimate,
                "ci_low": r.low,
                "ci_high": r.high,
                "n": r.products,
                "note": (
                    f"ci_low / ci_high: the lowest and highest estimate (log points) with one product left out, "
                    f"without {r.low_without} / without {r.high_without}"
                    + ("; one product drives the estimate" if r.driven else "")
                ),
            }
        )
    for p in report.power:
        rows.append(
            {
                "section": f"power_{p.comparison}",
                "category": p.category,
                "category_name": p.category_name,
                "std_err": p.std_err,
                "effect_pct": p.minimum_detectable_pct,
                "n": p.units_now,
                "note": (
                    f"effect_pct: the smallest lift detected with {p.power:.0%} power; n: {p.units}; a lift of "
                    f"{p.target_lift_pct:+.0f}% needs about "
                    + ("n/a" if p.units_needed is None else f"{p.units_needed}")
                    + f" {p.units}"
                ),
            }
        )
    section = report.misclassification
    if section is not None:
        for e in section.effects:
            low, high = e.effect_pct_ci or (None, None)
            rows.append(
                {
                    "section": "misclassification_corrected",
                    "category": e.category,
                    "category_name": e.category_name,
                    "estimate": e.estimate,
                    "std_err": e.std_err,
                    "ci_low": e.ci_low,
                    "ci_high": e.ci_high,
                    "effect_pct": e.effect_pct,
                    "effect_pct_ci_low": low,
                    "effect_pct_ci_high": high,
                    "n": section.photos,
                    "note": e.note
                    or f"corrected for the classifier's mistakes; n: photos of the confusion matrix ({section.location})",
                }
            )
    return rows
