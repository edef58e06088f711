"""From joined sales to the report's numbers, in two stages: fit the models, then assemble the :class:`Report`.

Headline: PPML of units on category dummies (the base category left out) + log(price) + controls, product and
week effects absorbed, errors clustered by product. Beside it: OLS of log(units) on weeks with sales (a
robustness check), the price premium of each category (same design, log(price) as the outcome), per-product
effects, and pooled OLS without fixed effects (the first version's method) for comparison.

Any fit that fails with an :class:`~imagelift.errors.EstimationFailure` leaves its numbers empty and adds a
warning; the report still comes out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np
import pandas as pd

from imagelift.config import ReportConfig
from imagelift.errors import EstimationFailure
from imagelift.influence.demean import factorize
from imagelift.influence.distributions import norm_cdf, norm_ppf, norm_sf, t_ppf, t_sf
from imagelift.influence.estimation import (
    FitResult,
    fit_pooled_ols,
    fit_ppml,
    jackknife_covariance,
    joint_covariance,
)
from imagelift.influence.exports.titles import with_titles
from imagelift.influence.fits import fit_two_way_ols
from imagelift.influence.headline import fit_headline_ppml
from imagelift.influence.listing_photo import describe as describe_listing_rule
from imagelift.influence.power import power_table, power_warnings
from imagelift.influence.records import CategoryRecords, join_categories
from imagelift.influence.report import (
    Concentration,
    Counts,
    Effect,
    EventStudy,
    FitSummary,
    Identification,
    LeaveOneOut,
    Period,
    PerProductEffect,
    RecordCounts,
    Report,
    Shrinkage,
    Spec,
    ThreatCheck,
    listings_that_switch,
)
from imagelift.influence.robust_intervals import (
    bootstrap_concentrated,
    concentration_for,
    leave_one_out_warnings,
    leave_one_product_out,
    with_interval,
)
from imagelift.influence.sales import SalesTable
from imagelift.influence.threats import switch_analyses
from imagelift.records.categories import BASE, CATEGORIES, CATEGORY_NAMES, EFFECT_CATEGORIES

EFFECT_IDS = tuple(c.id for c in EFFECT_CATEGORIES)
PRICE = "log_price"
ELASTICITY_STEP = 0.10  # the elasticity is also shown as the change in sales for a 10% price rise
LOG_UNITS_SPEC = "OLS of log(units) on the same design, weeks with sales only, same fixed effects and errors"
WITHIN_LISTING_SPEC = (
    "PPML on the same design with listing + week effects (each listing compared with itself before and after a "
    "photo switch), errors clustered by product"
)
POOLED_SPEC = (
    "pooled OLS without fixed effects (the first version's method): log(1 + units) on category dummies + "
    "log(price) + controls, errors clustered by product; for comparison only (biased: ignores product and week "
    "differences and shrinks lifts)"
)

PREMIUM_BASIS = (
    "descriptive: how much higher listings with this photo are priced than the same product's other listings in "
    "the same week; not an effect the photo causes"
)
UNITS_WITH_PRICE_BASIS = (
    "change in units sold including the price channel: the headline (price held fixed) plus the elasticity times "
    "the price premium; delta-method interval"
)
REVENUE_BASIS = "change in revenue: units including the price channel, plus the price premium; delta-method interval"

T = TypeVar("T")


def _dummy(category: int) -> str:
    return f"category_{CATEGORY_NAMES[category]}"


def _pct(b: float) -> float:
    return 100.0 * math.expm1(b)


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def category_effect(fit: FitResult | None, category: int, level: float, note: str | None = None) -> Effect:
    """The category's coefficient in ``fit`` as a lift in percent, or an empty :class:`Effect` saying why not."""
    name = _dummy(category)
    if fit is None or name not in fit.names:
        return Effect(category, CATEGORY_NAMES[category], note=note or "not estimated")
    inf = fit.inference(name, level)
    return Effect(
        category,
        CATEGORY_NAMES[category],
        **{key: _clean(value) for key, value in inf.items()},
        effect_pct=_clean(_pct(inf["estimate"])),
        effect_pct_ci=(_clean(_pct(inf["ci_low"])), _clean(_pct(inf["ci_high"]))),
        probability_above_zero=_probability_above_zero(inf["estimate"], inf["std_err"]),
    )


def _probability_above_zero(estimate: float, std_err: float) -> float | None:
    """Phi(estimate / SE): the normal approximation to the chance that the effect is positive."""
    if not (math.isfinite(estimate) and math.isfinite(std_err)) or std_err <= 0:
        return None
    return float(norm_cdf(estimate / std_err))


def elasticity_effect(fit: FitResult | None, level: float, note: str | None = None) -> Effect:
    """The log(price) coefficient, with ``effect_pct`` the change in units for a 10% price rise."""
    if fit is None or PRICE not in fit.names:
        return Effect(None, None, note=note or "not estimated")
    inf = fit.inference(PRICE, level)
    step = math.log1p(ELASTICITY_STEP)

    def pct(b: float) -> float:
        return 100.0 * math.expm1(b * step)

    return Effect(
        None,
        None,
        **{key: _clean(value) for key, value in inf.items()},
        effect_pct=_clean(pct(inf["estimate"])),
        effect_pct_ci=(_clean(pct(inf["ci_low"])), _clean(pct(inf["ci_high"]))),
        effect_basis=f"change in units sold for a {ELASTICITY_STEP:.0%} price rise",
    )


# ------------------------------------------------------------------------------------------------ the panel


