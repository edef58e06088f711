"""The CSV rows of the event study around photo switches and of the threat checks."""

from __future__ import annotations

from typing import Any

from imagelift.influence.report import Report


def switch_rows(report: Report) -> list[dict[str, Any]]:
    """Rows in the CSV's columns (``section`` says which kind), in the report's order."""
    rows: list[dict[str, Any]] = []
    for study in report.event_study:
        if study.note:
            rows.append(
                {
                    "section": "event_study",
                    "category": study.category,
                    "category_name": study.category_name,
                    "n": study.switches,
                    "note": study.note,
                }
            )
            continue
        for b in study.bins:
            rows.append(
                {
                    "section": "event_study",
                    "category": study.category,
                    "category_name": study.category_name,
                    "estimate": b.estimate,
                    "std_err": b.std_err,
                    "ci_low": b.ci_low,
                    "ci_high": b.ci_high,
                    "effect_pct": b.effect_pct,
                    "n": b.listings,
                    "note": f"week {b.label} from the switch; n: listings seen that week ({b.listing_weeks} "
                    "listing-weeks)",
                }
            )
        for key in ("after", "early", "late", "growth"):
            effect = getattr(study, key)
            if effect is None or not effect.estimated:
                continue
            low, high = effect.effect_pct_ci
            rows.append(
                {
                    "section": f"event_study_{key}",
                    "category": study.category,
                    "category_name": study.category_name,
                    "estimate": effect.estimate,
                    "std_err": effect.std_err,
                    "ci_low": effect.ci_low,
                    "ci_high": effect.ci_high,
                    "p_value": effect.p_value,
                    "effect_pct": effect.effect_pct,
                    "effect_pct_ci_low": low,
                    "effect_pct_ci_high": high,
                    "n": study.switches,
                    "note": effect.effect_basis,
                }
            )
        if study.pretrend_p_value is not None:
            rows.append(
                {
                    "section": "event_study_pretrend",
                    "category": study.category,
                    "category_name": study.category_name,
                    "estimate": study.pretrend_statistic,
                    "p_value": study.pretrend_p_value,
                    "n": study.products,
                    "note": f"estimate: Hotelling F({study.pretrend_df}, products - {study.pretrend_df}) of the leads",
                }
            )
    for check in report.checks:
        rows.append(
            {
                "section": f"threat_check_{check.check}",
                "category_name": check.quantity,
                "estimate": check.difference if check.difference is not None else check.value,
                "std_err": check.std_err,
                "p_value": check.p_value,
                "note": check.note
                or (check.sentence if check.moved else f"quiet: {check.question}")
                + (
                    ""
                    if check.reference is None or check.value is None
                    else f" (headline {check.reference:.4f}, under the check {check.value:.4f})"
                ),
            }
        )
    return rows
