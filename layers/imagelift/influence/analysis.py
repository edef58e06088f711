"""From validated sales and category records to the report's numbers (the ``influence.json`` contract).

Headline: PPML of units on category dummies (product-only is the base) + log(price) + controls, product and
week effects absorbed, errors clustered by product. Beside it: OLS of log(units) on weeks with sales (a
robustness check), the price premium of each category (same design, log(price) as the outcome), per-product
effects, and the seed's pooled OLS for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from imagelift.config import ReportConfig
from imagelift.influence.demean import factorize
from imagelift.influence.estimation import EstimationError, FitResult, fit_ols_fe, fit_pooled_ols, fit_ppml
from imagelift.influence.records import BASE_CATEGORY, CATEGORY_NAMES, CategoryRecords, join_categories
from imagelift.influence.sales import SalesTable

EFFECT_CATEGORIES = (1, 2)
PRICE = "log_price"
ELASTICITY_STEP = 0.10  # the elasticity is also shown as the change in sales for a 10% price rise


def _dummy(category: int) -> str:
    return f"category_{CATEGORY_NAMES[category]}"


def _pct(b: float) -> float:
    return 100.0 * math.expm1(b)


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _effect_entry(fit: FitResult | None, category: int, level: float, note: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"category": category, "category_name": CATEGORY_NAMES[category]}
    name = _dummy(category)
    if fit is None or name not in fit.names:
        entry.update(
            {
                key: None
                for key in ("estimate", "std_err", "ci_low", "ci_high", "p_value", "effect_pct", "effect_pct_ci")
            }
        )
        entry["note"] = note or "not estimated"
        return entry
    inf = fit.inference(name, level)
    entry.update({key: _clean(value) for key, value in inf.items()})
    entry["effect_pct"] = _clean(_pct(inf["estimate"]))
    entry["effect_pct_ci"] = [_clean(_pct(inf["ci_low"])), _clean(_pct(inf["ci_high"]))]
    return entry


def _elasticity_entry(fit: FitResult | None, level: float, note: str | None = None) -> dict[str, Any]:
    keys = ("estimate", "std_err", "ci_low", "ci_high", "p_value", "effect_pct", "effect_pct_ci")
    if fit is None or PRICE not in fit.names:
        return {**dict.fromkeys(keys), "note": note or "not estimated"}
    inf = fit.inference(PRICE, level)
    step = math.log1p(ELASTICITY_STEP)

    def pct(b: float) -> float:
        return 100.0 * math.expm1(b * step)

    return {
        **{key: _clean(value) for key, value in inf.items()},
        "effect_pct": _clean(pct(inf["estimate"])),
        "effect_pct_ci": [_clean(pct(inf["ci_low"])), _clean(pct(inf["ci_high"]))],
        "effect_basis": f"change in units sold for a {ELASTICITY_STEP:.0%} price rise",
    }


def identification(panel: pd.DataFrame) -> dict[int, dict[str, int]]:
    """For each category: rows, and the rows and products where its dummy varies within a product."""
    per_product = panel.groupby(["product_code", "category"], sort=False).size().unstack(fill_value=0)
    total = per_product.sum(axis=1)
    out = {}
    for category in (*EFFECT_CATEGORIES, BASE_CATEGORY):
        rows = per_product[category] if category in per_product else pd.Series(0, index=per_product.index)
        varies = (rows > 0) & (rows < total)
        out[category] = {
            "rows": int(rows.sum()),
            "varying_products": int(varies.sum()),
            "varying_rows": int(rows[varies].sum()),
        }
    return out


def _estimable(ident: dict[int, dict[str, int]], config: ReportConfig) -> tuple[list[int], dict[int, str]]:
    """Categories whose effect can be reported, and for the others the warning that replaces the number."""
    keep, notes = [], {}
    if ident[BASE_CATEGORY]["rows"] == 0:
        for category in EFFECT_CATEGORIES:
            if ident[category]["rows"]:
                notes[category] = (
                    f"No product-only photos in the data, so the {CATEGORY_NAMES[category]} effect has nothing to "
                    "be compared with; no number is reported."
                )
    for category in EFFECT_CATEGORIES:
        name = CATEGORY_NAMES[category]
        info = ident[category]
        if category in notes:
            continue
        if info["rows"] == 0:
            notes[category] = f"No listing-weeks with {name} photos; no {name} effect is reported."
        elif info["varying_products"] == 0:
            notes[category] = (
                f"The {name} category never varies within a product (each product shows it on all or none of its "
                f"listings, all period), so the product effects absorb it and no {name} effect can be estimated."
            )
        elif info["varying_products"] < config.min_cell_products or info["varying_rows"] < config.min_cell_rows:
            notes[category] = (
                f"Too little data for the {name} effect: it varies within only {info['varying_products']} product(s) "
                f"({info['varying_rows']} listing-weeks; at least {config.min_cell_products} products and "
                f"{config.min_cell_rows} listing-weeks are needed), so no number is reported."
            )
        else:
            keep.append(category)
    return keep, notes


def _design(panel: pd.DataFrame, categories: list[int], controls: tuple[str, ...], with_price: bool = True):
    columns, names = [], []
    for category in categories:
        columns.append((panel["category"].to_numpy() == category).astype(np.float64))
        names.append(_dummy(category))
    if with_price:
        columns.append(panel[PRICE].to_numpy())
        names.append(PRICE)
    for control in controls:
        columns.append(panel[control].to_numpy(dtype=np.float64))
        names.append(control)
    return np.column_stack(columns), names


def _try(fit: Callable[[], FitResult], label: str, warnings: list[str]) -> FitResult | None:
    try:
        return fit()
    except EstimationError as exc:
        warnings.append(f"{label} could not be estimated: {exc}.")
        return None


def per_product_effects(
    panel: pd.DataFrame, fit: FitResult, categories: list[int], config: ReportConfig, product_ids: np.ndarray
) -> list[dict]:
    """Each product's own lift per category, given the catalogue-wide price, week and control effects.

    Within a product, Poisson with the fitted linear predictor (minus the category terms) as an offset and one
    level per category has a closed form: a category's effect is its ratio of actual to expected units over
    product-only's. Listings differ persistently (some simply sell better), and with a handful of listings per
    product that difference, not week-to-week noise, dominates the uncertainty; so the variance adds the
    spread of listing levels (estimated across the whole catalogue) to each listing's own week-to-week noise.
    Intervals use the normal approximation and are rough; products with too few rows are left out.
    """
    if fit.kept_rows is None or fit.linear_predictor is None or not categories:
        return []
    rows = panel.loc[fit.kept_rows, ["product_code", "listing_code", "category", "units"]].reset_index(drop=True)
    eta = fit.linear_predictor
    offset = eta.copy()
    for category in categories:
        b, _ = fit.coef(_dummy(category))
        offset -= b * (rows["category"].to_numpy() == category)
    rows["fitted"] = np.exp(eta)  # full model: listing-cell ratios around 1 measure listing heterogeneity
    rows["expected"] = np.exp(offset)  # without the category terms: per-product cell levels are estimated

    # listing-cells: one listing under one category
    keys = ["product_code", "listing_code", "category"]
    lc = rows.groupby(keys, sort=False).agg(
        units=("units", "sum"), fitted=("fitted", "sum"), expected=("expected", "sum"), n=("units", "size")
    )
    ratio = (lc["units"] / lc["fitted"]).rename("ratio")
    rows = rows.join(ratio, on=keys)
    rows["own_sq"] = (rows["units"] - rows["ratio"] * rows["fitted"]) ** 2
    lc["own_var"] = rows.groupby(keys, sort=False)["own_sq"].sum()  # week-to-week noise around the listing's level
    lc["ratio"] = ratio
    # spread of listing levels (method of moments), corrected for the product effect fitted from the same rows
    cells_per_product = lc.groupby(level=0)["n"].transform("size")
    usable = (cells_per_product > 1) & (lc["fitted"] > 0)
    excess = ((lc["ratio"] - 1) ** 2 - lc["own_var"] / lc["fitted"] ** 2) * cells_per_product / (cells_per_product - 1)
    tau2 = max(float(excess[usable].mean()), 0.0) if usable.any() else 0.0

    z = float(stats.norm.ppf(0.5 + config.confidence / 2))
    lc["expected_sq"] = lc["expected"] ** 2
    cells = lc.groupby(level=[0, 2]).agg(
        units=("units", "sum"),
        expected=("expected", "sum"),
        n=("n", "sum"),
        own_var=("own_var", "sum"),
        expected_sq=("expected_sq", "sum"),
    )
    cells["level"] = cells["units"] / cells["expected"]
    cells["var"] = (cells["own_var"] + tau2 * cells["level"] ** 2 * cells["expected_sq"]) / cells["units"] ** 2
    by_listing = lc["expected"].unstack("category", fill_value=0.0)
    if BASE_CATEGORY not in by_listing.columns:
        return []
    base = cells.xs(BASE_CATEGORY, level=1)
    out = []
    for category in categories:
        if category not in by_listing.columns:
            continue
        treated = cells.xs(category, level=1)
        both = treated.add_suffix("_c").join(base.add_suffix("_b"), how="inner")
        # a listing that switched photos carries its level into both cells
        shared = (by_listing[category] * by_listing[BASE_CATEGORY]).groupby(level=0).sum()
        both = both.join(shared.rename("shared"), how="left").fillna({"shared": 0.0})
        ok = (np.minimum(both["n_c"], both["n_b"]) >= config.per_product_min_rows) & (
            np.minimum(both["units_c"], both["units_b"]) > 0
        )
        both = both[ok]
        if both.empty:
            continue
        b = np.log(both["level_c"]) - np.log(both["level_b"])
        cov = tau2 * both["level_c"] * both["level_b"] * both["shared"] / (both["units_c"] * both["units_b"])
        se = np.sqrt(np.maximum(both["var_c"] + both["var_b"] - 2 * cov, 0.0))
        low, high = np.expm1(b - z * se) * 100, np.expm1(b + z * se) * 100
        for product, effect, lo, hi, n in zip(
            both.index, np.expm1(b) * 100, low, high, both["n_c"] + both["n_b"], strict=True
        ):
            out.append(
                {
                    "product_id": str(product_ids[product]),
                    "category": category,
                    "category_name": CATEGORY_NAMES[category],
                    "effect_pct": float(effect),
                    "effect_pct_ci": [float(lo), float(hi)],
                    "n": int(n),
                }
            )
    out.sort(key=lambda e: (e["category"], -e["n"], e["product_id"]))
    return out


def analyse(
    sales: SalesTable,
    records: CategoryRecords,
    config: ReportConfig | None = None,
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """The whole report as a JSON-able dict (see DESIGN.md, Report ``influence.json``)."""
    config = config or ReportConfig()
    controls = sales.controls
    rejections = sales.rejections
    panel = join_categories(sales.frame, records, rejections)
    warnings: list[str] = []
    level = config.confidence
    if panel.empty:
        raise EstimationError("no usable sales rows remain after validation and the category join")
    panel[PRICE] = np.log(panel["price"].to_numpy())
    product, product_ids = factorize(panel["product_id"].to_numpy())
    week = factorize(panel["week"].to_numpy())[0]
    panel["product_code"] = product
    fe = [product, week]

    ident = identification(panel)
    categories, notes = _estimable(ident, config)
    warnings.extend(notes.values())

    x, names = _design(panel, categories, controls)
    units = panel["units"].to_numpy(dtype=np.float64)
    ppml = _try(
        lambda: fit_ppml(units, x, names, fe, product, tol=config.fe_tol, irls_tol=config.irls_tol),
        "The headline PPML model",
        warnings,
    )
    sold = units > 0
    ols = _try(
        lambda: fit_ols_fe(
            np.log(units[sold]),
            x[sold],
            names,
            [product[sold], week[sold]],
            product[sold],
            model="ols_log_units",
            tol=config.fe_tol,
        ),
        "The log(units) OLS check",
        warnings,
    )
    price_x, price_names = _design(panel, categories, controls, with_price=False)
    price_fit = (
        _try(
            lambda: fit_ols_fe(
                panel[PRICE].to_numpy(), price_x, price_names, fe, product, model="price_premium", tol=config.fe_tol
            ),
            "The price premium model",
            warnings,
        )
        if price_names
        else None
    )
    pooled_x, pooled_names = _design(panel, [c for c in EFFECT_CATEGORIES if ident[c]["rows"]], controls)
    pooled = _try(lambda: fit_pooled_ols(np.log1p(units), pooled_x, pooled_names, product), "The pooled OLS", warnings)

    if ppml is not None:
        dropped = ppml.dropped.get("all_zero_fixed_effect", 0)
        if dropped:
            warnings.append(
                f"{dropped} listing-weeks belong to products or weeks with no sales at all; they say nothing "
                "about lifts and were left out of the sales model."
            )
    for category in categories:
        if ppml is not None and ident[category]["varying_products"] < 30:
            warnings.append(
                f"The {CATEGORY_NAMES[category]} effect rests on only {ident[category]['varying_products']} products "
                "whose photos vary; read its interval with care."
            )
    if rejections.total:
        share = rejections.total / max(sales.rows_read, 1)
        if share > 0.05:
            warnings.append(f"{share:.1%} of the sales rows were rejected; see the counts by reason.")

    effects = [_effect_entry(ppml, c, level, notes.get(c)) for c in EFFECT_CATEGORIES]
    for entry in effects:
        entry.update(
            {
                "n_rows": ident[entry["category"]]["rows"],
                "varying_products": ident[entry["category"]]["varying_products"],
            }
        )
    formula = "units ~ " + " + ".join([*(_dummy(c) for c in EFFECT_CATEGORIES), PRICE, *controls])
    report = {
        "generated_at": (generated_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "period": {
            "from": panel["week"].min().date().isoformat(),
            "to": panel["week"].max().date().isoformat(),
        },
        "counts": {
            "rows": int(sales.rows_read),
            "rows_used": len(panel),
            "rows_rejected": rejections.as_dict(),
            "rows_rejected_total": rejections.total,
            "rejected_examples": {k: v for k, v in rejections.examples.items() if v},
            "products": len(product_ids),
            "listings": int(panel["listing_code"].nunique()),
            "weeks": int(panel["week"].nunique()),
            "listing_weeks_by_category": {CATEGORY_NAMES[c]: ident[c]["rows"] for c in CATEGORY_NAMES},
            "records": {
                "read": records.records_read,
                "used": records.used,
                "excluded": records.excluded_dict(),
            },
            "files": list(sales.files),
        },
        "spec": {
            "estimator": "Poisson pseudo-maximum likelihood (PPML), IRLS with weighted demeaning",
            "formula": formula + " | product_id + week",
            "base_category": CATEGORY_NAMES[BASE_CATEGORY],
            "fixed_effects": ["product_id", "week"],
            "std_err": "clustered by product_id (CRV1, small-sample factor G/(G-1)*(N-1)/(N-K)); t(G-1) intervals",
            "confidence": level,
            "controls": list(controls),
            "effect_pct": "100 * (exp(estimate) - 1)",
            "week_assignment": "each listing-week takes the category of the latest classified photo live at the "
            "week's midpoint (Thursday 12:00 UTC); failed and deleted records are ignored",
            "nobs": ppml.nobs if ppml else 0,
            "clusters": ppml.n_clusters if ppml else 0,
            "iterations": ppml.iterations if ppml else 0,
            "dropped": ppml.dropped if ppml else {},
        },
        "effects": effects,
        "price_elasticity": _elasticity_entry(ppml, level),
        "price_effects": [_effect_entry(price_fit, c, level, notes.get(c)) for c in EFFECT_CATEGORIES],
        "per_product": per_product_effects(panel, ppml, categories, config, product_ids) if ppml else [],
        "robustness": {
            "ols_log_units": {
                "spec": "OLS of log(units) on the same design, weeks with sales only, same fixed effects and errors",
                "nobs": ols.nobs if ols else 0,
                "effects": [_effect_entry(ols, c, level, notes.get(c)) for c in EFFECT_CATEGORIES],
                "price_elasticity": _elasticity_entry(ols, level),
            }
        },
        "pooled": {
            "spec": "the seed's plain OLS of log(1 + units) on category dummies + log(price) + controls, no fixed "
            "effects, errors clustered by product; for comparison only (biased: ignores product and week "
            "differences and shrinks lifts)",
            "nobs": pooled.nobs if pooled else 0,
            "effects": [_effect_entry(pooled, c, level) for c in EFFECT_CATEGORIES],
            "price_elasticity": _elasticity_entry(pooled, level),
        },
        "warnings": warnings,
    }
    return report