@dataclass(frozen=True)
class Panel:
    """Joined listing-weeks ready to fit: ``frame`` adds ``log_price`` and ``product_code`` to the join's columns."""

    frame: pd.DataFrame
    product: np.ndarray
    """Product code of each row (0..G-1): the first fixed effect and the cluster."""
    product_ids: np.ndarray
    """The product id of each code."""
    week: np.ndarray
    controls: tuple[str, ...]

    @property
    def units(self) -> np.ndarray:
        return self.frame["units"].to_numpy(dtype=np.float64)


SPENT_AFTER_JOIN = ("product_id", "listing_id", "_source", "_line")
"""Joined columns the panel leaves out: ``product_code`` and ``listing_code`` stand for the ids."""


def prepare_panel(joined: pd.DataFrame, controls: tuple[str, ...]) -> Panel:
    """The joined sales as fixed-effect codes and regressors (possibly none: the report then says what is missing)."""
    # the ids as text and where each row came from are spent once joined (rejections are counted by then); as
    # text they are a large part of the joined rows' memory
    kept = joined.drop(columns=[c for c in SPENT_AFTER_JOIN if c in joined])
    if joined.empty:
        frame = kept.assign(**{PRICE: pd.Series(dtype=float), "product_code": pd.Series(dtype=np.int64)})
        if "listing_code" not in frame:
            frame["listing_code"] = pd.Series(dtype=np.int64)
        empty = np.zeros(0, dtype=np.int64)
        return Panel(frame=frame, product=empty, product_ids=np.array([], dtype=object), week=empty, controls=controls)
    product, product_ids = factorize(joined["product_id"].to_numpy())
    week = factorize(joined["week"].to_numpy())[0]
    frame = kept.assign(**{PRICE: np.log(joined["price"].to_numpy()), "product_code": product})
    return Panel(frame=frame, product=product, product_ids=product_ids, week=week, controls=tuple(controls))


def identification(panel: pd.DataFrame) -> dict[int, dict[str, int]]:
    """For each category: rows, and the rows and products where its dummy varies within a product."""
    per_product = panel.groupby(["product_code", "category"], sort=False).size().unstack(fill_value=0)
    total = per_product.sum(axis=1)
    out = {}
    for category in CATEGORIES:
        rows = per_product[category.id] if category.id in per_product else pd.Series(0, index=per_product.index)
        varies = (rows > 0) & (rows < total)
        out[category.id] = {
            "rows": int(rows.sum()),
            "varying_products": int(varies.sum()),
            "varying_rows": int(rows[varies].sum()),
        }
    return out


def _estimable(ident: dict[int, dict[str, int]], config: ReportConfig) -> tuple[list[int], dict[int, str]]:
    """Categories whose effect can be reported, and for the others the warning that replaces the number."""
    keep, notes = [], {}
    base = BASE.name
    if ident[BASE.id]["rows"] == 0:
        for category in EFFECT_IDS:
            if ident[category]["rows"]:
                notes[category] = (
                    f"No {base} photos in the data, so the {CATEGORY_NAMES[category]} effect has nothing to "
                    "be compared with; no number is reported."
                )
    for category in EFFECT_IDS:
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


def _design(frame: pd.DataFrame, categories: list[int], controls: tuple[str, ...], with_price: bool = True):
    columns, names = [], []
    for category in categories:
        columns.append((frame["category"].to_numpy() == category).astype(np.float64))
        names.append(_dummy(category))
    if with_price:
        columns.append(frame[PRICE].to_numpy())
        names.append(PRICE)
    for control in controls:
        columns.append(frame[control].to_numpy(dtype=np.float64))
        names.append(control)
    if not columns:
        return np.empty((len(frame), 0)), names
    return np.column_stack(columns), names


def _guarded(fit: Callable[[], T], label: str, warnings: list[str]) -> T | None:
    """``fit()``, or None and a warning when it fails as an estimation failure of any kind."""
    try:
        return fit()
    except EstimationFailure as exc:
        warnings.append(f"{label} could not be estimated: {exc}.")
        return None


# ------------------------------------------------------------------------------------------------ the fits


@dataclass(frozen=True)
class Fits:
    """Every fit of one report; a fit that failed is None and its warning is in ``warnings``."""

    identification: dict[int, dict[str, int]]
    categories: list[int]
    """Effect categories with enough variation to be estimated."""
    notes: dict[int, str]
    """Why each other effect category has no number."""
    ppml: FitResult | None
    log_units: FitResult | None
    price_premium: FitResult | None
    pooled: FitResult | None
    per_product: list[PerProductEffect] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    within_listing: FitResult | None = None
    """PPML with listing + week effects, identified by photo switches within a listing only."""
    within_notes: dict[int, str] = field(default_factory=dict)
    """Why each effect category has no within-listing number."""
    identification_table: list[Identification] = field(default_factory=list)
    shrinkage: list[Shrinkage] = field(default_factory=list)
    concentration: list[Concentration] = field(default_factory=list)
    event_study: list[EventStudy] = field(default_factory=list)
    checks: list[ThreatCheck] = field(default_factory=list)
    leave_one_out: list[LeaveOneOut] = field(default_factory=list)
    within_concentration: list[Concentration] = field(default_factory=list)
    """The within-listing fit's concentration rows: its ranges follow the same rule as the headline's."""


def fit_models(panel: Panel, config: ReportConfig) -> Fits:
    """The headline PPML, the log(units) check, the price premium, pooled OLS and the per-product effects."""
    frame, product, week, controls = panel.frame, panel.product, panel.week, panel.controls
    warnings: list[str] = []
    if frame.empty:
        ident = {c.id: {"rows": 0, "varying_products": 0, "varying_rows": 0} for c in CATEGORIES}
        notes = {c: "No sales rows could be used, so no effect is estimated." for c in EFFECT_IDS}
        return Fits(ident, [], notes, None, None, None, None)
    ident = identification(frame)
    categories, notes = _estimable(ident, config)
    warnings.extend(notes.values())

    x, names = _design(frame, categories, controls)
    units = panel.units
    ppml = _guarded(
        lambda: fit_headline_ppml(units, x, names, product, week, config),
        "The headline PPML model",
        warnings,
    )
    concentration: list[Concentration] = []
    if ppml is not None:
        ppml, concentration, note = concentrated_intervals(ppml, product, panel.product_ids, config)
        concentration, note = bootstrap_concentrated(ppml, concentration, note, config, dummy=_dummy, price_name=PRICE)
        if note:
            warnings.append(note)
        # the demeaned regressors (n x k) served the weight shares alone; kept rows, weights and the linear
        # predictor still serve the per-product effects and the switch analyses
        ppml = replace(ppml, demeaned_x=None)
    sold = units > 0
    log_units = _guarded(
        lambda: fit_two_way_ols(
            np.log(units[sold]), x[sold], names, product[sold], week[sold], config, model="ols_log_units"
        ),
        "The log(units) OLS check",
        warnings,
    )
    # each design below is n x k floats, built inside its fit so that it is held only while the fit runs (``x``
    # serves the switch analyses too); ``*_design(...)`` passes its regressors and their names
    price_premium = (
        _guarded(
            lambda: fit_two_way_ols(
                frame[PRICE].to_numpy(),
                *_design(frame, categories, controls, with_price=False),
                product,
                week,
                config,
                model="price_premium",
            ),
            "The price premium model",
            warnings,
        )
        if categories or controls
        else None
    )
    within_categories, within_notes = _within_estimable(frame, categories, config)
    within = None
    within_concentration: list[Concentration] = []
    if within_categories:
        listing = frame["listing_code"].to_numpy()
        within = _guarded(
            lambda: fit_ppml(
                units,
                *_design(frame, within_categories, controls),
                [listing, week],
                product,
                tol=config.fe_tol,
                irls_tol=config.irls_tol,
                model="ppml_listing_week",
            ),
            "The within-listing (listing + week) PPML model",
            warnings,
        )
    if within is not None:
        # the same rule as the headline: a few large products make clustered ranges too narrow here as well
        within, within_concentration, _ = concentrated_intervals(within, product, panel.product_ids, config)
        within_concentration = bootstrap_concentrated(
            within, within_concentration, None, config, dummy=_dummy, price_name=PRICE
        )[0]
        # from here on only its kept rows and linear predictor are read (the switch analyses start from them)
        within = replace(within, demeaned_x=None, weights=None)
    table = identification_table(frame, ident, categories, ppml, within, config.confidence)
    warnings.extend(_identification_warnings(table, ppml, within, config.confidence))
    pooled = _guarded(
        lambda: fit_pooled_ols(
            np.log1p(units), *_design(frame, [c for c in EFFECT_IDS if ident[c]["rows"]], controls), product
        ),
        "The pooled OLS without fixed effects",
        warnings,
    )
    per_product: list[PerProductEffect] = []
    if ppml is not None:
        per_product = (
            _guarded(
                lambda: per_product_effects(frame, ppml, categories, config, panel.product_ids),
                "The per-product effects",
                warnings,
            )
            or []
        )
    per_product, shrinkage = shrink_per_product(per_product, config.confidence, config.fdr)
    studies, checks, switch_warnings = (
        switch_analyses(
            frame,
            units,
            x,
            names,
            product,
            week,
            ppml,
            categories,
            level=config.confidence,
            min_switches=config.min_cell_products,
            tol=config.fe_tol,
            irls_tol=config.irls_tol,
            within_listing=within,
        )
        if categories
        else ([], [], [])
    )
    warnings.extend(switch_warnings)
    leave_one_out: list[LeaveOneOut] = []
    if ppml is not None:
        shown = [headline_effect(ppml, concentration, c, config.confidence) for c in categories] + [
            headline_effect(ppml, concentration, None, config.confidence)
        ]
        leave_one_out = leave_one_product_out(ppml, panel.product_ids, shown, dummy=_dummy, price_name=PRICE)
        warnings.extend(leave_one_out_warnings(leave_one_out, config.confidence))
    return Fits(
        identification=ident,
        categories=categories,
        notes=notes,
        ppml=ppml,
        log_units=log_units,
        price_premium=price_premium,
        pooled=pooled,
        per_product=per_product,
        warnings=warnings,
        within_listing=within,
        within_notes=within_notes,
        identification_table=table,
        shrinkage=shrinkage,
        concentration=concentration,
        event_study=studies,
        checks=checks,
        leave_one_out=leave_one_out,
        within_concentration=within_concentration,
    )


def headline_effect(
    fit: FitResult | None, concentration: list[Concentration], category: int | None, level: float, note=None
) -> Effect:
    """A headline category effect (or, for ``category`` None, the elasticity) with the interval the rule chose."""
    if category is None:
        step = math.log1p(ELASTICITY_STEP)
        return with_interval(
            elasticity_effect(fit, level, note),
            concentration_for(concentration, None),
            lambda b: 100.0 * math.expm1(b * step),
        )
    return with_interval(category_effect(fit, category, level, note), concentration_for(concentration, category), _pct)


def with_bootstrap_ranges(summary: FitSummary, concentration: list[Concentration]) -> FitSummary:
    """A comparison fit's effects with the bootstrap's ranges where its concentration rule chose the bootstrap."""
    step = math.log1p(ELASTICITY_STEP)
    return replace(
        summary,
        effects=tuple(with_interval(e, concentration_for(concentration, e.category), _pct) for e in summary.effects),
        price_elasticity=with_interval(
            summary.price_elasticity,
            concentration_for(concentration, None),
            lambda b: 100.0 * math.expm1(b * step),
        ),
    )


JACKKNIFE_RULE = (
    "CR3 (leave-one-product-out jackknife) when the top {k} products carry more than {share:.0%} of any headline "
    "coefficient's Poisson weight or the effective number of products is below {effective:g}; CRV1 otherwise"
)


def _weight_shares(fit: FitResult, clusters: np.ndarray) -> np.ndarray | None:
    """(G, k): each cluster's share of the Poisson weight (information) behind each coefficient.

    By Frisch-Waugh a coefficient rests on its regressor's residual r after the fixed effects and the other
    regressors; cluster g's share is sum over its rows of mu r^2 over the total.
    """
    if fit.demeaned_x is None or fit.kept_rows is None:
        return None
    x = fit.demeaned_x
    w = fit.weights if fit.weights is not None else np.ones(len(x))
    codes = factorize(clusters[fit.kept_rows])[0]
    n_clusters = int(codes.max()) + 1
    k = x.shape[1]
    # every regressor's residual on the others from one weighted Gram matrix: r_j = x @ c_j, c_j = e_j - b_j
    gram = (x * w[:, None]).T @ x
    combinations = np.eye(k)
    for j in range(k):
        others = [i for i in range(k) if i != j]
        if others:
            combinations[others, j] = -np.linalg.lstsq(gram[np.ix_(others, others)], gram[others, j], rcond=None)[0]
    residuals = x @ combinations
    shares = np.empty((n_clusters, k))
    for j in range(k):
        r = residuals[:, j]
        mass = np.bincount(codes, weights=w * r**2, minlength=n_clusters)
        shares[:, j] = mass / mass.sum() if mass.sum() > 0 else 0.0
    return shares


def concentrated_intervals(
    fit: FitResult, clusters: np.ndarray, cluster_ids: np.ndarray, config: ReportConfig
) -> tuple[FitResult, list[Concentration], str | None]:
    """The headline's weight concentration per coefficient, and the fit with CR3 errors when the rule says so."""
    shares = _weight_shares(fit, clusters)
    if shares is None or fit.cluster_labels is None:
        return fit, [], None
    rule = JACKKNIFE_RULE.format(
        k=config.top_products, share=config.jackknife_top_share, effective=config.jackknife_min_effective
    )
    labels = [str(cluster_ids[int(code)]) for code in fit.cluster_labels]
    rows = []
    concentrated = False
    for j, name in enumerate(fit.names):
        if name != PRICE and not name.startswith("category_"):
            continue
        order = np.argsort(-shares[:, j])[: config.top_products]
        top_share = float(shares[order, j].sum())
        effective = float(1 / np.sum(shares[:, j] ** 2)) if np.sum(shares[:, j] ** 2) > 0 else 0.0
        concentrated |= top_share > config.jackknife_top_share or effective < config.jackknife_min_effective
        rows.append((j, name, effective, tuple(labels[i] for i in order), top_share))
    cr3 = jackknife_covariance(fit) if rows else None
    use_cr3 = concentrated and cr3 is not None
    out = []
    for j, name, effective, top, top_share in rows:
        category = next((c for c in EFFECT_IDS if _dummy(c) == name), None)
        out.append(
            Concentration(
                category=category,
                name=CATEGORY_NAMES[category] if category is not None else "price elasticity",
                effective_products=effective,
                top_products=top,
                top_share=top_share,
                interval="CR3" if use_cr3 else "CRV1",
                rule=rule,
                crv1_std_err=float(math.sqrt(fit.cov[j, j])),
                cr3_std_err=None if cr3 is None else float(math.sqrt(max(cr3[j, j], 0.0))),
            )
        )
    if not use_cr3:
        return fit, out, None
    worst = max(out, key=lambda c: c.top_share)
    note = (
        f"A few products carry most of the evidence: the top {len(worst.top_products)} carry "
        f"{worst.top_share:.0%} of the weight behind the {worst.name} estimate (as much as "
        f"{worst.effective_products:.1f} equally sized products). Ordinary clustered ranges are too narrow then, so "
        "the headline ranges come from leaving out one product at a time (jackknife, CR3), and are wider."
    )
    return replace(fit, cov=cr3), out, note


def _switching_listings(frame: pd.DataFrame) -> dict[int, tuple[int, int]]:
    """Per category: listings that ever show it, and those that show it in some weeks and not in others."""
    listing = factorize(frame["listing_code"].to_numpy())[0]
    category = frame["category"].to_numpy(dtype=np.int64)
    n_categories = max(int(category.max()) + 1 if len(category) else 0, *(c + 1 for c in EFFECT_IDS))
    # rows per listing and category by counting (a table of listings x categories), not by grouping
    per_listing = np.bincount(
        listing * n_categories + category, minlength=(int(listing.max()) + 1 if len(listing) else 0) * n_categories
    )
    per_listing = per_listing.reshape(-1, n_categories)
    total = per_listing.sum(axis=1)
    out = {}
    for category_id in EFFECT_IDS:
        rows = per_listing[:, category_id]
        out[category_id] = (int((rows > 0).sum()), int(((rows > 0) & (rows < total)).sum()))
    return out


def _within_estimable(
    frame: pd.DataFrame, categories: list[int], config: ReportConfig
) -> tuple[list[int], dict[int, str]]:
    """Headline categories with enough listings that switch to or from them for a within-listing estimate."""
    switching = _switching_listings(frame)
    keep, notes = [], {}
    for category in categories:
        n = switching[category][1]
        if n < config.min_cell_products:
            notes[category] = (
                f"{listings_that_switch(n)} to or from {CATEGORY_NAMES[category]} photos (at least "
                f"{config.min_cell_products} are needed), so it has no within-listing estimate"
            )
        else:
            keep.append(category)
    return keep, notes


def _weight_within_listing(frame: pd.DataFrame, fit: FitResult, category: int) -> float | None:
    """Share of the category's Poisson-weighted variation within products that is variation within listings.

    With weights mu from the fit, sum(mu (d - mean of d in its product)^2) splits exactly into the part around
    each listing's mean (photo switches) and the part between listings of one product; the share is the first
    over the whole. It is 0 when no listing switches and 1 when every listing of a product shows the same photos.
    """
    if fit.weights is None or fit.kept_rows is None:
        return None
    kept = frame.loc[fit.kept_rows]
    d = (kept["category"].to_numpy() == category).astype(np.float64)
    w = fit.weights

    def spread(codes: np.ndarray) -> float:
        codes = factorize(codes)[0]
        mean = np.bincount(codes, weights=w * d) / np.bincount(codes, weights=w)
        return float(np.sum(w * (d - mean[codes]) ** 2))

    total = spread(kept["product_code"].to_numpy())
    return spread(kept["listing_code"].to_numpy()) / total if total > 0 else None


def identification_table(
    frame: pd.DataFrame,
    ident: dict[int, dict[str, int]],
    categories: list[int],
    ppml: FitResult | None,
    within: FitResult | None,
    level: float,
) -> list[Identification]:
    """Per effect category: the comparisons behind the headline and its agreement with the within-listing fit."""
    switching = _switching_listings(frame)
    joint = joint_covariance(ppml, within) if ppml is not None and within is not None else None
    z = float(norm_ppf(0.5 + level / 2))
    out = []
    for category in EFFECT_IDS:
        name = _dummy(category)
        listings, switching_listings = switching[category]
        share = difference = se = None
        disagrees = False
        if ppml is not None and category in categories:
            share = _weight_within_listing(frame, ppml, category)
            if within is not None and name in within.names and joint is not None:
                i, k = ppml.names.index(name), within.names.index(name)
                difference = float(ppml.params[i] - within.params[k])
                variance = float(ppml.cov[i, i] + within.cov[k, k] - 2 * joint[i, k])
                se = math.sqrt(variance) if variance > 0 else None
                disagrees = se is not None and abs(difference) > z * se
        out.append(
            Identification(
                category=category,
                category_name=CATEGORY_NAMES[category],
                listings=listings,
                listings_switching=switching_listings,
                products_varying=ident[category]["varying_products"],
                weight_within_listing=share,
                difference=difference,
                difference_std_err=se,
                disagrees=disagrees,
            )
        )
    return out


def _identification_warnings(
    table: list[Identification], ppml: FitResult | None, within: FitResult | None, level: float
) -> list[str]:
    warnings = []
    for row in table:
        if not row.disagrees or ppml is None or within is None:
            continue
        name = _dummy(row.category)
        headline, within_estimate = _pct(ppml.coef(name)[0]), _pct(within.coef(name)[0])
        warnings.append(
            f"The two comparisons disagree on {row.category_name} photos: listings of the same product in the same "
            f"week differ by {headline:+.1f}%, but a listing compared with itself before and after a photo switch "
            f"changes by {within_estimate:+.1f}% (difference {row.difference:+.3f} log points, standard error "
            f"{row.difference_std_err:.3f}, beyond the {level:.0%} range of no difference). Listings that already "
            f"sold better (or worse) may have been given {row.category_name} photos; the within-listing figure does "
            f"not mix that up with the photo, but rests on only {row.listings_switching} listings that switched."
        )
    return warnings


def per_product_effects(
    panel: pd.DataFrame, fit: FitResult, categories: list[int], config: ReportConfig, product_ids: np.ndarray
) -> list[PerProductEffect]:
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

    z = float(norm_ppf(0.5 + config.confidence / 2))
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
    if BASE.id not in by_listing.columns:
        return []
    base = cells.xs(BASE.id, level=1)
    out = []
    for category in categories:
        if category not in by_listing.columns:
            continue
        treated = cells.xs(category, level=1)
        both = treated.add_suffix("_c").join(base.add_suffix("_b"), how="inner")
        # a listing that switched photos carries its level into both cells
        shared = (by_listing[category] * by_listing[BASE.id]).groupby(level=0).sum()
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
        for product, effect, lo, hi, n, raw, raw_se in zip(
            both.index, np.expm1(b) * 100, low, high, both["n_c"] + both["n_b"], b, se, strict=True
        ):
            out.append(
                PerProductEffect(
                    product_id=str(product_ids[product]),
                    category=category,
                    category_name=CATEGORY_NAMES[category],
                    effect_pct=float(effect),
                    effect_pct_ci=(float(lo), float(hi)),
                    n=int(n),
                    estimate=float(raw),
                    std_err=float(raw_se),
                )
            )
    out.sort(key=lambda e: (e.category, -e.n, e.product_id))
    return out


def heterogeneity_reml(estimates: np.ndarray, std_errs: np.ndarray, iterations: int = 200) -> tuple[float, float]:
    """tau^2 and the random-effects mean of estimates with known sampling SEs: REML from a method-of-moments start.

    DerSimonian-Laird's moment estimate starts the REML fixed point
    tau^2 = sum w^2 ((b - m)^2 - s^2) / sum w^2 + 1 / sum w, with w = 1 / (s^2 + tau^2), clipped at zero.
    """
    v = std_errs**2
    w = 1 / v
    m = float(np.sum(w * estimates) / np.sum(w))
    q = float(np.sum(w * (estimates - m) ** 2))
    denominator = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    tau2 = max((q - (len(estimates) - 1)) / denominator, 0.0) if denominator > 0 else 0.0
    for _ in range(iterations):
        w = 1 / (v + tau2)
        m = float(np.sum(w * estimates) / np.sum(w))
        new = max(float(np.sum(w**2 * ((estimates - m) ** 2 - v)) / np.sum(w**2) + 1 / np.sum(w)), 0.0)
        if abs(new - tau2) < 1e-12:
            tau2 = new
            break
        tau2 = new
    w = 1 / (v + tau2)
    return tau2, float(np.sum(w * estimates) / np.sum(w))


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Adjusted p-values (q-values) of the Benjamini-Hochberg step-up procedure."""
    n = len(p_values)
    if n == 0:
        return np.zeros(0)
    order = np.argsort(p_values)
    ranked = p_values[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return np.maximum(out, p_values)  # q >= p exactly, not just up to rounding


def shrink_per_product(
    effects: list[PerProductEffect], level: float, fdr: float
) -> tuple[list[PerProductEffect], list[Shrinkage]]:
    """Empirical-Bayes per-product effects and false-discovery flags, category by category.

    With tau^2 the variance of the true effects across products and s_i each product's sampling SE, the
    shrunk estimate is w_i b_i + (1 - w_i) m with w_i = tau^2 / (tau^2 + s_i^2) and m the random-effects mean;
    its interval uses the posterior SD sqrt(w_i s_i^2 + (1 - w_i)^2 var(m)) (normal approximation, tau^2 taken
    as known). A product's raw estimate says little on its own; when the effects barely differ (tau near 0)
    every product is pulled to the mean. p-values are two-sided normal, q-values Benjamini-Hochberg.
    """
    z = float(norm_ppf(0.5 + level / 2))
    alpha = 1 - level
    out: list[PerProductEffect] = []
    summaries: list[Shrinkage] = []
    for category in sorted({e.category for e in effects}):
        group = [e for e in effects if e.category == category]
        # one pass: membership tests against a list of dataclasses compare every field, quadratic in products
        is_usable = [e.estimate is not None and e.std_err is not None and e.std_err > 0 for e in group]
        usable = [e for e, ok in zip(group, is_usable, strict=True) if ok]
        untouched = [e for e, ok in zip(group, is_usable, strict=True) if not ok]
        out.extend(untouched)
        if len(usable) < 2:
            out.extend(usable)
            continue
        b = np.array([e.estimate for e in usable])
        s = np.array([e.std_err for e in usable])
        tau2, mean = heterogeneity_reml(b, s)
        mean_var = 1 / float(np.sum(1 / (s**2 + tau2)))
        weight = tau2 / (tau2 + s**2)
        shrunk = weight * b + (1 - weight) * mean
        post_sd = np.sqrt(weight * s**2 + (1 - weight) ** 2 * mean_var)
        p = 2 * norm_sf(np.abs(b / s))
        q = benjamini_hochberg(p)
        for e, est, sd, pv, qv in zip(usable, shrunk, post_sd, p, q, strict=True):
            out.append(
                replace(
                    e,
                    p_value=float(pv),
                    q_value=float(qv),
                    discovery=bool(qv <= fdr),
                    shrunk_effect_pct=_pct(float(est)),
                    shrunk_effect_pct_ci=(_pct(float(est - z * sd)), _pct(float(est + z * sd))),
                )
            )
        summaries.append(
            Shrinkage(
                category=category,
                category_name=CATEGORY_NAMES[category],
                products=len(usable),
                tau=math.sqrt(tau2),
                mean=mean,
                mean_std_err=math.sqrt(mean_var),
                fdr=fdr,
                discoveries=int(np.sum(q <= fdr)),
                nominal_significant=int(np.sum(p < alpha)),
            )
        )
    out.sort(key=lambda e: (e.category, -e.n, e.product_id))
    return out, summaries


# ------------------------------------------------------------------------------------------------ the report


def _missing_data(
    panel: Panel, sales: SalesTable, records: CategoryRecords, fits: Fits, config: ReportConfig
) -> list[str]:
    """What the data lack when no effect could be estimated, in a sentence that says what would be enough."""
    if fits.categories:
        return []
    rejected = sales.rejections.as_dict()
    if not sales.files:
        return [
            "No sales exports yet: put the shop's sales export files (CSV, xlsx; Shopify, Amazon Business Report "
            "or week,product_id,listing_id,units,price) under the sales prefix, and the next report uses them."
        ]
    if sales.rows_read == 0:
        return [f"None of the {len(sales.files)} sales file(s) gave a row to read (see the files not read)."]
    if panel.frame.empty:
        top = ", ".join(f"{reason} {n:,}" for reason, n in sorted(rejected.items(), key=lambda kv: -kv[1])[:3])
        also = " There are no usable photo records yet." if records.used == 0 else ""
        return [f"No sales row could be used: all {sales.rows_read:,} were rejected or superseded ({top}).{also}"]
    frame = panel.frame
    by_category = ", ".join(f"{n:,} {c.name}" for c in CATEGORIES if (n := fits.identification[c.id]["rows"]))
    return [
        f"Too little data for any effect: {len(panel.product_ids):,} products, {frame['week'].nunique():,} weeks, "
        f"{len(frame):,} listing-weeks ({by_category}). Each photo type needs at least {config.min_cell_rows} "
        f"listing-weeks inside at least {config.min_cell_products} products that also show {BASE.name} photos; "
        "the counts below are complete."
    ]


def _data_warnings(panel: Panel, sales: SalesTable, fits: Fits) -> list[str]:
    """Warnings about the data behind numbers that were estimated."""
    warnings = []
    ppml, ident = fits.ppml, fits.identification
    if ppml is not None:
        dropped = ppml.dropped.get("all_zero_fixed_effect", 0)
        if dropped:
            warnings.append(
                f"{dropped} listing-weeks belong to products or weeks with no sales at all; they say nothing "
                "about lifts and were left out of the sales model."
            )
        for category in fits.categories:
            if ident[category]["varying_products"] < 30:
                warnings.append(
                    f"The {CATEGORY_NAMES[category]} effect rests on only {ident[category]['varying_products']} "
                    "products whose photos vary; read its interval with care."
                )
    if sales.zero_weeks_missing and not sales.rows_filled:
        warnings.append(
            f"The sales exports hold no zero-sale week, yet {sales.zero_weeks_missing:,} listing-weeks with a live "
            "photo have no row: the exports seem to leave out weeks without sales (Shopify does), which biases the "
            "effects. Rerun with --fill-zeros (REPORT_FILL_ZEROS=true) to count them as zero sales."
        )
    elif sales.rows_filled:
        warnings.append(
            f"{sales.rows_filled:,} listing-weeks with a live photo but no row in the exports were counted as zero "
            "sales at the listing's median price (fill zeros). Their real price is unknown, so the price "
            "elasticity leans on that guess more than the photo effects do."
        )
    for name, problem in sales.failed_files.items():
        warnings.append(f"The sales file {name} could not be read and was left out: {problem}.")
    rejected = sales.rejections.total
    if rejected:
        share = rejected / max(sales.rows_read, 1)
        if share > 0.05:
            warnings.append(f"{share:.1%} of the sales rows were rejected; see the counts by reason.")
    return warnings


def price_channels(
    ppml: FitResult | None, premium: FitResult | None, categories: list[int], level: float
) -> tuple[tuple[Effect, ...], tuple[Effect, ...]]:
    """Per effect category, the effect on units through the price premium too, and the effect on revenue.

    With b the headline (log units at a fixed price), e the elasticity and p the price premium (log points):
    units including the price channel b + e p, revenue b + (1 + e) p. Standard errors by the delta method with
    the clustered covariance of (b, e) from the headline, of p from the premium fit, and between the two fits
    from their per-product influences. The premium is descriptive (prices are set by sellers, not randomised),
    so these figures hold only as far as the premium is what the photo type brings with it.
    """
    units_out, revenue_out = [], []
    joint = joint_covariance(ppml, premium) if ppml is not None and premium is not None else None
    for category in EFFECT_IDS:
        name = _dummy(category)
        empty = Effect(category, CATEGORY_NAMES[category], note="not estimated")
        if (
            ppml is None
            or premium is None
            or joint is None
            or category not in categories
            or name not in ppml.names
            or name not in premium.names
            or PRICE not in ppml.names
        ):
            units_out.append(replace(empty, effect_basis=UNITS_WITH_PRICE_BASIS))
            revenue_out.append(replace(empty, effect_basis=REVENUE_BASIS))
            continue
        ib, ie, ip = ppml.names.index(name), ppml.names.index(PRICE), premium.names.index(name)
        b, e, p = float(ppml.params[ib]), float(ppml.params[ie]), float(premium.params[ip])
        cov = np.array(
            [
                [ppml.cov[ib, ib], ppml.cov[ib, ie], joint[ib, ip]],
                [ppml.cov[ie, ib], ppml.cov[ie, ie], joint[ie, ip]],
                [joint[ib, ip], joint[ie, ip], premium.cov[ip, ip]],
            ]
        )
        df = max(min(ppml.n_clusters, premium.n_clusters) - 1, 1)
        t_crit = float(t_ppf(0.5 + level / 2, df))
        for estimate, gradient, basis, out in (
            (b + e * p, np.array([1.0, p, e]), UNITS_WITH_PRICE_BASIS, units_out),
            (b + (1 + e) * p, np.array([1.0, p, 1 + e]), REVENUE_BASIS, revenue_out),
        ):
            se = math.sqrt(max(float(gradient @ cov @ gradient), 0.0))
            low, high = estimate - t_crit * se, estimate + t_crit * se
            out.append(
                Effect(
                    category,
                    CATEGORY_NAMES[category],
                    estimate=estimate,
                    std_err=se,
                    ci_low=low,
                    ci_high=high,
                    p_value=float(2 * t_sf(abs(estimate / se), df)) if se > 0 else None,
                    effect_pct=_pct(estimate),
                    effect_pct_ci=(_pct(low), _pct(high)),
                    effect_basis=basis,
                    probability_above_zero=_probability_above_zero(estimate, se),
                )
            )
    return tuple(units_out), tuple(revenue_out)


def _elasticity_warnings(elasticity: Effect, config: ReportConfig) -> list[str]:
    """A warning when the price elasticity has the wrong sign or an implausible size."""
    e = elasticity.estimate
    if e is None:
        return []
    if e >= 0:
        return [
            f"The price elasticity is {e:+.2f}, at or above zero: higher prices go with more sales here, which "
            "usually means prices follow demand (prices raised in busy seasons, discounts in slow weeks) rather "
            "than the other way round. The photo effects are estimated at that elasticity and the price channel "
            "uses it, so read both with care."
        ]
    if not config.elasticity_min <= e <= config.elasticity_max:
        return [
            f"The price elasticity is {e:+.2f}, outside the range taken as plausible ({config.elasticity_min:+.1f} "
            f"to {config.elasticity_max:+.1f}, REPORT_ELASTICITY_MIN and REPORT_ELASTICITY_MAX): prices may follow "
            "demand or vary too little to measure it, and the price channel leans on it."
        ]
    return []


def _fit_summary(fit: FitResult | None, spec: str, level: float, notes: dict[int, str] | None = None) -> FitSummary:
    notes = notes or {}
    return FitSummary(
        spec=spec,
        nobs=fit.nobs if fit else 0,
        effects=tuple(category_effect(fit, c, level, notes.get(c)) for c in EFFECT_IDS),
        price_elasticity=elasticity_effect(fit, level),
    )


def assemble_report(
    sales: SalesTable,
    records: CategoryRecords,
    panel: Panel,
    fits: Fits,
    config: ReportConfig,
    generated_at: datetime | None = None,
) -> Report:
    """The typed report from the inputs' counts, the panel and the fits."""
    level = config.confidence
    frame, controls, ident, ppml = panel.frame, panel.controls, fits.identification, fits.ppml
    rejections = sales.rejections
    effects = tuple(
        replace(
            headline_effect(ppml, fits.concentration, c, level, fits.notes.get(c)),
            n_rows=ident[c]["rows"],
            varying_products=ident[c]["varying_products"],
        )
        for c in EFFECT_IDS
    )
    units_with_price, revenue = price_channels(ppml, fits.price_premium, fits.categories, level)
    elasticity = headline_effect(ppml, fits.concentration, None, level)
    formula = "units ~ " + " + ".join([*(_dummy(c) for c in EFFECT_IDS), PRICE, *controls])
    counts = Counts(
        rows=int(sales.rows_read),
        rows_used=int(frame["_rows"].sum()) if "_rows" in frame else len(frame),
        rows_rejected=rejections.as_dict(),
        rejected_examples={k: list(v) for k, v in rejections.examples.items() if v},
        products=len(panel.product_ids),
        listings=int(frame["listing_code"].nunique()) if len(frame) else 0,
        weeks=int(frame["week"].nunique()),
        listing_weeks_by_category={c.name: ident[c.id]["rows"] for c in CATEGORIES},
        records=RecordCounts(
            read=records.records_read,
            used=records.used,
            excluded=records.excluded_dict(),
            corrected=records.corrected,
        ),
        files=tuple(sales.files),
        rows_superseded=sales.superseded,
        superseded_examples=tuple(sales.superseded_examples),
        files_failed=dict(sales.failed_files),
        listing_weeks=len(frame),
        rows_filled=sales.rows_filled,
        aggregation=sales.aggregation,
        reading=tuple(sales.notes),
    )
    spec = Spec(
        estimator="Poisson pseudo-maximum likelihood (PPML), IRLS with weighted demeaning",
        formula=formula + " | product_id + week",
        base_category=BASE.name,
        fixed_effects=("product_id", "week"),
        std_err="clustered by product_id (CRV1, small-sample factor G/(G-1)*(N-1)/(N-K)); t(G-1) intervals",
        confidence=level,
        controls=tuple(controls),
        effect_pct="100 * (exp(estimate) - 1)",
        week_assignment=describe_listing_rule(config.listing_category),
        nobs=ppml.nobs if ppml else 0,
        clusters=ppml.n_clusters if ppml else 0,
        iterations=ppml.iterations if ppml else 0,
        dropped=dict(ppml.dropped) if ppml else {},
        listing_category=config.listing_category,
    )
    report = Report(
        generated_at=(generated_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        period=Period(
            first_week=frame["week"].min().date().isoformat() if len(frame) else None,
            last_week=frame["week"].max().date().isoformat() if len(frame) else None,
        ),
        counts=counts,
        spec=spec,
        effects=effects,
        price_elasticity=elasticity,
        price_effects=tuple(
            replace(category_effect(fits.price_premium, c, level, fits.notes.get(c)), effect_basis=PREMIUM_BASIS)
            for c in EFFECT_IDS
        ),
        units_with_price=units_with_price,
        revenue_effects=revenue,
        concentration=tuple(fits.concentration),
        leave_one_out=tuple(fits.leave_one_out),
        per_product=with_titles(fits.per_product, sales.titles),
        log_units_check=_fit_summary(fits.log_units, LOG_UNITS_SPEC, level, fits.notes),
        pooled=_fit_summary(fits.pooled, POOLED_SPEC, level),
        within_listing=with_bootstrap_ranges(
            _fit_summary(fits.within_listing, WITHIN_LISTING_SPEC, level, {**fits.notes, **fits.within_notes}),
            fits.within_concentration,
        ),
        identification=tuple(fits.identification_table),
        shrinkage=tuple(fits.shrinkage),
        event_study=tuple(fits.event_study),
        checks=tuple(fits.checks),
        warnings=(
            *_missing_data(panel, sales, records, fits, config),
            *fits.warnings,
            *_data_warnings(panel, sales, fits),
            *_elasticity_warnings(elasticity, config),
        ),
    )
    power = power_table(report, config)
    return replace(report, power=tuple(power), warnings=(*report.warnings, *power_warnings(report, power)))


def analyse(
    sales: SalesTable,
    records: CategoryRecords,
    config: ReportConfig | None = None,
    generated_at: datetime | None = None,
) -> Report:
    """Join, fit and assemble in one call, for callers that hold read sales and normalised records."""
    config = config or ReportConfig()
    joined = join_categories(sales.frame, records, sales.rejections)
    panel = prepare_panel(joined, sales.controls)
    return assemble_report(sales, records, panel, fit_models(panel, config), config, generated_at)
